"""Decide which CPUs each worker thread should be pinned to.

``plan()`` turns a pinning policy into one CPU set per worker.  The intended
use is to plan once, in the thread that creates the workers, and to let each
worker pin itself when it starts::

    cpus_per_worker = affinity.plan(n, policy)
    ...
    # in worker i, first thing:
    if cpus_per_worker[i] is not None:
        affinity.pin_current_thread(cpus_per_worker[i])

All platform checks happen in ``plan()``: where threads cannot be pinned, a
named policy plans ``None`` for every worker (with one AffinityWarning), so
the workers never call ``pin_current_thread()``, and an explicit CPU list
raises NotImplementedError before any worker starts.

Thread safety: ``plan()`` keeps no state; it reads the topology, builds a
new list and returns it.  Concurrent calls are independent.  The returned
list holds frozensets, so workers may read it from any thread.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias

from . import pinning
from .cpus import AffinityWarning, _as_cpu_set, _check_available, available_cpus
from .topology import Topology, cpu_topology

__all__ = ["Policy", "plan"]

Policy: TypeAlias = (Literal["compact", "spread", "none"]
                     | Sequence[int] | Sequence[Iterable[int]])

_NAMED_POLICIES = ("compact", "spread", "none")


def plan(workers: int, policy: Policy = "compact", *,
         topology: Topology | None = None) -> list[frozenset[int] | None]:
    """Return one CPU set per worker (None means: do not pin that worker).

    *policy* is one of:

    - ``"compact"``: one worker per physical core first (cores in package
      order), SMT siblings only once every core has a worker.
    - ``"spread"``: round-robin across packages, then across the cores of
      each package; the first CPU of every core before any sibling.
    - ``"none"``: do not pin; every entry is None.
    - a sequence of CPU ids: worker i gets ``{ids[i % len(ids)]}``.
    - a sequence of CPU sets: worker i gets ``frozenset(sets[i % len(sets)])``.

    *topology* defaults to ``cpu_topology()`` (the CPUs this process may
    use); explicit CPU ids are checked against it, or against
    ``available_cpus()`` when it is not given.

    With more workers than distinct CPUs the CPUs are reused round-robin
    and one AffinityWarning says so.  Where threads cannot be pinned (see
    ``supports_pinning()``), ``"compact"`` and ``"spread"`` warn once and
    plan no pinning, and an explicit CPU list raises NotImplementedError.

    Raises ValueError for workers < 1, an unknown policy name, an empty
    list or set, or a CPU that is not available (the message names it and
    the available CPUs); TypeError for a policy of the wrong type.
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(
            f"workers must be an int, got {type(workers).__name__}: {workers!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")

    if isinstance(policy, str):
        if policy not in _NAMED_POLICIES:
            raise ValueError(
                f"unknown pinning policy {policy!r}; expected 'compact', "
                "'spread', 'none' or a sequence of CPU ids or CPU sets")
        if policy == "none":
            return [None] * workers
        if not pinning.supports_pinning():
            warnings.warn(
                f"cannot pin threads to CPUs on this platform; "
                f"ignoring pinning policy {policy!r}",
                AffinityWarning, stacklevel=2)
            return [None] * workers
        if topology is None:
            topology = cpu_topology()
        if policy == "compact":
            order = _compact_order(topology)
        else:
            order = _spread_order(topology)
        if not order:
            raise ValueError(f"no CPUs to pin to in topology:\n{topology}")
        entries = [frozenset({cpu}) for cpu in order]
    else:
        entries = _explicit_entries(policy)
        if not pinning.supports_pinning():
            raise NotImplementedError(
                "cannot pin threads to CPUs on this platform, "
                f"but explicit CPUs were requested: {policy!r}")
        if topology is None:
            available = available_cpus()
        else:
            available = frozenset(topology.cpus)
        _check_available(frozenset().union(*entries), available)

    distinct = len(frozenset().union(*entries))
    if workers > distinct:
        warnings.warn(
            f"{workers} workers but only {distinct} "
            f"{'CPU' if distinct == 1 else 'CPUs'} to pin them to; "
            "CPUs will be shared round-robin",
            AffinityWarning, stacklevel=2)
    return [entries[i % len(entries)] for i in range(workers)]


def _explicit_entries(policy: object) -> list[frozenset[int]]:
    """Turn a sequence of CPU ids and/or CPU sets into a list of frozensets."""
    if isinstance(policy, (bytes, bytearray)) or not isinstance(policy, Iterable):
        raise TypeError(
            "pinning policy must be 'compact', 'spread', 'none' or a sequence "
            f"of CPU ids or CPU sets, got {type(policy).__name__}: {policy!r}")
    entries = []
    for item in policy:
        if isinstance(item, int) and not isinstance(item, bool):
            entries.append(frozenset({item}))
        else:
            entries.append(_as_cpu_set(item))
    if not entries:
        raise ValueError("empty CPU list: give at least one CPU id or CPU set")
    return entries


def _compact_order(topology: Topology) -> list[int]:
    """First CPU of every core in package order, then the second, ..."""
    cores = topology.cores
    return [core.cpus[thread]
            for thread in range(topology.threads_per_core)
            for core in cores
            if thread < len(core.cpus)]


def _spread_order(topology: Topology) -> list[int]:
    """Like compact, but alternating between packages at every step."""
    packages = topology.packages
    most_cores = max((len(package.cores) for package in packages), default=0)
    order = []
    for thread in range(topology.threads_per_core):
        for index in range(most_cores):
            for package in packages:
                if index < len(package.cores):
                    core = package.cores[index]
                    if thread < len(core.cpus):
                        order.append(core.cpus[thread])
    return order

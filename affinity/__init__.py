"""Pin worker threads to CPUs, aware of cores, SMT siblings and sockets.

Built for free-threaded CPython (no GIL), where threads really run in
parallel and where they run matters.  Typical use by an executor::

    import affinity

    cpus_per_worker = affinity.plan(n_workers, "compact")   # main thread
    ...
    # at the start of worker i:
    if cpus_per_worker[i] is not None:
        affinity.pin_current_thread(cpus_per_worker[i])

Every function is safe to call from many threads at once: none keeps
mutable shared state, results are immutable, and pinning only ever changes
the calling thread's own affinity.

Public API:

- ``available_cpus()``: CPUs this process may run on.
- ``cpu_topology()``: those CPUs grouped by package and physical core.
- ``plan()``: one CPU set (or None) per worker, from a policy.
- ``pin_current_thread()``: pin the calling thread.
- ``current_thread_affinity()``: the calling thread's CPUs.
- ``supports_pinning()``: whether this platform can pin threads.
- ``Topology``, ``Package``, ``Core``: the topology data classes.
- ``AffinityWarning``: warned when a request can only be partly honoured.
"""

from .cpus import AffinityWarning, available_cpus
from .pinning import current_thread_affinity, pin_current_thread, supports_pinning
from .planning import Policy, plan
from .topology import Core, Package, Topology, cpu_topology

__all__ = [
    "AffinityWarning",
    "Core",
    "Package",
    "Policy",
    "Topology",
    "available_cpus",
    "cpu_topology",
    "current_thread_affinity",
    "pin_current_thread",
    "plan",
    "supports_pinning",
]

"""Which CPUs this process may use, and helpers for CPU-id sets.

``available_cpus()`` asks the operating system for the CPU affinity of the
process, which already reflects cgroup cpusets, ``taskset`` and container
limits.  The rest of the package validates CPU ids against that set and
formats CPU sets the way Linux does ("0-3,8-11").

Thread safety: nothing here keeps state between calls.  Every function reads
the kernel's view afresh and returns new immutable objects (frozensets and
strings), so any number of threads may call them at once without a GIL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import psutil

__all__ = ["AffinityWarning", "available_cpus"]


class AffinityWarning(UserWarning):
    """Warned when a pinning request can only be partly honoured.

    For example: more workers than CPUs (CPUs are shared), or a platform on
    which threads cannot be pinned (the request is ignored).
    """


def available_cpus() -> frozenset[int]:
    """Return the ids of the CPUs this process may run on.

    Uses ``psutil.Process().cpu_affinity()`` (on Linux: the affinity of the
    process's main thread, which reflects cgroup cpusets and ``taskset``).
    Falls back to ``os.sched_getaffinity(0)`` and then to every CPU that
    ``os.cpu_count()`` reports.
    """
    try:
        return frozenset(psutil.Process().cpu_affinity())
    except (AttributeError, NotImplementedError, OSError, psutil.Error):
        pass
    if hasattr(os, "sched_getaffinity"):
        try:
            return frozenset(os.sched_getaffinity(0))
        except OSError:
            pass
    return frozenset(range(os.cpu_count() or 1))


def _parse_cpu_list(text: str) -> frozenset[int]:
    """Parse a Linux CPU list such as ``"0-3,8,10-11\\n"`` into a set."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        if sep:
            cpus.update(range(int(first), int(last) + 1))
        else:
            cpus.add(int(first))
    return frozenset(cpus)


def _format_cpu_list(cpus: Iterable[int]) -> str:
    """Format CPU ids the way Linux does: ``{0, 1, 2, 3, 8}`` -> ``"0-3,8"``."""
    ranges: list[str] = []
    start = end = None
    for cpu in sorted(cpus):
        if end is not None and cpu == end + 1:
            end = cpu
            continue
        if start is not None:
            ranges.append(_format_range(start, end))
        start = end = cpu
    if start is not None:
        ranges.append(_format_range(start, end))
    return ",".join(ranges) or "(none)"


def _format_range(start: int, end: int) -> str:
    return str(start) if start == end else f"{start}-{end}"


def _as_cpu_set(cpus: Iterable[int], *, allow_empty: bool = False) -> frozenset[int]:
    """Turn an iterable of CPU ids into a frozenset, rejecting non-integers."""
    if isinstance(cpus, (str, bytes)) or not isinstance(cpus, Iterable):
        raise TypeError(
            f"expected an iterable of CPU ids, got {type(cpus).__name__}: {cpus!r}")
    result = set()
    for cpu in cpus:
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise TypeError(
                f"CPU ids must be integers, got {type(cpu).__name__}: {cpu!r}")
        result.add(cpu)
    if not result and not allow_empty:
        raise ValueError("empty CPU set: a thread needs at least one CPU")
    return frozenset(result)


def _check_available(cpus: frozenset[int], available: frozenset[int]) -> None:
    """Raise ValueError naming any id in *cpus* that is not in *available*."""
    bad = cpus - available
    if bad:
        noun = "CPU" if len(bad) == 1 else "CPUs"
        verb = "is" if len(bad) == 1 else "are"
        raise ValueError(
            f"{noun} {_format_cpu_list(bad)} {verb} not available; "
            f"available CPUs: {_format_cpu_list(available)}")

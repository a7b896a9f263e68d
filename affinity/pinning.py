"""Pin the calling thread to a set of CPUs.

Linux schedules threads as tasks with their own ids (``gettid``, exposed
as ``threading.get_native_id()``), and each task has its own CPU affinity.
Setting the affinity of that id therefore pins only the calling thread;
the process's other threads keep theirs.  psutil does the system call.

Thread safety: ``pin_current_thread()`` and ``current_thread_affinity()``
touch only the calling thread's affinity, which lives in the kernel, so
concurrent calls from different threads cannot interfere.  The only shared
state is the cached result of the support probe, a bool that every thread
computes identically; ``functools.cache`` guards it, and computing it twice
in a race would be harmless.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Iterable

import psutil

from .cpus import _as_cpu_set, _check_available, available_cpus

__all__ = ["current_thread_affinity", "pin_current_thread", "supports_pinning"]


def supports_pinning() -> bool:
    """Return True if threads can be pinned to CPUs on this platform.

    Requires Linux (where a thread id can be used like a process id) and
    psutil's ``Process.cpu_affinity``; a harmless probe (setting the calling
    thread's affinity to what it already is) checks that it really works.
    """
    if not hasattr(psutil.Process, "cpu_affinity"):
        return False
    return _probe_pinning()


@functools.cache
def _probe_pinning() -> bool:
    # Other systems have CPU affinity per process, and their thread ids are
    # not process ids, so per-thread pinning through psutil is Linux only.
    if not sys.platform.startswith("linux"):
        return False
    try:
        thread = psutil.Process(threading.get_native_id())
        thread.cpu_affinity(thread.cpu_affinity())
    except (AttributeError, NotImplementedError, ValueError, OSError,
            psutil.Error):
        return False
    return True


def pin_current_thread(cpus: Iterable[int]) -> frozenset[int]:
    """Restrict the calling thread to *cpus* and return its new CPU set.

    Other threads are not affected.  Raises TypeError if *cpus* is not an
    iterable of ints, NotImplementedError if the platform cannot pin
    threads (see ``supports_pinning()``), and ValueError if *cpus* is empty
    or names a CPU that is not in ``available_cpus()``.
    """
    wanted = _as_cpu_set(cpus)
    if not supports_pinning():
        raise NotImplementedError(
            "pinning threads to CPUs is not supported on this platform "
            f"({sys.platform}, psutil {psutil.__version__})")
    _check_available(wanted, available_cpus())
    psutil.Process(threading.get_native_id()).cpu_affinity(sorted(wanted))
    return current_thread_affinity()


def current_thread_affinity() -> frozenset[int]:
    """Return the CPUs the calling thread may run on.

    Uses ``os.sched_getaffinity(0)``, which is per thread on Linux; else
    psutil (per thread where possible, per process otherwise).
    """
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    try:
        return frozenset(psutil.Process(threading.get_native_id()).cpu_affinity())
    except (AttributeError, NotImplementedError, OSError, psutil.Error):
        return available_cpus()

"""``Executor``: the public face of the runtime.

A ``concurrent.futures.Executor`` whose workers run coroutines (``spawn``,
``run``) and plain callables (``submit``, ``map``) on all cores of a
free-threaded interpreter. Follow one task:

1. ``Executor.spawn(coro)`` -> :meth:`Runtime.spawn` wraps it in a
   :class:`~executor.task.Task` (state SCHEDULED), adds it to the registry and
   pushes it into the calling thread's ring of the global queue
   (:mod:`executor.mpmc`), waking a parked worker if there is one.
2. A worker's :func:`~executor.worker.worker_loop` pops it in a batch, marks it
   EXECUTING and resumes the coroutine until its next ``await``.
3. It yields (re-enqueued: local queue first, then global), parks on something
   it awaits (re-enqueued by whoever wakes it), or finishes: the worker removes
   it from the registry and publishes the result, which ``handle.result()`` or
   ``await handle`` then returns.

``submit(fn, ...)`` and ``map(fn, ...)`` run callables the same way: the call
is wrapped in a tiny object that speaks the coroutine protocol (one ``send``
that runs the call and raises ``StopIteration(result)``), so callables and
coroutines share one queue and one worker loop.

The object users hold (``Executor``) is separate from the state the worker
threads hold (``Runtime``), so that an executor that is dropped without
``shutdown()`` is still shut down (by ``weakref.finalize``), and an atexit
hook cancels what is left and joins the workers when the interpreter exits.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import itertools
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import affinity

from . import atomics
from .runtime import Runtime
from .task import Task, context
from .worker import WorkerStats, worker_loop

__all__ = ["Executor", "spawn", "DEFAULT_PIN"]

T = TypeVar("T")

#: Pinning policy used when ``pin`` is not given (see docs/benchmarks.md for why).
DEFAULT_PIN = "none"

_live_runtimes: weakref.WeakSet = weakref.WeakSet()
_counter = itertools.count(1)
_counter_lock = threading.Lock()


class _Call:
    """A plain call dressed as a one-step coroutine (for ``map`` chunks)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn = fn
        self.args = args

    def send(self, _: Any) -> Any:
        raise StopIteration(self.fn(*self.args))

    def throw(self, exc: BaseException) -> Any:
        raise exc

    def close(self) -> None:
        pass


class _SubmitCall:
    """``submit``'s call: runs ``fn`` and settles a ``concurrent.futures.Future``."""

    __slots__ = ("future", "fn", "args", "kwargs")

    def __init__(self, future: concurrent.futures.Future, fn: Callable[..., Any],
                 args: tuple, kwargs: dict) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def send(self, _: Any) -> Any:
        future = self.future
        if future.set_running_or_notify_cancel():
            try:
                result = self.fn(*self.args, **self.kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
        raise StopIteration

    def throw(self, exc: BaseException) -> Any:
        # Cancelled before it ran (shutdown(cancel_futures=True)).
        self.future.cancel()
        raise exc

    def close(self) -> None:
        pass


def _apply_chunk(fn: Callable[..., Any], chunk: list[tuple]) -> list:
    return list(itertools.starmap(fn, chunk))


def _apply_chunk1(fn: Callable[..., Any], chunk: list) -> list:
    return list(map(fn, chunk))


class Executor(concurrent.futures.Executor):
    """A work-stealing executor for coroutines and callables.

    ``Executor(workers=None, *, work_stealing=True, pin=None)``

    * ``workers``: number of worker threads (default: the CPUs this process
      may use).
    * ``work_stealing``: ``True`` gives every worker a local queue that idle
      workers steal from (the spec); ``False`` is the spec's baseline, one
      global queue only.
    * ``pin``: how workers are pinned to CPUs: ``"compact"``, ``"spread"``,
      ``"none"``, or explicit CPU ids / CPU sets (see :func:`affinity.plan`).
      Default :data:`DEFAULT_PIN`.

    Use it as a context manager, or call :meth:`shutdown`.
    """

    def __init__(self, workers: int | None = None, *, work_stealing: bool = True,
                 pin: Any = None, _fair_interval: int | None = None) -> None:
        if workers is None:
            workers = len(affinity.available_cpus())
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise TypeError(f"workers must be an int, got {type(workers).__name__}")
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if not isinstance(work_stealing, bool):
            raise TypeError(f"work_stealing must be a bool, got {type(work_stealing).__name__}")
        self._pin = DEFAULT_PIN if pin is None else pin
        plan = affinity.plan(workers, self._pin)  # validates: ValueError etc. before any thread
        kwargs = {} if _fair_interval is None else {"fair_interval": _fair_interval}
        self._runtime = rt = Runtime(workers, work_stealing=work_stealing, **kwargs)
        self._stats = [WorkerStats(i) for i in range(workers)]
        with _counter_lock:
            self._name = f"executor-{next(_counter)}"
        self._shutdown_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        started = threading.Barrier(workers + 1)
        for i in range(workers):
            t = threading.Thread(
                target=_worker_main,
                args=(rt, i, rt.local_workers[i], self._stats[i], plan[i], started),
                name=f"{self._name}-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        rt.local_workers = []  # each owner side now belongs to its thread only
        started.wait()  # every worker is pinned and running
        _live_runtimes.add(rt)
        self._finalizer = weakref.finalize(self, rt.close, False)

    # -- coroutines -------------------------------------------------------

    def spawn(self, coro: Any) -> Task:
        """Schedule the coroutine ``coro``; return its :class:`JoinHandle`."""
        return self._runtime.spawn(coro)

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Spawn ``coro`` and wait for its result (from outside the executor)."""
        if getattr(context, "runtime", None) is self._runtime:
            if type(coro).__name__ == "coroutine":
                coro.close()
            raise RuntimeError("Executor.run() would block one of its own workers; "
                               "use 'await executor.spawn(coro)' inside a task")
        return self.spawn(coro).result(timeout)

    # -- callables (concurrent.futures API) --------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` on a worker; return a ``concurrent.futures.Future``."""
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {type(fn).__name__}")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._runtime.spawn_runner(_SubmitCall(future, fn, args, kwargs))
        return future

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any], timeout: float | None = None,
            chunksize: int | None = None) -> Iterator[T]:
        """Like ``concurrent.futures.Executor.map``, in chunks.

        The inputs are collected at once (as the standard executors do) and cut
        into chunks, each run as one task, so a small ``fn`` costs one call, not
        one task, per item. ``chunksize=None`` picks about 8 chunks per worker
        (at most 1,024 items each). Results come back in order; the first
        exception raised by ``fn`` is re-raised when its result is reached.
        """
        if not callable(fn):
            raise TypeError(f"map() needs a callable, got {type(fn).__name__}")
        if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
            raise ValueError(f"chunksize must be a positive int, got {chunksize!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        if len(iterables) == 1:  # no argument tuples to build: fn(x) per item
            items: list = list(iterables[0])
            apply: Callable[..., list] = _apply_chunk1
        else:
            items = list(zip(*iterables))
            apply = _apply_chunk
        if chunksize is None:
            chunksize = max(1, min(1024, -(-len(items) // (8 * len(self._threads)))))
        spawn = self._runtime.spawn_runner
        handles = [spawn(_Call(apply, (fn, items[i:i + chunksize])))
                   for i in range(0, len(items), chunksize)]
        del items

        def results() -> Iterator[T]:
            try:
                handles.reverse()  # pop() from the end: drop each handle once consumed
                while handles:
                    h = handles.pop()
                    if deadline is None:
                        yield from h.result()
                    else:
                        yield from h.result(deadline - time.monotonic())
            finally:
                for h in handles:
                    h.cancel()

        return results()

    # -- lifecycle --------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work. Workers exit once no live task is left.

        ``cancel_futures=True`` cancels every task that has not finished (see
        :meth:`JoinHandle.cancel`), so shutdown does not wait for them.
        ``wait=True`` joins the worker threads. Safe to call more than once.
        """
        rt = self._runtime
        if wait and getattr(context, "runtime", None) is rt:
            raise RuntimeError("shutdown(wait=True) called from one of the executor's own "
                               "workers would wait for itself")
        with self._shutdown_lock:
            rt.close(cancel_futures)
        if wait:
            for t in self._threads:
                t.join()

    def stats(self) -> dict[str, Any]:
        """Counters per worker and for the executor (a snapshot)."""
        rt = self._runtime
        return {
            "workers": [s.as_dict() for s in self._stats],
            "live_tasks": len(rt.tasks),
            "global_queue": len(rt.queue),
            "local_queues": [len(s) for s in rt.stealers],
            "work_stealing": rt.work_stealing,
            "pin": self._pin if isinstance(self._pin, str) else list(self._pin),
            "atomics": atomics.BACKEND,
            "shutdown": rt.closing,
        }

    @property
    def workers(self) -> int:
        """Number of worker threads."""
        return len(self._threads)

    def __repr__(self) -> str:
        cpus = [sorted(s.cpus) if s.cpus is not None else None for s in self._stats]
        state = "shut down" if self._runtime.closing else "running"
        return (f"<Executor {self._name} {state} workers={len(self._threads)} "
                f"work_stealing={self._runtime.work_stealing} pin={self._pin!r} cpus={cpus} "
                f"live_tasks={len(self._runtime.tasks)}>")


def _worker_main(rt: Runtime, worker_id: int, local: Any, stats: WorkerStats,
                 cpus: frozenset[int] | None, started: threading.Barrier) -> None:
    stats.native_id = threading.get_native_id()
    try:
        if cpus is not None:
            try:
                affinity.pin_current_thread(cpus)
            except Exception as exc:  # pinning is an optimisation: run unpinned
                warnings.warn(f"worker {worker_id}: could not pin to CPUs {sorted(cpus)}: {exc}",
                              RuntimeWarning, stacklevel=1)
        stats.cpus = affinity.current_thread_affinity()
    finally:
        started.wait()
    worker_loop(worker_id, local, rt.stealers, rt, stats)


def spawn(coro: Any) -> Task:
    """Spawn ``coro`` on the executor whose task is calling (inside a task only)."""
    rt = getattr(context, "runtime", None)
    if rt is None:
        if type(coro).__name__ == "coroutine":
            coro.close()
        raise RuntimeError("executor.spawn() is for code running inside a task; "
                           "outside, call Executor.spawn()")
    return rt.spawn(coro)


@atexit.register
def _shutdown_all_at_exit() -> None:
    runtimes = list(_live_runtimes)
    for rt in runtimes:
        rt.close(True)
    for t in threading.enumerate():
        if t.daemon and t.name.startswith("executor-") and "-worker-" in t.name:
            t.join(timeout=5)

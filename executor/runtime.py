"""``Runtime``: the state the workers share (the spec's ``ExecutorInner``).

* ``queue``: the global :class:`~executor.mpmc.Mpmc`.
* ``tasks``: the registry of live tasks (the spec's ``tasks`` map), ``id(task)
  -> task``. A task is added by ``spawn`` and removed by the worker that runs
  it to completion; it is what keeps a parked task alive. Single ``dict``
  operations are atomic on free-threaded CPython (per-object lock).
* ``stealers``: the thief side of every worker's local queue. The owner sides
  (:class:`~executor.local_queue.Worker`) are *not* here: each is handed to its
  worker thread alone (the spec's ``Vec<Worker>`` in the shared struct would
  let any thread push into any queue).
* Parking: idle workers wait on their own ``threading.Event``. The protocol
  is the usual one against lost wake-ups. A parking worker first publishes
  itself (``idle`` list and ``num_idle`` counter, under ``idle_lock``), *then*
  re-checks every queue, and only then waits. A producer first makes its work
  visible (queue push), *then* reads ``num_idle``. Both sides write one
  location and then read the other, through sequentially consistent atomics
  (or lock hand-offs), so at least one of them sees the other: either the
  worker finds the work, or the producer finds the worker and sets its event.
* Searching: a producer also skips the wake-up while ``searching`` (workers
  spinning for work, or woken and not yet busy) is non-zero. A searcher stops
  counting itself only when it has found work (then it wakes a helper if more
  is queued) or right before it parks, and parking re-checks every queue after
  publishing itself, so work pushed while a searcher was counted is found.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Coroutine
from typing import Any

from .atomics import AtomicInt
from .local_queue import Stealer, Worker
from .mpmc import Mpmc
from .task import Task
from .worker import FAIR_INTERVAL

__all__ = ["Runtime"]


class Runtime:
    """Shared state of one executor's workers."""

    task_class = Task

    def __init__(self, workers: int, *, work_stealing: bool,
                 fair_interval: int = FAIR_INTERVAL) -> None:
        self.queue = Mpmc()
        self.tasks: dict[int, Task] = {}
        self.work_stealing = work_stealing
        self.fair_interval = fair_interval
        self.local_workers = [Worker() for _ in range(workers)]
        self.stealers: tuple[Stealer, ...] = tuple(w.stealer() for w in self.local_workers)
        self.closing = False
        self.idle_lock = threading.Lock()
        self.idle: list[int] = []
        self.num_idle = AtomicInt(0)
        # Workers looking for work (spinning, or just woken and not yet busy).
        # While one is searching, producers wake nobody: it will find the work
        # (Tokio's rule), which saves a futex wake-up per spawn.
        self.searching = AtomicInt(0)
        self.wakeups = [threading.Event() for _ in range(workers)]

    # -- spawning ---------------------------------------------------------

    def spawn(self, coro: Any) -> Task:
        """Spawn a coroutine (``TypeError`` for anything else)."""
        if type(coro) is not types.CoroutineType and not _is_coroutine(coro):
            raise TypeError(_not_a_coroutine(coro))
        if self.closing:
            coro.close()  # it will never run: no "never awaited" warning
        return self.spawn_runner(coro)

    def spawn_runner(self, runner: Any) -> Task:
        """Spawn an object that speaks the coroutine protocol (``send``/``throw``/``close``):
        a coroutine, or a call wrapped by ``submit``/``map``."""
        if self.closing:
            raise RuntimeError("cannot spawn or submit work: the executor has been shut down")
        task = Task(runner, self)
        self.tasks[id(task)] = task
        self.schedule(task)
        return task

    def schedule(self, task: Task) -> None:
        """Put a task that just became SCHEDULED into the global queue, from any thread."""
        producer = self.queue.producer()
        if not producer.push(task):
            while not producer.push(task):  # the ring is full: wait for consumers
                time.sleep(0.0005)
        if self.num_idle.load() and not self.searching.load():
            self.notify_one()

    def wake_helper(self) -> None:
        """There is more work than the calling worker can take: wake a parked worker,
        unless one is already searching."""
        if self.num_idle.load() and not self.searching.load():
            self.notify_one()

    # -- parking ----------------------------------------------------------

    def has_work(self) -> bool:
        if not self.queue.is_empty():
            return True
        if self.work_stealing:
            for s in self.stealers:
                if not s.is_empty():
                    return True
        return False

    def park(self, worker_id: int, local: Worker) -> None:
        """Put worker ``worker_id`` to sleep until there may be work (or shutdown).

        The caller must not be counted in ``searching``; on return it is counted
        again: by whoever woke it (at the moment of the wake-up, so that the
        waker's next decision already sees a searcher) or, if it did not sleep,
        by itself.
        """
        event = self.wakeups[worker_id]
        with self.idle_lock:
            event.clear()
            self.idle.append(worker_id)
            self.num_idle.store(len(self.idle))
        if self.has_work() or (self.closing and not self.tasks):
            with self.idle_lock:
                if worker_id in self.idle:
                    self.idle.remove(worker_id)
                    self.num_idle.store(len(self.idle))
                    self.searching.fetch_add(1)
                    return
        event.wait()

    def notify_one(self) -> None:
        """Wake one parked worker, if any (it starts out counted as searching)."""
        with self.idle_lock:
            if not self.idle:
                return
            worker_id = self.idle.pop()
            self.num_idle.store(len(self.idle))
            self.searching.fetch_add(1)
        self.wakeups[worker_id].set()

    def notify_all(self) -> None:
        """Wake every parked worker."""
        with self.idle_lock:
            idle, self.idle = self.idle, []
            self.num_idle.store(0)
            self.searching.fetch_add(len(idle))
        for worker_id in idle:
            self.wakeups[worker_id].set()

    # -- shutdown ---------------------------------------------------------

    def close(self, cancel: bool) -> None:
        self.closing = True
        if cancel:
            for task in list(self.tasks.values()):
                task.cancel()
        self.notify_all()


def _is_coroutine(obj: Any) -> bool:
    """Native coroutines, ``collections.abc.Coroutine`` objects, and generator-based
    coroutines (``@types.coroutine``, e.g. ``Event.wait()``)."""
    if isinstance(obj, Coroutine):
        return True
    return type(obj) is types.GeneratorType and bool(obj.gi_code.co_flags & 0x100)


def _not_a_coroutine(obj: Any) -> str:
    what = type(obj).__name__
    if callable(obj) and getattr(getattr(obj, "__code__", None), "co_flags", 0) & 0x80:
        return (f"spawn() needs a coroutine object, got the coroutine function "
                f"{getattr(obj, '__qualname__', what)!r}: call it (spawn(f(...)))")
    return f"spawn() needs a coroutine object (from calling an 'async def' function), got {what}"

"""``worker_loop``: what each worker thread runs, after the spec.

One iteration:

1. **Fast path**: pop a batch of up to ``BATCH = 512`` tasks from the global
   queue (:meth:`Mpmc.try_pop_n_with_selector`). With work stealing on, while
   other workers are idle or searching, the pop takes at most half of the ring
   it claims (``share=True``), so a burst spawned by one task is not swallowed
   whole by one worker's batch, where no thief can reach it.
2. **Slow path**, only if that returned 0 (and work stealing is on): take up to
   512 tasks from this worker's own local queue (only half of them while other
   workers are idle or searching, so they have something to steal; see
   :func:`_others_hungry`); if it is empty too, steal
   about half of another worker's local queue (never our own), retrying a
   victim that answered :data:`Steal.Retry` because it merely lost a race.
3. **Fairness** (not in the spec): every ``FAIR_INTERVAL = 61`` iterations the
   local queue is read *before* the global one (the tick Go and Tokio use).
   Without it, tasks kept locally never run while the global queue stays busy:
   the spec reads the local queue only when a global pop returns 0.
4. **Idle**: nothing anywhere. Spin ``SPIN_ROUNDS`` rounds (each gives up the
   CPU with ``sched_yield``), then park on an event until a producer wakes us
   (:meth:`Runtime.park`). An idle executor uses close to no CPU. While it
   spins, and right after it is woken, the worker counts as *searching*:
   producers then wake nobody else (see :mod:`executor.runtime`).
5. **Process the batch** exactly as the spec does: store EXECUTING into every
   task (one batched pass of the C-level ``store`` through ``map``), resume each coroutine
   once, and sort the outcomes: finished (remove from the registry, publish the
   result), yielded (re-enqueue), parked on something (register, then
   ``fetch_sub(EXECUTING)`` and re-enqueue if woken meanwhile).
6. **Re-enqueue** as the spec: the first ``LOCAL_KEEP = 64`` go to the local
   queue (stealable by idle workers), the rest to the global queue through
   this thread's producer ring with ``try_push_n`` and retry. A lone worker
   (``workers=1``) keeps none locally: nobody could steal them, and its own
   ring of the global queue is just as near.

Who touches what: ``local`` (the owner side of the local queue), ``batch``,
``enqueue``, ``selector`` and ``stats`` belong to this thread alone; every
other worker sees this worker only through its :class:`Stealer` and the global
queue. The task objects move between threads only through the queues, whose
atomic hand-offs (see :mod:`executor.mpmc`, :mod:`executor.local_queue`)
order the task's field writes before the next poller's reads; and a task is in
at most one queue at a time, because only the thread that moves it out of IDLE
or EXECUTING enqueues it (see :mod:`executor.task`).

Operation count on the hot path (a task that yields): one ``FOR_ITER``, one
``coroutine.send`` through the task's cached bound method, an ``is None``
test, one ``list.append``; the two state stores and the queue moves are
batched C-level calls (``map``, slicing, ``list.extend``), so they cost a few
tens of ns per task rather than a Python frame each (``scripts/atomics_bench.py``:
about 15 ns per store through ``map``, against about 65 ns for one CAS call).
"""

from __future__ import annotations

import os
from collections import deque
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from .local_queue import Steal, Stealer, Worker
from .task import EXECUTING, SCHEDULED, Task, context

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["worker_loop", "WorkerStats", "BATCH", "LOCAL_KEEP", "FAIR_INTERVAL", "SPIN_ROUNDS"]

BATCH = 512
LOCAL_KEEP = 64
FAIR_INTERVAL = 61
SPIN_ROUNDS = 32
STEAL_RETRIES = 8

_NONES = [None] * BATCH
_Retry = Steal.Retry
_Empty = Steal.Empty
_sched_yield = getattr(os, "sched_yield", None) or (lambda: None)


class WorkerStats:
    """Counters of one worker, written only by that worker's thread."""

    __slots__ = ("worker_id", "cpus", "native_id", "polls", "global_batches", "local_pops",
                 "fair_picks", "steals", "stolen_tasks", "steal_retries", "parks")

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.cpus: frozenset[int] | None = None
        self.native_id: int | None = None
        self.polls = 0  # tasks resumed
        self.global_batches = 0  # non-empty pops from the global queue
        self.local_pops = 0  # non-empty batch pops from the own local queue
        self.fair_picks = 0  # of which forced by the fairness tick
        self.steals = 0  # successful steals from another worker
        self.stolen_tasks = 0  # tasks moved by those steals
        self.steal_retries = 0  # Steal.Retry answers (lost races)
        self.parks = 0  # times the worker went to sleep

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _parked(task: Task, signal: Any, enqueue_append: Any) -> None:
    """The coroutine yielded ``signal`` (not None): it waits for something."""
    park = getattr(type(signal), "_park", None)
    if park is None:
        # Not one of ours (e.g. an asyncio future): resume the coroutine with an
        # error at its await; it will come back through the normal paths.
        err = TypeError(f"a task awaited {signal!r}, which this executor cannot wait for; "
                        "await executor tasks, executor.Event, or executor.yield_now()")
        send = task._send
        coro = task._coro

        def throw_error(_: Any) -> Any:
            task._send = send
            return coro.throw(err)

        task._send = throw_error
        enqueue_append(task)
        return
    if not park(signal, task):
        enqueue_append(task)  # already satisfied: run again soon
        return
    if task.fetch_sub(EXECUTING) & SCHEDULED:
        enqueue_append(task)  # woken while we were still executing it


def _others_hungry(inner: Runtime) -> bool:
    """True while another worker is parked or searching for work. Then the owner
    takes only half of the global ring or local queue it pops, so that the
    thieves find something to steal. (The spec takes up to 512; with
    long-running tasks that kept every task on the first worker.)"""
    return bool(inner.num_idle.load() or inner.searching.load())


def _local_share(local: Worker, inner: Runtime) -> int:
    """How many tasks the owner takes from its local queue at once."""
    return (len(local) + 1) // 2 if _others_hungry(inner) else BATCH


def _steal(victims: list[Stealer], start: int, local: Worker, stats: WorkerStats) -> Any:
    """Steal from the other workers, starting at ``victims[start]``; return a task or None."""
    n = len(victims)
    for i in range(n):
        stealer = victims[(start + i) % n]
        for _ in range(STEAL_RETRIES):
            got = stealer.steal_batch_and_pop(local)
            if got is _Retry:
                stats.steal_retries += 1
                continue
            if got is not _Empty:
                stats.steals += 1
                stats.stolen_tasks += len(local) + 1
                return got.task
            break
    return None


def worker_loop(worker_id: int, local: Worker, stealers: tuple[Stealer, ...],
                inner: Runtime, stats: WorkerStats) -> None:
    """Run tasks until the runtime shuts down and no live task is left."""
    context.runtime = inner
    queue = inner.queue
    try_pop = queue.try_pop_n_with_selector
    producer = queue.producer()
    selector = queue.home_selector(worker_id * 7919 + 1)
    push_global = producer.try_push_n
    registry_pop = inner.tasks.pop
    num_idle = inner.num_idle
    victims = [s for i, s in enumerate(stealers) if i != worker_id]
    # A lone worker has nobody to share with or be robbed by: it keeps no local
    # queue and skips the "take half while others are hungry" checks (two atomic
    # loads per pop), so it runs as the global-only variant does. With stealing
    # on, 1 worker was 2-3% slower than off on chained_spawn and 9% on yield_many.
    stealing = inner.work_stealing and bool(victims)
    fair = inner.fair_interval if stealing else 0
    store = Task.store  # the backend's C method (cereggii) or Python function
    store_all = deque(maxlen=0).extend  # runs a map to the end in C, keeps nothing

    batch: list = [None] * BATCH
    enqueue: list = []
    enqueue_append = enqueue.append
    carry: list = []  # tasks the global queue had no room for (never in practice)
    tick = 0
    idle_rounds = 0
    searching = False  # counted in inner.searching

    while True:
        tick += 1
        size = 0
        if carry:
            size = min(len(carry), BATCH)
            batch[:size] = carry[:size]
            del carry[:size]
        elif fair and tick % fair == 0:
            size = local.pop_into(batch, _local_share(local, inner))
            if size:
                stats.local_pops += 1
                stats.fair_picks += 1
        if not size:
            # FAST PATH: the global queue.
            size = try_pop(selector, batch, stealing and _others_hungry(inner))
            if size:
                stats.global_batches += 1
            elif stealing:
                # SLOW PATH: own local queue, then the other workers'.
                size = local.pop_into(batch, _local_share(local, inner))
                if size:
                    stats.local_pops += 1
                else:
                    task = _steal(victims, tick, local, stats)
                    if task is not None:
                        batch[0] = task
                        size = 1
                        task = None
            if not size:
                # IDLE: spin a little (as a searcher), then park.
                if inner.closing and not inner.tasks:
                    break
                if not searching:
                    searching = True
                    inner.searching.fetch_add(1)
                idle_rounds += 1
                if idle_rounds <= SPIN_ROUNDS:
                    _sched_yield()
                    continue
                idle_rounds = 0
                local.clear_stale()
                stats.parks += 1
                inner.searching.fetch_sub(1)
                inner.park(worker_id, local)  # returns counted as searching again
                continue
        idle_rounds = 0
        if searching:
            searching = False
            inner.searching.fetch_sub(1)
        if num_idle.load() and not (queue.is_empty() and local.is_empty()):
            inner.wake_helper()  # more work is queued: get help

        # PROCESS BATCH
        stats.polls += size
        store_all(map(store, batch, repeat(EXECUTING, size)))  # map stops at size
        for task in islice(batch, size):
            try:
                signal = task._send(None)
            except StopIteration as stop:
                registry_pop(id(task), None)
                task._finish(stop.value, None)
                continue
            except BaseException as exc:
                registry_pop(id(task), None)
                task._finish(None, exc)
                continue
            if signal is None:
                enqueue_append(task)
            else:
                _parked(task, signal, enqueue_append)
        batch[:size] = _NONES[:size]
        task = signal = None  # hold no reference to a finished task
        if inner.closing and not inner.tasks:
            inner.notify_all()

        # RE-ENQUEUE: up to LOCAL_KEEP stay local, the rest go global.
        if enqueue:
            n = len(enqueue)
            store_all(map(store, enqueue, repeat(SCHEDULED, n)))
            kept = local.push_n(enqueue if n <= LOCAL_KEEP else enqueue[:LOCAL_KEEP]) \
                if stealing else 0
            if kept < n:
                rest = enqueue[kept:] if kept else enqueue
                pushed = push_global(rest)
                retries = 0
                while pushed < len(rest):
                    k = push_global(rest[pushed:])
                    pushed += k
                    if not k:
                        retries += 1
                        if retries & 31 == 0:
                            _sched_yield()
                        if retries >= 256:  # our own ring is full: run them ourselves
                            carry.extend(rest[pushed:])
                            break
            if (kept > 1 or kept < n) and num_idle.load():
                inner.wake_helper()
            enqueue.clear()

    if searching:
        inner.searching.fetch_sub(1)
    context.runtime = None


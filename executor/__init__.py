"""A work-stealing executor for coroutines and callables on free-threaded CPython.

Quick start::

    import executor

    async def work(n):
        total = 0
        for i in range(n):
            total += i
            await executor.yield_now()      # let other tasks run
        return total

    with executor.Executor() as ex:          # one worker per available CPU
        handles = [ex.spawn(work(1000)) for _ in range(100)]
        print(sum(h.result() for h in handles))
        print(list(ex.map(abs, range(-5, 5))))   # plain callables too

Inside a task: ``executor.spawn(coro)`` spawns on the same executor,
``await handle`` waits for another task, ``await executor.yield_now()`` yields,
``await event.wait()`` waits for an :class:`Event`.

Modules, in the order a task meets them: :mod:`executor.executor` (the API),
:mod:`executor.runtime` (shared state, parking), :mod:`executor.mpmc` (global
queue), :mod:`executor.worker` (the worker loop), :mod:`executor.local_queue`
(local queues and stealing), :mod:`executor.task` (task state machine),
:mod:`executor.atomics` (compare-and-swap).
"""

from .atomics import BACKEND, AtomicInt
from .executor import DEFAULT_PIN, Executor, spawn
from .local_queue import Steal, Stealer, Worker
from .mpmc import Mpmc, Producer, Selector
from .task import (COMPLETE, EXECUTING, IDLE, SCHEDULED, Event, JoinHandle, Task,
                   yield_now)
from .worker import WorkerStats, worker_loop

__all__ = [
    "Executor", "spawn", "yield_now", "JoinHandle", "Task", "Event", "DEFAULT_PIN",
    "AtomicInt", "BACKEND", "Mpmc", "Producer", "Selector", "Worker", "Stealer", "Steal",
    "worker_loop", "WorkerStats", "IDLE", "SCHEDULED", "EXECUTING", "COMPLETE",
]

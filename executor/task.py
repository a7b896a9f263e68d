"""Tasks, their atomic state machine, and the awaitables a task can wait on.

A :class:`Task` is a coroutine plus a state word. To save an object and an
attribute load per poll, the task *is* its state word: ``Task`` subclasses the
active :class:`~executor.atomics.AtomicInt` (``task.flags`` returns the task).

State (the spec's three states, plus one for the end):

=========  ===  ============================================================
IDLE        0   parked: not in any queue, not running
SCHEDULED   1   in a queue, or will be put in one by whoever set the bit
EXECUTING   2   a worker is polling it (or is about to, in its current batch)
COMPLETE    4   finished; its result or exception is stored
=========  ===  ============================================================

Waking (:meth:`Task._wake`, the spec's ``schedule``) is ONE ``fetch_or(SCHEDULED)``;
the waker enqueues the task only if the previous state had none of
SCHEDULED, EXECUTING, COMPLETE. The spec's ``schedule`` did a ``load`` first and
then the ``fetch_or``; if the worker cleared EXECUTING in between, the waker saw
"executing" in its load, set SCHEDULED, and nobody enqueued the task, which then
stayed SCHEDULED in no queue forever. With a single read-modify-write there is
no in-between: exactly one of the waker and the worker sees the other's bit.

The worker (see :mod:`executor.worker`) follows the spec:

* before polling a batch it stores EXECUTING into every task of the batch
  (one ``map`` over the C-level ``store``, see ``scripts/atomics_bench.py``); a wake that
  lands after that store only adds SCHEDULED;
* after a *yield* (``await yield_now()``) it stores SCHEDULED and re-enqueues
  the task (a wake during the poll is absorbed: the task is queued anyway);
* after the task *parked* on something (a :class:`Task` it awaits, an
  :class:`Event`), it registers the task there, then ``fetch_sub(EXECUTING)``:
  if SCHEDULED was set meanwhile, a wake happened during the poll and the
  worker re-enqueues the task itself; else the task is IDLE and the next wake
  enqueues it;
* on completion it stores the outcome and moves the state to COMPLETE with a
  compare-and-swap (a swap loop if a wake added SCHEDULED), then wakes the
  joiners.

Joining (no extra state bit, so that the worker's two plain stores above can
never erase one): a joiner appends itself to ``_waiters`` under one of a few
striped locks, then does a read-modify-write on the state. The completer's
move to COMPLETE is a read-modify-write too, and it reads ``_waiters`` after
it. The two read-modify-writes are ordered: if the joiner's came first, the
completer sees its entry and wakes it; if the completer's came first, the
joiner sees COMPLETE, withdraws its entry and does not wait.

How a coroutine talks to the worker: it *yields* a value. ``None`` means "I
yielded, run me again later" (so ``asyncio.sleep(0)``, a bare ``yield``, also
works); an object with a ``_park(task) -> bool`` method (a ``Task``, an
``Event``) means "wake me when this is ready". The spec's ``yielded`` cell is
that ``None``: it travels in the return value of ``coroutine.send`` instead of
an attribute written and read on every poll.
"""

from __future__ import annotations

import threading
import types
from concurrent.futures import CancelledError
from typing import Any, Generator, Generic, TypeVar

from .atomics import AtomicInt

__all__ = ["Task", "JoinHandle", "Event", "yield_now", "IDLE", "SCHEDULED", "EXECUTING",
           "COMPLETE"]

T = TypeVar("T")

IDLE = 0
SCHEDULED = 1
EXECUTING = 2
COMPLETE = 4
_WAKE_NEEDED_MASK = SCHEDULED | EXECUTING | COMPLETE

_CLOSED = ()  # ``_waiters`` after completion: nobody may join any more

# Striped locks for the waiter lists of tasks and events (joining is rare
# compared with polling; 64 stripes keep unrelated joins apart).
_STRIPES = tuple(threading.Lock() for _ in range(64))

# Thread-local: ``context.runtime`` is the runtime whose worker runs on this thread.
context = threading.local()


def _stripe(obj: object) -> threading.Lock:
    return _STRIPES[(id(obj) >> 4) & 63]


def _release_waiters(waiters: list) -> None:
    """Wake each waiting task; release each blocked thread's lock."""
    for w in waiters:
        if isinstance(w, Task):
            w._wake()
        else:
            w.release()


@types.coroutine
def yield_now() -> Generator[None, None, None]:
    """Give other tasks a turn: ``await executor.yield_now()``."""
    yield None


class Task(AtomicInt, Generic[T]):
    """A spawned coroutine and the handle to its result (``JoinHandle``).

    Returned by :meth:`Executor.spawn`. From outside the executor use
    :meth:`result`, :meth:`done`, :meth:`cancel`; from inside a task,
    ``await handle`` waits without blocking the worker.
    """

    __slots__ = ("_send", "_coro", "_runtime", "_result", "_exception", "_waiters",
                 "__weakref__")

    # Identity, not the integer value of the state word.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __init__(self, coro: Any, runtime: Any) -> None:
        AtomicInt.__init__(self, SCHEDULED)
        self._coro = coro
        self._send = self._first_send
        self._runtime = runtime
        self._result = None
        self._exception = None
        self._waiters = None

    def _first_send(self, value: Any) -> Any:
        """The first poll binds ``coro.send`` on the worker's thread and caches it.

        On free-threaded 3.13 the thread that creates an object counts its
        references without atomics; every other thread pays atomic updates. A
        bound method made by the spawning thread would be such an object on
        every poll of the task.
        """
        self._send = send = self._coro.send
        return send(value)

    # -- state ------------------------------------------------------------

    @property
    def flags(self) -> Task[T]:
        """The task's state word (the task itself: ``Task`` subclasses ``AtomicInt``)."""
        return self

    def done(self) -> bool:
        """True once the task has finished (returned, raised or was cancelled)."""
        return bool(self.load() & COMPLETE)

    def cancelled(self) -> bool:
        """True if the task finished by cancellation."""
        return self.done() and isinstance(self._exception, CancelledError)

    def __repr__(self) -> str:
        state = self.load()
        if state & COMPLETE:
            what = "cancelled" if isinstance(self._exception, CancelledError) else (
                "failed" if self._exception is not None else "done")
        elif state & EXECUTING:
            what = "running"
        elif state & SCHEDULED:
            what = "scheduled"
        else:
            what = "waiting"
        name = getattr(self._coro, "__qualname__", type(self._coro).__name__)
        return f"<Task {name} {what}>"

    # -- waking -----------------------------------------------------------

    def _wake(self) -> None:
        """Make the task runnable (the spec's ``schedule``, without its lost wake-up)."""
        if not self.fetch_or(SCHEDULED) & _WAKE_NEEDED_MASK:
            self._runtime.schedule(self)

    # -- joining ----------------------------------------------------------

    def _add_waiter(self, waiter: Any) -> bool:
        """Register ``waiter`` (a Task to wake or a Lock to release) for completion.

        Returns False if the task is already complete: then the caller must
        not wait (it may still be woken once, harmlessly).
        """
        with _stripe(self):
            waiters = self._waiters
            if waiters is _CLOSED:
                return False
            if waiters is None:
                self._waiters = [waiter]
            else:
                waiters.append(waiter)
        if self.fetch_or(0) & COMPLETE:  # read-modify-write: ordered with _finish's
            self._remove_waiter(waiter)
            return False
        return True

    def _remove_waiter(self, waiter: Any) -> None:
        with _stripe(self):
            waiters = self._waiters
            if waiters:
                for i, w in enumerate(waiters):
                    if w is waiter:
                        del waiters[i]
                        break

    def _park(self, task: Task) -> bool:
        """Trap protocol: ``task`` awaits this one. False if already complete."""
        return self._add_waiter(task)

    def _finish(self, result: Any, exception: BaseException | None) -> None:
        """Store the outcome and publish COMPLETE (called by the worker that ran it)."""
        self._result = result
        self._exception = exception
        self._send = None
        self._coro = None
        if not self.compare_and_swap(EXECUTING, COMPLETE):
            self.swap(COMPLETE)  # a wake added SCHEDULED during the last poll
        if self._waiters is not None:
            with _stripe(self):
                waiters = self._waiters
                self._waiters = _CLOSED
            _release_waiters(waiters)

    def _outcome(self) -> T:
        exc = self._exception
        if exc is not None:
            raise exc
        return self._result  # type: ignore[return-value]

    def result(self, timeout: float | None = None) -> T:
        """Wait for the task and return its result, or raise its exception.

        Raises ``TimeoutError`` after ``timeout`` seconds, ``CancelledError`` if
        it was cancelled, and ``RuntimeError`` if called from one of the
        executor's own workers while the task is not done (blocking a worker
        could deadlock it: ``await`` the handle instead).
        """
        if not self.load() & COMPLETE:
            if getattr(context, "runtime", None) is self._runtime:
                raise RuntimeError("JoinHandle.result() would block a worker of the executor "
                                   "that runs this task; use 'await handle' inside tasks")
            lock = threading.Lock()
            lock.acquire()
            if self._add_waiter(lock):
                if not lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
                    self._remove_waiter(lock)
                    if not self.load() & COMPLETE:
                        raise TimeoutError(f"task not done after {timeout} s")
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait like :meth:`result`; return the task's exception (None if it returned)."""
        try:
            self.result(timeout)
        except TimeoutError:
            if not self.done():
                raise
        except BaseException:
            pass
        return self._exception

    def __await__(self) -> Generator[Any, None, T]:
        while not self.load() & COMPLETE:
            yield self
        return self._outcome()

    # -- cancelling -------------------------------------------------------

    def cancel(self) -> bool:
        """Request cancellation: the next time the task runs, ``CancelledError`` is
        raised inside it at its current ``await``. Returns False if it is already done.

        A task that catches ``CancelledError`` may go on; one that lets it
        propagate finishes cancelled (``result()`` raises ``CancelledError``).
        """
        coro = self._coro
        if coro is None or self.load() & COMPLETE:
            return False
        send = coro.send

        def throw_cancel(_: Any) -> Any:
            self._send = send
            return coro.throw(CancelledError())

        self._send = throw_cancel
        self._wake()
        return True


#: The type :meth:`Executor.spawn` returns.
JoinHandle = Task


class Event:
    """A flag that tasks can wait for and any thread can set.

    ``await event.wait()`` inside a task parks it (no worker is blocked) until
    :meth:`set`; ``event.wait_blocking(timeout)`` is for plain threads.
    """

    __slots__ = ("_flag", "_waiters", "_lock")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list = []
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiting task and thread."""
        with self._lock:
            if self._flag:
                return
            self._flag = True
            waiters, self._waiters = self._waiters, []
        _release_waiters(waiters)

    def clear(self) -> None:
        """Reset the flag; later waits block until the next :meth:`set`."""
        with self._lock:
            self._flag = False

    def _park(self, task: Task) -> bool:
        with self._lock:
            if self._flag:
                return False
            self._waiters.append(task)
            return True

    @types.coroutine
    def wait(self) -> Generator[Any, None, None]:
        """``await event.wait()``: return once the event is set."""
        while not self._flag:
            yield self

    def wait_blocking(self, timeout: float | None = None) -> bool:
        """Block the calling (non-worker) thread until set; return the flag."""
        lock = threading.Lock()
        lock.acquire()
        with self._lock:
            if self._flag:
                return True
            self._waiters.append(lock)
        if not lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            with self._lock:
                if lock in self._waiters:
                    self._waiters.remove(lock)
        return self._flag


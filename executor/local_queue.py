"""Per-worker local queues: ``Worker`` (owner side) and ``Stealer`` (thief side).

The algorithm is the FIFO flavour of the Chase-Lev deque (as crossbeam-deque's
``Worker::new_fifo``): a fixed ring buffer (a Python ``list`` of ``CAPACITY``
slots) and two counters that only grow:

* ``bottom``: the next slot to write. Written by the owner only.
* ``top``: the next slot to read. Advanced with compare-and-swap by whoever
  takes items: the owner popping, or a thief stealing.

Items ``[top, bottom)`` are in the queue; slot ``i`` lives at ``buf[i % CAPACITY]``.

Taking items (owner ``pop``/``pop_into`` and thieves alike): read ``top`` and
``bottom``, copy the slots ``[top, top + k)`` out with slicing (one C call),
then ``compare_and_swap(top, top + k)``. If the CAS fails someone else took
items first, the copy may be stale, and it is thrown away: a thief reports
:data:`Steal.Retry`, the owner simply tries again. Since ``top`` never goes
back, a CAS that succeeds proves nobody took those slots in between (no ABA).

Why a copy is never overwritten while it is being made: the owner writes slot
``bottom`` only while ``bottom - top < CAPACITY`` for the ``top`` it read, and
``top`` only grows, so it never writes a slot in ``[top, bottom)`` of any
successful taker. A thief holding a stale ``top`` may copy a slot the owner
already reused, but then its CAS fails.

Visibility: the owner fills slots (list slice assignment, under the list's
per-object lock on free-threaded CPython) *before* it stores the new
``bottom``; a taker loads ``bottom`` and only then reads slots. Both counters
are :class:`~executor.atomics.AtomicInt`, whose operations are sequentially
consistent (cereggii) or lock-ordered (pure-Python backend).

Slots that were taken are cleared by the owner only (a thief clearing them
could erase an item the owner has just written there); the owner does it
lazily in ``push_n``/``pop_into``/``clear_stale``, so a finished task is not
kept alive by a stale slot.
"""

from __future__ import annotations

from typing import Any, Sequence

from .atomics import AtomicInt

__all__ = ["Worker", "Stealer", "Steal", "CAPACITY"]

#: Slots in a local queue (Tokio's local run queue holds 256 too).
CAPACITY = 256
_NONES = [None] * CAPACITY


class _Success:
    """``Steal.Success(task)``: the steal took ``task`` (and maybe more)."""

    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task

    def __repr__(self) -> str:
        return f"Steal.Success({self.task!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Success) and other.task is self.task

    __hash__ = None  # type: ignore[assignment]


class _Outcome:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"Steal.{self._name}"


class Steal:
    """Result of a steal: ``Steal.Success(task)``, ``Steal.Empty`` or ``Steal.Retry``."""

    Success = _Success
    #: The victim had nothing to steal.
    Empty = _Outcome("Empty")
    #: The victim had items but another taker won the race: try again.
    Retry = _Outcome("Retry")


class _Queue:
    """State shared by a ``Worker`` and its ``Stealer``s."""

    __slots__ = ("buf", "top", "bottom")

    def __init__(self) -> None:
        self.buf: list = [None] * CAPACITY
        self.top = AtomicInt(0)
        self.bottom = AtomicInt(0)


def _copy(buf: list, start: int, k: int) -> list:
    """Items ``[start, start + k)`` of the ring buffer, in order (k <= CAPACITY)."""
    i = start % CAPACITY
    end = i + k
    if end <= CAPACITY:
        return buf[i:end]
    return buf[i:] + buf[:end - CAPACITY]


class Worker:
    """Owner side of a local queue. Only the thread that owns it may call its methods."""

    __slots__ = ("_q", "_cleared")

    def __init__(self) -> None:
        self._q = _Queue()
        self._cleared = 0  # slots [.., _cleared) have been reset to None

    def stealer(self) -> Stealer:
        """A handle that other threads use to steal from this queue."""
        return Stealer(self._q)

    def __len__(self) -> int:
        q = self._q
        return max(0, q.bottom.load() - q.top.load())

    def is_empty(self) -> bool:
        q = self._q
        return q.bottom.load() <= q.top.load()

    def push(self, item: Any) -> bool:
        """Append one item; return False if the queue is full."""
        return self.push_n((item,)) == 1

    def push_n(self, items: Sequence[Any]) -> int:
        """Append as many of ``items`` as fit; return how many."""
        q = self._q
        t = q.top.load()
        b = q.bottom.load()
        self._clear_upto(t)
        k = CAPACITY - (b - t)
        n = len(items)
        if n < k:
            k = n
        if k <= 0:
            return 0
        buf = q.buf
        i = b % CAPACITY
        end = i + k
        if end <= CAPACITY:
            buf[i:end] = items if k == n else items[:k]
        else:
            first = CAPACITY - i
            buf[i:] = items[:first]
            buf[:k - first] = items[first:k]
        q.bottom.store(b + k)
        return k

    def pop(self) -> Any | None:
        """Take the oldest item, or None if the queue is empty."""
        q = self._q
        while True:
            t = q.top.load()
            if q.bottom.load() <= t:
                return None
            item = q.buf[t % CAPACITY]
            if q.top.compare_and_swap(t, t + 1):
                self._clear_upto(t + 1)
                return item

    def pop_into(self, batch: list, max_items: int | None = None) -> int:
        """Move up to ``len(batch)`` (and at most ``max_items``) of the oldest items
        into ``batch[0:k]``; return ``k``."""
        q = self._q
        limit = len(batch) if max_items is None else min(max_items, len(batch))
        while True:
            t = q.top.load()
            k = q.bottom.load() - t
            if k <= 0:
                return 0
            if k > limit:
                k = limit
            items = _copy(q.buf, t, k)
            if q.top.compare_and_swap(t, t + k):
                batch[:k] = items
                self._clear_upto(t + k)
                return k

    def clear_stale(self) -> None:
        """Drop references left in slots that thieves or pops have taken."""
        self._clear_upto(self._q.top.load())

    def _clear_upto(self, top: int) -> None:
        start = self._cleared
        k = top - start
        if k <= 0:
            return
        if k > CAPACITY:
            start, k = top - CAPACITY, CAPACITY
        buf = self._q.buf
        i = start % CAPACITY
        end = i + k
        if end <= CAPACITY:
            buf[i:end] = _NONES[:k]
        else:
            buf[i:] = _NONES[:CAPACITY - i]
            buf[:end - CAPACITY] = _NONES[:end - CAPACITY]
        self._cleared = top


class Stealer:
    """Thief side of a local queue; safe to use from any thread."""

    __slots__ = ("_q",)

    def __init__(self, q: _Queue) -> None:
        self._q = q

    def __len__(self) -> int:
        q = self._q
        return max(0, q.bottom.load() - q.top.load())

    def is_empty(self) -> bool:
        q = self._q
        return q.bottom.load() <= q.top.load()

    def steal(self) -> _Success | _Outcome:
        """Take the oldest item."""
        q = self._q
        t = q.top.load()
        if q.bottom.load() <= t:
            return Steal.Empty
        item = q.buf[t % CAPACITY]
        if q.top.compare_and_swap(t, t + 1):
            return _Success(item)
        return Steal.Retry

    def steal_batch_and_pop(self, dest: Worker) -> _Success | _Outcome:
        """Take about half of the victim's items: return the first, push the rest into
        ``dest`` (the caller's own queue)."""
        q = self._q
        t = q.top.load()
        n = q.bottom.load() - t
        if n <= 0:
            return Steal.Empty
        k = (n + 1) // 2
        room = CAPACITY - len(dest) + 1
        if k > room:
            k = room
        items = _copy(q.buf, t, k)
        if not q.top.compare_and_swap(t, t + k):
            return Steal.Retry
        if k > 1:
            dest.push_n(items[1:])
        return _Success(items[0])

"""The global queue ``Mpmc``: one single-producer ring per producing thread.

Shape (after the spec's ``Mpmc<T, P=8, NUM_SEGS_P2=12>``):

* Every thread that pushes owns one ring (:class:`_Ring`, the spec's
  ``SegSpsc``), registered on its first push (:meth:`Mpmc.producer`) and cached
  in a ``threading.local``. Only that thread appends to the ring, so producers
  never contend with each other.
* A ring is a ``collections.deque`` of *segments*, each a ``list`` of at most
  ``SEG_SIZE = 2**P = 256`` items; a ring holds at most ``MAX_SEGS =
  2**NUM_SEGS_P2 = 4096`` segments, i.e. ``RING_CAPACITY = 256 * 4096 - 1``
  items, as in the spec. Segments are allocated when the producer fills its
  tail segment and dropped (to the garbage collector) once drained. The spec
  recycles drained segments; here the producer may still hold a reference to a
  full segment that a consumer just drained, so recycling it would let the
  producer write into a list that is no longer in the ring. One list
  allocation per 256 items is not worth that race.
* A consumer overwrites the slots it took with ``None`` (a same-length slice
  assignment, so it cannot disturb the producer's appends), so the queue
  keeps no reference to a task that has left it.
* Consumers find non-empty rings through a two-level bitmap: one bit per ring
  in ``64`` words of ``64`` bits (so up to ``MAX_RINGS = 4096`` rings) plus a
  summary word with one bit per non-empty word. A consumer's :class:`Selector`
  (a 48-bit linear congruential generator, as in the spec) picks where to start
  in the summary and in the word, so consumers spread over rings instead of
  all fighting for ring 0.

Claiming (why one ring has one reader at a time). A ring's bit is set only by
whoever moves its *gate* (an ``AtomicInt``) from IDLE to SCHEDULED. A consumer
claims a ring by clearing its bit with a compare-and-swap on the word: exactly
one consumer wins. It then stores EXECUTING in the gate, moves up to
``len(batch)`` items out (with list slicing: one C call per segment, no Python
loop per item), and releases the ring: if items remain it stores SCHEDULED and
sets the bit again; otherwise it clears EXECUTING with ``fetch_and`` and, if a
producer set SCHEDULED meanwhile, sets the bit again.

Producing. The producer appends to its tail segment (``list.extend``, atomic:
a list's mutations run under its per-object lock on free-threaded CPython),
then looks at the gate. SCHEDULED already set means someone will pop what it
pushed (a claimant stores EXECUTING *after* our push is visible, since the
list's lock orders our ``extend`` before its slice). Otherwise it does
``fetch_or(SCHEDULED)``: from IDLE it sets the ring's bit; from EXECUTING it
leaves the re-marking to the consumer, who sees SCHEDULED when it releases.
No push is ever left unsignalled.

Bitmap words and cereggii. ``AtomicInt`` may be a signed 64-bit integer, so bit
63 of a word is represented by ``-(1 << 63)``; Python's ``|``, ``&`` and ``~``
on negative ints are two's-complement, so every update stays in range.

Reclaiming rings. The ``threading.local`` entry holding a thread's
:class:`Producer` is dropped when the thread exits; a ``weakref.finalize`` then
marks the ring *closed* and schedules it. The consumer that next claims it
drains it and, finding it closed and empty, frees its slot for reuse. Slot
allocation and release take a lock: they happen once per thread lifetime.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Any, Sequence

from .atomics import AtomicInt

__all__ = ["Mpmc", "Producer", "Selector", "P", "NUM_SEGS_P2", "SEG_SIZE", "MAX_SEGS",
           "RING_CAPACITY", "MAX_RINGS"]

P = 8
NUM_SEGS_P2 = 12
SEG_SIZE = 1 << P
MAX_SEGS = 1 << NUM_SEGS_P2
RING_CAPACITY = SEG_SIZE * MAX_SEGS - 1
WORD_BITS = 64
NUM_WORDS = 64
MAX_RINGS = WORD_BITS * NUM_WORDS

# Gate states of a ring.
_IDLE = 0
_SCHEDULED = 1
_EXECUTING = 2
_NOT_EXECUTING = ~_EXECUTING

# _BIT[i] is bit i of a signed 64-bit word (bit 63 is the sign bit).
_BIT = tuple(1 << i for i in range(63)) + (-(1 << 63),)
_NOT_BIT = tuple(~b for b in _BIT)
_U64 = (1 << 64) - 1
_NONES = [None] * SEG_SIZE

_LCG_MUL = 0x5DEECE66D
_LCG_ADD = 0xB
_LCG_MASK = (1 << 48) - 1


class Selector:
    """Per-consumer choice of where to look first.

    A 48-bit linear congruential generator (as ``java.util.Random`` and the
    spec's source) spreads consumers over rings. Optionally a *home* ring (the
    ring the consumer itself produces into, see :meth:`Mpmc.home_selector`) is
    tried first on most pops: a worker then mostly pops back the tasks it
    re-enqueued, so a task keeps running on the same core (its coroutine frame
    stays in that core's cache, and its reference counts stay uncontended)
    while any idle consumer can still claim the ring. Every ``HOME_PERIOD``-th
    pop skips the home preference, so rings of other producers (tasks spawned
    from outside) are visited even while the home ring never runs dry. Owned by
    one consumer thread; not shared.
    """

    __slots__ = ("_state", "home", "calls", "_mul", "_mask")

    #: The home ring is tried first on all but one in ``HOME_PERIOD`` pops; the
    #: other pops pick at random, so a busy home ring cannot starve other rings.
    HOME_PERIOD = 4

    def __init__(self, seed: int = 0, home: int = -1) -> None:
        self._state = (seed ^ _LCG_MUL) & _LCG_MASK
        self.home = home
        self.calls = 0
        # Private copies of the large constants: an int above 256 is a shared,
        # reference-counted object on free-threaded 3.13, and every worker
        # touching the module's copy would contend on its reference count.
        self._mul = _LCG_MUL ^ 0
        self._mask = _LCG_MASK ^ 0

    def next(self) -> int:
        """Return the next 32 pseudo-random bits."""
        self._state = s = (self._state * self._mul + _LCG_ADD) & self._mask
        return s >> 16


def _pick_bit(word: int, start: int) -> int:
    """Index of a set bit of the 64-bit ``word`` (non-zero), searching from ``start`` upwards
    and wrapping around."""
    u = word & _U64
    high = u >> start
    if high:
        return start + (high & -high).bit_length() - 1
    return (u & -u).bit_length() - 1


class _Ring:
    """One producer's segmented ring (the spec's ``SegSpsc``).

    Written by its producer thread (``segs.append``, tail ``extend``,
    ``pushed``) and by the one consumer that holds its claim (``segs.popleft``,
    ``head``, ``popped``); each of those fields has one writer at a time.
    """

    __slots__ = ("index", "segs", "head", "pushed", "popped", "gate", "closed", "__weakref__")

    def __init__(self, index: int) -> None:
        self.index = index
        self.segs: deque[list] = deque([[]])
        self.head = 0  # consumer's offset into segs[0]
        self.pushed = 0  # written by the producer only
        self.popped = 0  # written by the claiming consumer only
        self.gate = AtomicInt(_IDLE)
        self.closed = False

    def __len__(self) -> int:
        return max(0, self.pushed - self.popped)


class Producer:
    """A thread's handle on its own ring of an :class:`Mpmc`.

    Get it with :meth:`Mpmc.producer` from the thread that pushes; using it
    from another thread breaks the single-producer rule.
    """

    __slots__ = ("_mpmc", "_ring", "_tail", "__weakref__")

    def __init__(self, mpmc: Mpmc, ring: _Ring) -> None:
        self._mpmc = mpmc
        self._ring = ring
        self._tail = ring.segs[-1]

    def try_push_n(self, items: Sequence[Any]) -> int:
        """Push as many of ``items`` as fit; return how many (0 when the ring is full)."""
        ring = self._ring
        n = len(items)
        room = RING_CAPACITY - (ring.pushed - ring.popped)
        k = n if n <= room else room
        if k <= 0:
            return 0
        tail = self._tail
        space = SEG_SIZE - len(tail)
        if k <= space:
            tail.extend(items if k == n else items[:k])
        else:
            i = 0
            while i < k:
                if space == 0:
                    tail = []
                    ring.segs.append(tail)
                    space = SEG_SIZE
                take = k - i if k - i < space else space
                tail.extend(items[i:i + take])
                i += take
                space -= take
            self._tail = tail
        ring.pushed += k
        if not ring.gate.load() & _SCHEDULED:
            self._mpmc._signal(ring)
        return k

    def push(self, item: Any) -> bool:
        """Push one item; return False if the ring is full."""
        ring = self._ring
        if ring.pushed - ring.popped >= RING_CAPACITY:
            return False
        tail = self._tail
        if len(tail) == SEG_SIZE:
            self._tail = tail = []
            ring.segs.append(tail)
        tail.append(item)
        ring.pushed += 1
        if not ring.gate.load() & _SCHEDULED:
            self._mpmc._signal(ring)
        return True


class Mpmc:
    """Multi-producer/multi-consumer queue made of per-producer rings."""

    def __init__(self) -> None:
        self._rings: list[_Ring | None] = [None] * MAX_RINGS
        self._words = tuple(AtomicInt(0) for _ in range(NUM_WORDS))
        self._summary = AtomicInt(0)
        self._slots_lock = threading.Lock()
        self._free = list(range(MAX_RINGS - 1, -1, -1))  # a stack: lowest index on top
        self._local = threading.local()

    # -- producers -------------------------------------------------------

    def producer(self) -> Producer:
        """Return the calling thread's :class:`Producer`, registering a ring on first use."""
        try:
            return self._local.producer
        except AttributeError:
            pass
        with self._slots_lock:
            if not self._free:
                raise RuntimeError(f"Mpmc: all {MAX_RINGS} producer rings are in use "
                                   "(one per live producing thread)")
            index = self._free.pop()
            ring = _Ring(index)
            self._rings[index] = ring
        producer = Producer(self, ring)
        # When the thread exits, its threading.local entry dies, and the ring
        # is closed and scheduled so that a consumer drains and frees it.
        weakref.finalize(producer, _close_ring, weakref.ref(self), ring)
        self._local.producer = producer
        return producer

    def home_selector(self, seed: int = 0) -> Selector:
        """A :class:`Selector` whose home is the calling thread's own ring."""
        return Selector(seed, self.producer()._ring.index)

    def _signal(self, ring: _Ring) -> None:
        """Producer side: make sure some consumer will look at ``ring``."""
        if ring.gate.fetch_or(_SCHEDULED) == _IDLE:
            self._mark(ring.index)

    def _mark(self, index: int) -> None:
        w = index >> 6
        self._words[w].fetch_or(_BIT[index & 63])
        self._summary.fetch_or(_BIT[w])

    # -- consumers -------------------------------------------------------

    def try_pop_n_with_selector(self, selector: Selector, batch: list,
                                share: bool = False) -> int:
        """Claim one non-empty ring and move up to ``len(batch)`` items from it
        into ``batch[0:k]``; return ``k`` (0 when no ring had items).

        ``share=True`` takes at most half of the ring (rounded up), leaving the
        rest for other consumers: the executor asks for it while other workers
        are looking for work."""
        summary = self._summary
        words = self._words
        home = selector.home
        selector.calls = calls = selector.calls + 1
        if home >= 0 and calls % Selector.HOME_PERIOD:
            wi = home >> 6
            word = words[wi]
            x = word.load()
            bit = _BIT[home & 63]
            if x & bit and word.compare_and_swap(x, x & ~bit):
                if x == bit:
                    self._word_emptied(wi)
                k = self._take(self._rings[home], batch, share)
                if k:
                    return k
        for _ in range(64):
            s = summary.load()
            if not s:
                return 0
            r = selector.next()
            wi = _pick_bit(s, r & 63)
            word = words[wi]
            x = word.load()
            if not x:
                # Stale summary bit (a claimant is about to clear it): fix it.
                self._word_emptied(wi)
                continue
            bi = _pick_bit(x, (r >> 6) & 63)
            bit = _BIT[bi]
            if not word.compare_and_swap(x, x & ~bit):
                continue  # another consumer changed the word; pick again
            if x == bit:
                self._word_emptied(wi)
            k = self._take(self._rings[(wi << 6) | bi], batch, share)
            if k:
                return k
        return 0

    def _word_emptied(self, wi: int) -> None:
        """We cleared the last bit of word ``wi``: clear its summary bit, then re-read the
        word with a read-modify-write so that a ring marked meanwhile is not hidden."""
        summary = self._summary
        summary.fetch_and(_NOT_BIT[wi])
        if self._words[wi].fetch_or(0):
            summary.fetch_or(_BIT[wi])

    def _take(self, ring: _Ring, batch: list, share: bool) -> int:
        """Pop from a ring whose claim we hold, then release it."""
        ring.gate.store(_EXECUTING)
        n = len(batch)
        if share:
            half = (ring.pushed - ring.popped + 1) // 2
            if half < n:
                n = half if half > 0 else 1
        k = _pop_into(ring, batch, n)
        self._release(ring)
        return k

    def _release(self, ring: _Ring) -> None:
        """Consumer side: give up the claim on ``ring``, re-marking it if needed."""
        if ring.pushed != ring.popped:
            ring.gate.store(_SCHEDULED)
            self._mark(ring.index)
            return
        if ring.closed:
            # Its producer thread is gone and it is empty: free the slot. The
            # gate stays EXECUTING, so nothing marks this ring again.
            with self._slots_lock:
                self._rings[ring.index] = None
                self._free.append(ring.index)
            return
        if ring.gate.fetch_and(_NOT_EXECUTING) & _SCHEDULED:
            self._mark(ring.index)

    def is_empty(self) -> bool:
        """True if no ring is marked as holding items (a snapshot). A ring being
        popped is unmarked until its claimant releases it."""
        return not self._summary.load()

    def __len__(self) -> int:
        """Number of queued items (a snapshot; exact when no thread is pushing or popping)."""
        return sum(len(r) for r in self._rings if r is not None)

    def ring_count(self) -> int:
        """Number of registered rings (live producer threads plus undrained closed rings)."""
        return sum(1 for r in self._rings if r is not None)


def _pop_into(ring: _Ring, batch: list, n: int) -> int:
    """Move up to ``n`` (<= ``len(batch)``) items from ``ring`` into ``batch[0:k]``;
    return ``k``. Called only by the consumer holding the ring's claim.
    """
    segs = ring.segs
    head = ring.head
    got = 0
    while got < n:
        seg = segs[0]
        chunk = seg[head:head + n - got]
        c = len(chunk)
        if c:
            batch[got:got + c] = chunk
            # Drop the ring's references to what we took (a same-length slice
            # assignment: the producer's concurrent extend only appends).
            seg[head:head + c] = _NONES[:c]
            got += c
            head += c
        if head == SEG_SIZE and len(segs) > 1:
            # A full segment is never written again (the producer has moved
            # on to a newer one, which is already in segs): drop it.
            segs.popleft()
            head = 0
            continue
        if head == SEG_SIZE:
            # Full and drained, but the producer has not appended the next
            # segment yet: keep it (the producer still references it).
            break
        if c == 0 or head >= len(seg):
            break
    if head == SEG_SIZE and len(segs) > 1:
        segs.popleft()
        head = 0
    ring.head = head
    ring.popped += got
    return got


def _close_ring(mpmc_ref: weakref.ref, ring: _Ring) -> None:
    mpmc = mpmc_ref()
    if mpmc is None:
        return
    ring.closed = True
    mpmc._signal(ring)

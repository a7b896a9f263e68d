"""Tests for executor.mpmc: the Selector, one producer's ring, capacity, the
multi-producer/multi-consumer protocol, and the reclaiming of rings of exited threads.

Every queue is built under each atomics backend in turn (``mpmc.AtomicInt`` is
patched for the test), so both the hardware-CAS and the lock-based paths run.
"""

from __future__ import annotations

import gc
import random
import threading
import time

import pytest

from executor import mpmc
from executor.atomics import atomic_int_class
from executor.mpmc import SEG_SIZE, Mpmc, Selector

#: Generous limit for a thread to finish or an event to arrive (catches hangs only).
DEADLINE_S = 60.0


@pytest.fixture
def make_queue(atomics_backend, monkeypatch):
    """Build Mpmc queues whose atomics (bitmap words, gates) use the backend under test."""
    monkeypatch.setattr(mpmc, "AtomicInt", atomic_int_class(atomics_backend))
    return Mpmc


def pop_all(q, selector=None, batch_len=512):
    """Pop until a call returns 0; return the items in the order they came out."""
    selector = selector or Selector(1)
    batch = [None] * batch_len
    out = []
    while k := q.try_pop_n_with_selector(selector, batch):
        out.extend(batch[:k])
    return out


def drain_until(q, done, selector=None, timeout=10.0):
    """Pop (collecting items) until ``done()`` is true, collecting garbage when the
    queue seems idle (a dead thread's ring is closed by a finalizer); fail on timeout."""
    selector = selector or Selector(2)
    batch = [None] * 512
    out = []
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, "queue did not reach the expected state in time"
        k = q.try_pop_n_with_selector(selector, batch)
        out.extend(batch[:k])
        if not k:
            gc.collect()
            time.sleep(0.001)
    return out


# --- Selector ----------------------------------------------------------------

def test_selector_is_deterministic():
    """Two selectors with the same seed give the same sequence; other seeds differ."""
    a, b, c = Selector(7), Selector(7), Selector(8)
    seq_a = [a.next() for _ in range(100)]
    assert seq_a == [b.next() for _ in range(100)]
    assert seq_a != [c.next() for _ in range(100)]
    assert [Selector().next() for _ in range(3)] == [Selector(0).next()] * 3


def test_selector_matches_java_random():
    """The LCG is java.util.Random's: the first nextInt() of new Random(0) and
    new Random(42), read as unsigned 32-bit."""
    assert Selector(0).next() == -1155484576 & 0xFFFFFFFF
    assert Selector(42).next() == -1170105035 & 0xFFFFFFFF


def test_selector_range_and_spread():
    """Values are 32-bit, and the 6-bit fields a consumer uses as start positions
    (r & 63 for the word, (r >> 6) & 63 for the bit) take all 64 values."""
    s = Selector(123)
    values = [s.next() for _ in range(5_000)]
    assert all(0 <= v < 1 << 32 for v in values)
    assert {v & 63 for v in values} == set(range(64))
    assert {(v >> 6) & 63 for v in values} == set(range(64))


# --- one producer, one consumer ----------------------------------------------

def test_push_pop_fifo_single_ring(make_queue):
    """Items pushed one by one by one thread come out in the same order."""
    q = make_queue()
    p = q.producer()
    for i in range(600):
        assert p.push(i) is True
    assert pop_all(q, batch_len=7) == list(range(600))


def test_producer_is_per_thread(make_queue):
    """A thread gets the same Producer every time; another thread gets its own ring."""
    q = make_queue()
    p = q.producer()
    assert q.producer() is p
    other = []
    t = threading.Thread(target=lambda: other.append(q.producer()))
    t.start()
    t.join()
    assert other[0] is not p
    del other
    assert 1 <= q.ring_count() <= 2


def test_try_push_n_across_segments(make_queue):
    """try_push_n returns how many it pushed and keeps order across segment boundaries,
    whatever the offset of the first push inside a segment."""
    assert 1_000 > SEG_SIZE
    q = make_queue()
    p = q.producer()
    assert p.try_push_n(range(3)) == 3  # start mid-segment
    assert p.try_push_n(list(range(3, 1_003))) == 1_000
    assert p.try_push_n(()) == 0
    assert p.try_push_n(tuple(range(1_003, 1_003 + SEG_SIZE))) == SEG_SIZE
    assert len(q) == 1_003 + SEG_SIZE
    assert pop_all(q) == list(range(1_003 + SEG_SIZE))
    assert len(q) == 0


def test_batch_pop_fills_prefix(make_queue):
    """A pop into a fixed batch of 512 returns k and fills batch[0:k] with the oldest
    items; slots past k are left untouched and the batch keeps its length."""
    q = make_queue()
    p = q.producer()
    p.try_push_n(range(1_000))
    sel = Selector(3)
    batch = [None] * 512
    assert q.try_pop_n_with_selector(sel, batch) == 512
    assert batch == list(range(512))
    batch = ["x"] * 512
    assert q.try_pop_n_with_selector(sel, batch) == 488
    assert batch[:488] == list(range(512, 1_000))
    assert batch[488:] == ["x"] * 24
    assert len(batch) == 512
    assert q.try_pop_n_with_selector(sel, batch) == 0


def test_pop_resumes_at_exact_segment_end(make_queue):
    """Draining a ring that ends exactly at a full segment, then pushing more, loses
    nothing (the consumer keeps the drained segment until the producer adds the next)."""
    q = make_queue()
    p = q.producer()
    p.try_push_n(range(SEG_SIZE))
    assert pop_all(q) == list(range(SEG_SIZE))
    assert p.push(SEG_SIZE)
    p.try_push_n(range(SEG_SIZE + 1, 2 * SEG_SIZE + 5))
    assert pop_all(q, batch_len=100) == list(range(SEG_SIZE, 2 * SEG_SIZE + 5))


def test_len_and_is_empty(make_queue):
    """len() counts queued items; is_empty() is False while items are queued and True
    once the pop that takes the last item has released the ring."""
    q = make_queue()
    assert len(q) == 0 and q.is_empty()
    p = q.producer()
    p.try_push_n(range(10))
    assert len(q) == 10 and not q.is_empty()
    batch = [None] * 4
    assert q.try_pop_n_with_selector(Selector(), batch) == 4
    assert len(q) == 6 and not q.is_empty()
    assert q.try_pop_n_with_selector(Selector(), [None] * 6) == 6
    assert len(q) == 0 and q.is_empty()  # exact as soon as the last item is taken
    p.push("again")
    assert len(q) == 1 and not q.is_empty()


# --- capacity ----------------------------------------------------------------

@pytest.mark.parametrize("capacity", [10, SEG_SIZE + 44])
def test_capacity_partial_then_full_then_resumes(make_queue, monkeypatch, capacity):
    """With a small RING_CAPACITY, try_push_n pushes what fits (a partial count), then
    0 (and push False) while full, and accepts exactly as many as were popped."""
    monkeypatch.setattr(mpmc, "RING_CAPACITY", capacity)
    q = make_queue()
    p = q.producer()
    items = list(range(capacity + 15))
    assert p.try_push_n(items) == capacity
    assert p.try_push_n(items[capacity:]) == 0
    assert p.push("no room") is False
    assert len(q) == capacity
    batch = [None] * 4
    assert q.try_pop_n_with_selector(Selector(), batch) == 4
    assert batch == [0, 1, 2, 3]
    assert p.try_push_n(items[capacity:]) == 4
    assert p.try_push_n(items[capacity + 4:]) == 0
    assert pop_all(q) == items[4:capacity + 4]
    assert p.push("room again") is True


# --- producer slots ------------------------------------------------------------

def test_all_slots_in_use_raises_then_slot_is_reused(make_queue, monkeypatch):
    """With MAX_RINGS=2, a third live producer thread gets RuntimeError; once a
    producer thread has exited and its ring is drained, a new thread gets its slot."""
    monkeypatch.setattr(mpmc, "MAX_RINGS", 2)
    q = make_queue()
    q.producer().push("main")
    hold, holding = threading.Event(), threading.Event()

    def holder():
        q.producer().push("holder")
        holding.set()
        hold.wait(DEADLINE_S)

    def late(result):
        try:
            q.producer().push("late")
            result.append("ok")
        except RuntimeError as exc:
            result.append(exc)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(DEADLINE_S)
    result = []
    t2 = threading.Thread(target=late, args=(result,))
    t2.start()
    t2.join()
    assert isinstance(result[0], RuntimeError)
    hold.set()
    t.join()
    drained = drain_until(q, lambda: q.ring_count() == 1)
    assert sorted(drained) == ["holder", "main"]
    result.clear()
    t3 = threading.Thread(target=late, args=(result,))
    t3.start()
    t3.join()
    assert result == ["ok"]
    assert drain_until(q, lambda: q.ring_count() == 1) == ["late"]


def test_rings_of_exited_threads_are_reclaimed(make_queue, monkeypatch):
    """3 waves of 50 short-lived producer threads: after each wave is drained, only
    the main thread's ring is left, no item is lost, and with only 64 slots in all
    (150 threads > 64) every wave still registers: freed slots are reused."""
    monkeypatch.setattr(mpmc, "MAX_RINGS", 64)
    q = make_queue()
    q.producer().push(("main", 0))  # the one live producer
    errors = []
    seen = []

    def short_lived(wave, i):
        try:
            p = q.producer()
            p.try_push_n([(wave, i, j) for j in range(3)])
            p.push((wave, i, 3))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for wave in range(3):
        ts = [threading.Thread(target=short_lived, args=(wave, i)) for i in range(50)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(DEADLINE_S)
        assert not errors, errors
        assert q.ring_count() <= 51
        got = drain_until(q, lambda: q.ring_count() == 1 and len(q) == 0)
        seen.extend(got)
        assert sorted(x for x in got if x[0] == wave) == \
            [(wave, i, j) for i in range(50) for j in range(4)]
    assert seen.count(("main", 0)) == 1
    assert len(seen) == 3 * 50 * 4 + 1
    assert q.ring_count() == 1


# --- many producers, many consumers -------------------------------------------

PRODUCERS = 4
PER_PRODUCER = 20_000
CONSUMER_BATCHES = (512, 64, 5)


def _mpmc_stress(q, threads, items_per_producer=PER_PRODUCER):
    """Run PRODUCERS producers and len(CONSUMER_BATCHES) consumers on ``q``; check
    that every item is popped exactly once and in per-producer FIFO order."""
    total = PRODUCERS * items_per_producer
    consumed = atomic_int_class()(0)
    logs = [[] for _ in CONSUMER_BATCHES]

    def producer(pid):
        def run():
            rng = random.Random(pid)
            p = q.producer()
            items = [(pid, seq) for seq in range(items_per_producer)]
            i = 0
            while i < len(items) and threads.running():
                if rng.random() < 0.3:
                    if p.push(items[i]):
                        i += 1
                    else:
                        time.sleep(0)
                    continue
                n = rng.randint(1, 300)
                k = p.try_push_n(items[i:i + n])
                assert 0 <= k <= n
                i += k
                if k < n:
                    time.sleep(0)  # ring full: let consumers catch up
            assert i == len(items)
        return run

    def consumer(cid, batch_len, log):
        def run():
            sel = Selector(cid)
            batch = [None] * batch_len
            pop = q.try_pop_n_with_selector
            while consumed.load() < total and threads.running():
                k = pop(sel, batch)
                if k:
                    log.append(batch[:k])
                    consumed.fetch_add(k)
                else:
                    time.sleep(0)
        return run

    threads.run(*[producer(pid) for pid in range(PRODUCERS)],
                *[consumer(cid, n, log)
                  for cid, (n, log) in enumerate(zip(CONSUMER_BATCHES, logs))])

    # One claim takes consecutive items of one ring: each batch is a run of
    # consecutive sequence numbers of a single producer.
    runs = {pid: [] for pid in range(PRODUCERS)}
    for log in logs:
        last_start = {}
        for batch in log:
            pid, first = batch[0]
            assert batch == [(pid, first + j) for j in range(len(batch))], \
                "a batch is not a consecutive run of one producer's items"
            # A consumer's own successive claims on one ring move forward.
            assert first > last_start.get(pid, -1)
            last_start[pid] = first
            runs[pid].append((first, len(batch)))
    # The runs of each producer tile 0..n-1 exactly: no loss, no duplicate.
    for pid, pieces in runs.items():
        pieces.sort()
        pos = 0
        for first, n in pieces:
            assert first == pos, f"producer {pid}: gap or overlap at {pos}"
            pos += n
        assert pos == items_per_producer
    assert consumed.load() == total
    assert len(q) == 0


def test_mpmc_stress_exactly_once_fifo(make_queue, threads):
    """4 producers x 20,000 unique items (random mix of push and try_push_n batches)
    and 3 consumers with their own Selector and batch sizes: every item is popped
    exactly once, batches are FIFO runs of one producer, and afterwards the rings of
    the exited producer threads are reclaimed."""
    for _ in range(3):  # a few rounds: interleavings differ from run to run
        q = make_queue()
        _mpmc_stress(q, threads)
        drain_until(q, lambda: q.ring_count() == 0)
        assert pop_all(q) == [] and q.is_empty()


def test_mpmc_stress_with_tiny_rings(make_queue, monkeypatch, threads):
    """The same stress with RING_CAPACITY = 300 (just over one segment), so producers
    keep hitting a full ring and retrying while consumers drain it."""
    monkeypatch.setattr(mpmc, "RING_CAPACITY", 300)
    _mpmc_stress(make_queue(), threads, items_per_producer=5_000)


def test_home_selector_pops_its_own_ring_first(make_queue):
    """A Selector with a home ring claims that ring first while it has items, and
    falls back to the other rings (like the spec's random selector) once it is empty."""
    q = make_queue()
    other = []

    def fill_other():
        q.producer().try_push_n([("other", i) for i in range(5)])
        other.append(q.producer())  # keep the thread's ring alive until drained

    t = threading.Thread(target=fill_other)
    t.start()
    t.join()
    sel = q.home_selector(seed=3)
    q.producer().try_push_n([("home", i) for i in range(5)])
    batch = [None] * 3
    got = []
    for _ in range(4):
        sel.calls = 0  # stay off the periodic random pick for this check
        k = q.try_pop_n_with_selector(sel, batch)
        got.append(batch[:k])
    assert got[0] == [("home", 0), ("home", 1), ("home", 2)]
    assert got[1] == [("home", 3), ("home", 4)]
    assert got[2] == [("other", 0), ("other", 1), ("other", 2)]
    assert got[3] == [("other", 3), ("other", 4)]
    assert q.is_empty() and len(q) == 0


def test_home_selector_still_visits_other_rings_while_home_stays_busy(make_queue):
    """The home ring never runs dry here (refilled after every pop), yet the other
    producer's items are all popped: the home preference cannot starve them."""
    q = make_queue()
    keep = []

    def fill_other():
        q.producer().try_push_n([("other", i) for i in range(50)])
        keep.append(q.producer())

    t = threading.Thread(target=fill_other)
    t.start()
    t.join()
    sel = q.home_selector(seed=5)
    home = q.producer()
    batch = [None] * 4
    seen_other = 0
    for _ in range(400):
        home.try_push_n([("home", 0)] * 4)
        k = q.try_pop_n_with_selector(sel, batch)
        seen_other += sum(1 for item in batch[:k] if item[0] == "other")
        if seen_other == 50:
            break
    assert seen_other == 50


def test_share_takes_at_most_half_of_the_ring(make_queue):
    """share=True (asked for while other workers look for work) leaves half of the
    claimed ring for them; share=False takes up to len(batch)."""
    q = make_queue()
    q.producer().try_push_n(list(range(10)))
    batch = [None] * 512
    assert q.try_pop_n_with_selector(Selector(), batch, share=True) == 5
    assert batch[:5] == [0, 1, 2, 3, 4]
    assert q.try_pop_n_with_selector(Selector(), batch, share=True) == 3
    assert q.try_pop_n_with_selector(Selector(), batch) == 2
    assert batch[:2] == [8, 9]
    q.producer().push("last")
    assert q.try_pop_n_with_selector(Selector(), batch, share=True) == 1

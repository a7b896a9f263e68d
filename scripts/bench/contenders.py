"""The contenders and how one measurement of each runs.

* ``executor``: this project's :class:`executor.Executor` with a worker count,
  ``work_stealing`` on or off and a pinning policy. A fresh executor per
  measurement, created and shut down outside the timed region.
* ``floor``: the same coroutines on :class:`FloorRuntime`, a minimal scheduler
  in one thread (a deque, no locks, no atomics): what the work costs with no
  scheduling overhead beyond resuming the coroutine.
* ``asyncio``: the same coroutines on one asyncio event loop
  (``create_task``, ``asyncio.sleep(0)``, ``asyncio.Event``).
* ``loop``: for callable workloads, the plain loop ``list(map(fn, xs))``.
* ``threadpool``: ``concurrent.futures.ThreadPoolExecutor`` with the same
  worker count (its ``map`` or ``submit``).
* ``threads``: for ``imbalance``, the same CPU work split evenly over N plain
  threads (alive for the whole measurement) with no scheduler at all: the machine's ceiling for N-way
  CPU-bound parallelism.

One-thread contenders (floor, asyncio, loop) run in a fresh thread pinned to
one CPU, so the OS does not migrate them mid-run. The measuring thread itself
is never pinned (``affinity.available_cpus()`` reads the calling thread's
affinity, and threads inherit it).

A measurement: one untimed warm-up round, then rounds until ``min_time``
seconds have passed (at least one). Every wait has a deadline; missing it
raises :class:`BenchTimeout` (after cancelling what is left), so a hang fails
loudly instead of freezing the suite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import gc
import itertools
import threading
import time
import types
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import affinity
import executor

from .workloads import Workload, poly

__all__ = ["Contender", "Sample", "BenchTimeout", "measure", "ExecApi", "FloorRuntime",
           "run_pinned", "guarded_executor", "bounded"]


class BenchTimeout(RuntimeError):
    """A wait in the benchmark ran past its deadline."""


@dataclass(frozen=True)
class Contender:
    kind: str  # executor | floor | asyncio | loop | threadpool
    workers: int = 1
    stealing: bool | None = None
    pin: str | None = None
    method: str = ""  # callable workloads: map | submit

    @property
    def label(self) -> str:
        if self.kind == "executor":
            m = f" {self.method}" if self.method else ""
            return (f"executor{m} w={self.workers} ws={'on' if self.stealing else 'off'} "
                    f"pin={self.pin}")
        if self.kind == "threadpool":
            return f"ThreadPoolExecutor {self.method} w={self.workers}"
        if self.kind == "floor":
            return "floor (1 thread, no scheduler)"
        if self.kind == "loop":
            return "plain loop list(map(fn, xs))"
        if self.kind == "asyncio":
            return "asyncio (1 loop, sleep(0))"
        if self.kind == "threads":
            return f"plain threads w={self.workers} (split evenly)"
        return self.kind

    def as_dict(self) -> dict:
        return {"label": self.label, "kind": self.kind, "workers": self.workers,
                "work_stealing": self.stealing, "pin": self.pin, "method": self.method or None}


@dataclass
class Sample:
    throughput: float  # units per second
    units: int
    seconds: float
    rounds: int
    workers: dict | None = None  # executor only: per-worker counters (warm-up included)

    @property
    def busiest_share(self) -> float | None:
        """Fraction of all polls run by the busiest worker (executor, 2+ workers)."""
        polls = (self.workers or {}).get("polls")
        if not polls or len(polls) < 2 or not sum(polls):
            return None
        return max(polls) / sum(polls)


def _worker_counters(ex: executor.Executor) -> dict:
    ws = ex.stats()["workers"]
    return {k: [w[k] for w in ws] for k in ("polls", "steals", "stolen_tasks", "parks")}


# -- helpers ---------------------------------------------------------------------

def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise BenchTimeout("deadline passed")
    return left


def run_pinned(fn: Callable[[], Any], cpu: int | None, timeout: float, what: str) -> Any:
    """Run ``fn()`` in a fresh thread pinned to ``cpu`` (None: unpinned); wait at most
    ``timeout`` seconds."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            if cpu is not None:
                affinity.pin_current_thread({cpu})
            out["value"] = fn()
        except BaseException as exc:  # handed to the measuring thread
            out["error"] = exc

    t = threading.Thread(target=target, name=f"bench-{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise BenchTimeout(f"{what}: still running after {timeout:.0f} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def bounded(fn: Callable[[], Any], timeout: float, what: str) -> bool:
    """Run ``fn()`` in a helper thread; wait at most ``timeout`` seconds for it.
    Return True if it finished (its exceptions are re-raised), False if not."""
    out: dict[str, BaseException] = {}
    done = threading.Event()

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            out["error"] = exc
        done.set()

    threading.Thread(target=target, name=f"bench-{what}", daemon=True).start()
    if not done.wait(timeout):
        return False
    if "error" in out:
        raise out["error"]
    return True


@contextlib.contextmanager
def guarded_executor(workers: int, stealing: bool, pin: Any, timeout: float
                     ) -> Iterator[executor.Executor]:
    """``with executor.Executor(...) as ex`` whose shutdown cannot hang the suite:
    on an error, what is left is cancelled; the shutdown (which joins the workers)
    runs in a helper thread that is waited for at most ``timeout`` seconds."""
    ex = executor.Executor(workers, work_stealing=stealing, pin=pin)
    failed = True
    try:
        yield ex
        failed = False
    finally:
        if failed:  # already raising: cancel what is left, wait briefly, keep that error
            try:
                bounded(lambda: ex.shutdown(wait=True, cancel_futures=True), min(timeout, 5.0),
                        "shutdown")
            except Exception:
                pass
        elif not bounded(lambda: ex.shutdown(wait=True), timeout, "shutdown"):
            raise BenchTimeout(f"{ex!r} did not shut down within {timeout:.0f} s")


def _timed_rounds(one_round: Callable[[], int], min_time: float, max_rounds: int,
                  warmup: bool) -> Sample:
    """Run ``one_round()`` (returns units done) until ``min_time`` has passed."""
    if warmup:
        one_round()
    units = rounds = 0
    t0 = time.perf_counter()
    while True:
        units += one_round()
        rounds += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time or rounds >= max_rounds:
            return Sample(units / elapsed, units, elapsed, rounds)


# -- the floor: a minimal one-thread scheduler ------------------------------------

class FloorTask:
    """Handle of a coroutine on the floor runtime (awaitable from a floor task)."""

    __slots__ = ("send", "done", "result", "waiters")

    def __init__(self, coro: Any) -> None:
        self.send = coro.send
        self.done = False
        self.result = None
        self.waiters: list = []

    def __await__(self) -> Any:
        while not self.done:
            yield self
        return self.result


class FloorEvent:
    __slots__ = ("flag", "waiters", "ready")

    def __init__(self, ready: deque) -> None:
        self.flag = False
        self.waiters: list = []
        self.ready = ready

    def set(self) -> None:
        if not self.flag:
            self.flag = True
            self.ready.extend(self.waiters)
            self.waiters.clear()

    @types.coroutine
    def wait(self) -> Any:
        while not self.flag:
            yield self


class FloorRuntime:
    """Resume coroutines round-robin from a deque in the calling thread.

    The least a scheduler can do: a yield (``None``) goes to the back of the
    queue; awaiting a handle or an event parks the task on it until it is done
    or set. No locks, no atomics, no state words: the floor under any real
    scheduler, this one included.
    """

    def __init__(self) -> None:
        self.ready: deque = deque()
        self.spawn = self._spawn
        self.yield_now = executor.yield_now  # a bare ``yield None``
        self.Event = functools.partial(FloorEvent, self.ready)

    def _spawn(self, coro: Any) -> FloorTask:
        task = FloorTask(coro)
        self.ready.append(task)
        return task

    def run(self) -> None:
        ready = self.ready
        pop, push = ready.popleft, ready.append
        while ready:
            task = pop()
            try:
                signal = task.send(None)
            except StopIteration as stop:
                task.done = True
                task.result = stop.value
                if task.waiters:
                    ready.extend(task.waiters)
                    task.waiters.clear()
                continue
            if signal is None:
                push(task)
            elif signal.__class__ is FloorTask:
                if signal.done:
                    push(task)
                else:
                    signal.waiters.append(task)
            elif signal.__class__ is FloorEvent:
                if signal.flag:
                    push(task)
                else:
                    signal.waiters.append(task)
            else:
                raise TypeError(f"floor: a task awaited {signal!r}")


class ExecApi:
    """The workload api on this executor (see :mod:`.workloads`)."""

    spawn = staticmethod(executor.spawn)
    yield_now = staticmethod(executor.yield_now)
    Event = executor.Event


class AsyncioApi:
    spawn = staticmethod(asyncio.create_task)
    yield_now = staticmethod(functools.partial(asyncio.sleep, 0))
    Event = asyncio.Event


# -- one measurement ---------------------------------------------------------------

def measure(c: Contender, wl: Workload, p: dict, *, min_time: float, timeout: float,
            warmup: bool, single_cpu: int | None, monitor: Any = None,
            max_rounds: int = 100_000) -> Sample:
    """Run one measurement of contender ``c`` on workload ``wl`` with params ``p``."""
    gc.collect()
    deadline = time.monotonic() + timeout
    if wl.kind == "coroutine":
        if c.kind == "executor":
            return _executor_coroutines(c, wl, p, min_time, max_rounds, warmup, deadline,
                                        timeout, monitor)
        if c.kind == "floor":
            return run_pinned(lambda: _floor_coroutines(wl, p, min_time, max_rounds, warmup),
                              single_cpu, timeout, "floor")
        if c.kind == "asyncio":
            return run_pinned(lambda: _asyncio_coroutines(wl, p, min_time, max_rounds, warmup,
                                                          deadline),
                              single_cpu, timeout, "asyncio")
        if c.kind == "threads":
            return _plain_threads(c, wl, p, min_time, max_rounds, warmup, deadline)
    else:
        if c.kind == "executor":
            return _executor_callables(c, wl, p, min_time, max_rounds, warmup, deadline, timeout)
        if c.kind == "loop":
            xs = list(range(p["items"]))
            return run_pinned(lambda: _timed_rounds(lambda: len(list(map(poly, xs))),
                                                    min_time, max_rounds, warmup),
                              single_cpu, timeout, "loop")
        if c.kind == "threadpool":
            return _threadpool_callables(c, wl, p, min_time, max_rounds, warmup, deadline,
                                         timeout)
    raise ValueError(f"contender {c.label} cannot run workload {wl.name}")


def _executor_coroutines(c: Contender, wl: Workload, p: dict, min_time: float,
                         max_rounds: int, warmup: bool, deadline: float, timeout: float,
                         monitor: Any) -> Sample:
    units = wl.units(p)
    with guarded_executor(c.workers, bool(c.stealing), c.pin, timeout) as ex:
        if wl.outside is not None:
            def one_round() -> int:
                spawn = ex.spawn
                handles = [spawn(coro) for coro in wl.outside(ExecApi, p)]
                for h in handles:
                    h.result(_left(deadline))
                return units
        else:
            def one_round() -> int:
                ex.spawn(wl.body(ExecApi, p)).result(_left(deadline))
                return units
        if monitor is not None:
            monitor.attach(ex)
        try:
            sample = _timed_rounds(one_round, min_time, max_rounds, warmup)
            sample.workers = _worker_counters(ex)
            return sample
        except TimeoutError as exc:
            raise BenchTimeout(f"{c.label} on {wl.name}: a task was not done in time "
                               f"({timeout:.0f} s); stats: {ex.stats()}") from exc
        finally:
            if monitor is not None:
                monitor.detach()


def _floor_coroutines(wl: Workload, p: dict, min_time: float, max_rounds: int,
                      warmup: bool) -> Sample:
    units = wl.units(p)

    def one_round() -> int:
        rt = FloorRuntime()
        root = rt.spawn(wl.body(rt, p))
        rt.run()
        if not root.done:
            raise RuntimeError(f"floor: {wl.name} round ended with its root task waiting")
        return units

    return _timed_rounds(one_round, min_time, max_rounds, warmup)


def _asyncio_coroutines(wl: Workload, p: dict, min_time: float, max_rounds: int,
                        warmup: bool, deadline: float) -> Sample:
    units = wl.units(p)

    async def main() -> Sample:
        async def one_round() -> int:
            await wl.body(AsyncioApi, p)
            return units

        if warmup:
            await one_round()
        done = rounds = 0
        t0 = time.perf_counter()
        while True:
            done += await one_round()
            rounds += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time or rounds >= max_rounds:
                return Sample(done / elapsed, done, elapsed, rounds)

    async def guarded() -> Sample:
        try:
            return await asyncio.wait_for(main(), _left(deadline))
        except TimeoutError as exc:
            raise BenchTimeout(f"asyncio on {wl.name}: not done in time") from exc

    return asyncio.run(guarded())


def _plain_threads(c: Contender, wl: Workload, p: dict, min_time: float, max_rounds: int,
                   warmup: bool, deadline: float) -> Sample:
    """``imbalance``'s CPU work (children x chunks slices of ``spin(work)``) split evenly
    over ``c.workers`` fresh threads, pinned like the executor's default, no scheduler."""
    from .workloads import spin

    n, work = p["children"] * p["chunks"], p["work"]
    shares = [n // c.workers + (i < n % c.workers) for i in range(c.workers)]
    plan = affinity.plan(c.workers, c.pin or "none")
    # The threads live for the whole measurement (as the executor's workers do):
    # a round is one start/finish barrier pair, not a thread start-up.
    start = threading.Barrier(c.workers + 1)
    finish = threading.Barrier(c.workers + 1)
    stop = False

    def worker(i: int) -> None:
        if plan[i] is not None:
            affinity.pin_current_thread(plan[i])
        while True:
            start.wait()
            if stop:
                return
            for _ in range(shares[i]):
                spin(work)
            finish.wait()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(c.workers)]
    for t in threads:
        t.start()

    def one_round() -> int:
        start.wait(_left(deadline))
        try:
            finish.wait(_left(deadline))
        except threading.BrokenBarrierError:
            raise BenchTimeout(f"{c.label}: still running at the deadline") from None
        return n

    try:
        return _timed_rounds(one_round, min_time, max_rounds, warmup)
    finally:
        stop = True
        try:
            start.wait(5)
        except threading.BrokenBarrierError:
            pass
        for t in threads:
            t.join(5)


def _callable_round(pool: concurrent.futures.Executor, method: str, fn: Callable,
                    xs: list, deadline: float) -> Callable[[], int]:
    """One round of a callable workload on ``pool`` (ours or ThreadPoolExecutor):
    ``map`` over ``xs``, or one ``submit`` per input; returns the item count."""
    if method == "map":
        def one_round() -> int:
            return len(list(pool.map(fn, xs, timeout=_left(deadline))))
    else:
        def one_round() -> int:
            submit = pool.submit
            futures = [submit(fn, x) for x in xs]
            for f in futures:
                f.result(_left(deadline))
            return len(futures)
    return one_round


def _executor_callables(c: Contender, wl: Workload, p: dict, min_time: float,
                        max_rounds: int, warmup: bool, deadline: float, timeout: float
                        ) -> Sample:
    xs = list(range(p["items"]))
    fn = poly
    with guarded_executor(c.workers, bool(c.stealing), c.pin, timeout) as ex:
        one_round = _callable_round(ex, c.method, fn, xs, deadline)
        try:
            sample = _timed_rounds(one_round, min_time, max_rounds, warmup)
            sample.workers = _worker_counters(ex)
            return sample
        except TimeoutError as exc:
            raise BenchTimeout(f"{c.label} on {wl.name}: not done in time ({timeout:.0f} s); "
                               f"stats: {ex.stats()}") from exc


def _pinning_initializer(workers: int, pin: Any) -> Callable[[], None] | None:
    """A ThreadPoolExecutor initializer pinning its threads as ``affinity.plan`` says."""
    plan = affinity.plan(workers, pin)
    if all(cpus is None for cpus in plan):
        return None
    counter = itertools.count()

    def init() -> None:
        cpus = plan[next(counter) % workers]
        if cpus is not None:
            affinity.pin_current_thread(cpus)

    return init


def _threadpool_callables(c: Contender, wl: Workload, p: dict, min_time: float,
                          max_rounds: int, warmup: bool, deadline: float, timeout: float
                          ) -> Sample:
    # ThreadPoolExecutor pays a Future and a queue hand-off per item, whatever the
    # input length: for map it runs the first ``items_per_call`` inputs.
    n = p.get("items_per_call", p["items"]) if c.method == "map" else p["items"]
    xs = list(range(n))
    fn = poly
    tp = concurrent.futures.ThreadPoolExecutor(
        c.workers, thread_name_prefix="bench-tpe",
        initializer=_pinning_initializer(c.workers, c.pin or "none"))
    try:
        one_round = _callable_round(tp, c.method, fn, xs, deadline)
        try:
            return _timed_rounds(one_round, min_time, max_rounds, warmup)
        except TimeoutError as exc:
            raise BenchTimeout(f"{c.label} on {wl.name}: not done in time") from exc
    finally:
        if not bounded(lambda: tp.shutdown(wait=True, cancel_futures=True), timeout,
                       "threadpool-shutdown"):
            raise BenchTimeout(f"{c.label}: did not shut down within {timeout:.0f} s")

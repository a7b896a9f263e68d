"""The workloads: what is measured, written once for every contender.

Coroutine workloads are written against a tiny *api* (``spawn``, ``yield_now``,
``Event``) so that the very same coroutine functions run on this executor, on
asyncio and on the floor (a minimal one-thread scheduler, :mod:`.contenders`):

==================  =========================================================
``api.spawn(c)``    executor: ``executor.spawn``; asyncio: ``create_task``;
                    floor: append to a deque. Returns an awaitable handle.
``api.yield_now()`` executor: ``executor.yield_now()``; asyncio:
                    ``asyncio.sleep(0)``; floor: a bare ``yield``.
``api.Event()``     executor: ``executor.Event``; asyncio: ``asyncio.Event``;
                    floor: a flag with a waiter list.
==================  =========================================================

One *round* of a workload is one execution of its definition (e.g. 10,000
spawns for ``spawn_many``); a measurement runs rounds until ``--min-time`` has
passed and reports ``units / second`` (see :class:`Workload.unit`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

__all__ = ["Workload", "WORKLOADS", "BY_NAME", "spin", "poly"]


# -- the coroutines -----------------------------------------------------------

async def yielder(api: Any, n: int) -> None:
    """Yield ``n`` times (``n + 1`` polls)."""
    yield_now = api.yield_now
    for _ in range(n):
        await yield_now()


async def noop() -> None:
    """The empty task of ``spawn_many``."""


async def spawn_and_join(api: Any, factory: Callable[[], Any], count: int) -> None:
    """Spawn ``count`` tasks from inside a task, then await each handle."""
    spawn = api.spawn
    handles = [spawn(factory()) for _ in range(count)]
    for h in handles:
        await h


async def yield_many_body(api: Any, p: dict) -> None:
    yields = p["yields"]
    spawn = api.spawn
    handles = [spawn(yielder(api, yields)) for _ in range(p["tasks"])]
    for h in handles:
        await h


async def spawn_many_body(api: Any, p: dict) -> None:
    await spawn_and_join(api, noop, p["tasks"])


async def _ping(first: Any, second: Any) -> None:
    await first.wait()
    second.set()


async def _pong(first: Any, second: Any) -> None:
    first.set()
    await second.wait()


async def ping_pong_body(api: Any, p: dict) -> None:
    """Tokio's ``ping_pong``: per round trip, spawn a pair of tasks that signal each
    other through two one-shot events; wait for every pair's second task."""
    spawn, Event = api.spawn, api.Event
    handles = []
    for _ in range(p["pairs"]):
        a, b = Event(), Event()
        spawn(_ping(a, b))
        handles.append(spawn(_pong(a, b)))
    for h in handles:
        await h


async def _link(api: Any, n: int, done: Any) -> None:
    if n:
        api.spawn(_link(api, n - 1, done))
    else:
        done.set()


async def chained_spawn_body(api: Any, p: dict) -> None:
    """Tokio's ``chained_spawn``: each task spawns the next; the last sets ``done``."""
    done = api.Event()
    api.spawn(_link(api, p["depth"], done))
    await done.wait()


# Both CPU functions below use only int literals in -5..256. On free-threaded 3.13,
# a larger literal (say 0xFFFF) in a module compiled from source at import time (as
# here: no .pyc is written when PYTHONDONTWRITEBYTECODE is set) is one ordinary,
# reference-counted object shared by every thread that runs the function: each use
# increments and decrements its count with atomic operations on one cache line, and
# two threads running the same loop then barely run faster than one. Small ints are
# immortal (no count to update), so these functions scale as far as the machine lets
# them, and the suite measures the executor, not that trap. See docs/benchmarks.md.

def spin(n: int) -> int:
    """Pure-Python CPU work (tens of ns per iteration), touching no shared object."""
    x = 0
    for i in range(n):
        x = (x + i * i) & 255
    return x


async def _cpu_child(api: Any, chunks: int, n: int) -> None:
    yield_now = api.yield_now
    for _ in range(chunks):
        spin(n)
        await yield_now()


async def imbalance_body(api: Any, p: dict) -> None:
    """One task spawns ``children`` CPU-bound tasks from inside the executor; each
    does ``chunks`` slices of ``spin(work)``, yielding after each slice."""
    chunks, work = p["chunks"], p["work"]
    spawn = api.spawn
    handles = [spawn(_cpu_child(api, chunks, work)) for _ in range(p["children"])]
    for h in handles:
        await h


def poly(x: int) -> int:
    """``cpu_map``'s function: a few arithmetic operations, a fresh int as result."""
    return x * x + 3 * x + 7


# -- the table of workloads ---------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """A workload and its default / quick sizes.

    * ``kind``: ``"coroutine"`` (executor, floor, asyncio) or ``"callable"``
      (executor map/submit, plain loop, ThreadPoolExecutor).
    * ``outside``: for coroutine workloads that Tokio defines as spawned from
      outside the runtime: ``outside(api, params)`` yields the coroutines that
      the executor contender spawns from the measuring (non-worker) thread
      and then joins with ``handle.result()``. asyncio and the floor have no
      "outside" and run ``body`` (the same tasks, spawned from a task).
    * ``balanced``: the work is evenly spread by construction, so stealing has
      nothing to fix (used for the "stealing costs nothing" check).
    * ``scaled``: the size parameter multiplied by ``--size``.
    """

    name: str
    kind: str
    unit: str
    summary: str
    defaults: dict
    quick: dict
    scaled: str
    units: Callable[[dict], int]
    describe: Callable[[dict], str]
    body: Callable[[Any, dict], Any] | None = None
    outside: Callable[[Any, dict], Iterable[Any]] | None = None
    balanced: bool = True
    method: str = ""  # callable workloads: "map" or "submit"
    plain_threads: bool = False  # also run the work split evenly over N plain threads
    extra: dict = field(default_factory=dict)

    def params(self, size: float, quick: bool, overrides: dict | None = None) -> dict:
        p = dict(self.quick if quick else self.defaults)
        if not quick and size != 1.0:
            p[self.scaled] = max(1, round(p[self.scaled] * size))
        for k, v in (overrides or {}).items():
            if k in p and v is not None:
                p[k] = v
        return p


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "yield_many", "coroutine", "polls",
        "many tasks each yielding many times (the spec's benchmark; Tokio's sizes)",
        defaults={"tasks": 200, "yields": 1000}, quick={"tasks": 20, "yields": 50},
        scaled="tasks", units=lambda p: p["tasks"] * (p["yields"] + 1),
        describe=lambda p: f"{p['tasks']:,} tasks x {p['yields']:,} yields, spawned from outside",
        body=yield_many_body,
        outside=lambda api, p: (yielder(api, p["yields"]) for _ in range(p["tasks"]))),
    Workload(
        "spawn_many", "coroutine", "tasks",
        "spawn empty tasks from outside the executor, then wait for all",
        defaults={"tasks": 10_000}, quick={"tasks": 300},
        scaled="tasks", units=lambda p: p["tasks"],
        describe=lambda p: f"{p['tasks']:,} empty tasks spawned from outside, join all",
        body=spawn_many_body, outside=lambda api, p: (noop() for _ in range(p["tasks"]))),
    Workload(
        "spawn_many_local", "coroutine", "tasks",
        "spawn empty tasks from inside a task, then await all",
        defaults={"tasks": 10_000}, quick={"tasks": 300},
        scaled="tasks", units=lambda p: p["tasks"],
        describe=lambda p: f"{p['tasks']:,} empty tasks spawned from a task, await all",
        body=spawn_many_body),
    Workload(
        "ping_pong", "coroutine", "round trips",
        "pairs of tasks signalling each other through one-shot events",
        defaults={"pairs": 1000}, quick={"pairs": 50},
        scaled="pairs", units=lambda p: p["pairs"],
        describe=lambda p: f"{p['pairs']:,} round trips, each a fresh task pair + 2 events",
        body=ping_pong_body),
    Workload(
        "chained_spawn", "coroutine", "spawns",
        "a chain of spawns: each task spawns the next",
        defaults={"depth": 1000}, quick={"depth": 50},
        scaled="depth", units=lambda p: p["depth"],
        describe=lambda p: f"a chain of {p['depth']:,} spawns",
        body=chained_spawn_body),
    Workload(
        "imbalance", "coroutine", "slices",
        "all work starts on one worker: a task spawns CPU-bound children",
        defaults={"children": 16, "chunks": 24, "work": 1000},
        quick={"children": 4, "chunks": 3, "work": 200},
        scaled="chunks", units=lambda p: p["children"] * p["chunks"],
        describe=lambda p: (f"1 task spawns {p['children']} children x {p['chunks']} slices "
                            f"of spin({p['work']}), yield after each"),
        body=imbalance_body, balanced=False, plain_threads=True),
    Workload(
        "cpu_map", "callable", "items",
        "a small function over many inputs through map()",
        defaults={"items": 200_000, "items_per_call": 5_000},
        quick={"items": 5_000, "items_per_call": 1_000},
        scaled="items", units=lambda p: p["items"],  # per contender: see contenders.py
        describe=lambda p: (f"x*x+3*x+7 over {p['items']:,} ints via map(); ThreadPoolExecutor "
                            f"(one task per item) maps the first {p['items_per_call']:,}"),
        method="map"),
    Workload(
        "cpu_submit", "callable", "items",
        "the same function, one submit() per input",
        defaults={"items": 5_000}, quick={"items": 1_000},
        scaled="items", units=lambda p: p["items"],
        describe=lambda p: f"x*x+3*x+7, one submit() per input, {p['items']:,} inputs",
        method="submit"),
)

BY_NAME = {w.name: w for w in WORKLOADS}

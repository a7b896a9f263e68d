"""Polls per second on the spec's workload: many tasks that each yield many times.

Reports, side by side in one run:
* the floor: the same coroutines resumed round-robin from a deque in one
  thread, no scheduler at all;
* this executor with 1 and 2 (or --workers) workers, work stealing on and off.

Usage: python scripts/polls.py [--tasks N] [--yields N] [--workers 1,2] [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import deque

import affinity
import executor


async def yielder(n: int) -> None:
    yield_now = executor.yield_now
    for _ in range(n):
        await yield_now()


def floor(tasks: int, yields: int, cpu: int | None = None) -> float:
    """Polls/s resuming the coroutines round robin in one thread (a fresh thread
    pinned to ``cpu`` when given, so that the OS does not move it mid-run)."""
    if cpu is not None:
        out: list[float] = []
        t = threading.Thread(target=lambda: (affinity.pin_current_thread({cpu}),
                                             out.append(floor(tasks, yields))))
        t.start()
        t.join()
        return out[0]
    q = deque(yielder(yields) for _ in range(tasks))
    pop, push = q.popleft, q.append
    t0 = time.perf_counter()
    while q:
        c = pop()
        try:
            c.send(None)
        except StopIteration:
            continue
        push(c)
    dt = time.perf_counter() - t0
    return tasks * (yields + 1) / dt


async def spawner(tasks: int, yields: int) -> None:
    spawn = executor.spawn
    handles = [spawn(yielder(yields)) for _ in range(tasks)]
    for h in handles:
        await h


def run_executor(tasks: int, yields: int, workers: int, stealing: bool, inside: bool,
                 pin: str) -> float:
    with executor.Executor(workers, work_stealing=stealing, pin=pin) as ex:
        t0 = time.perf_counter()
        if inside:
            ex.run(spawner(tasks, yields))
        else:
            handles = [ex.spawn(yielder(yields)) for _ in range(tasks)]
            for h in handles:
                h.result()
        dt = time.perf_counter() - t0
    return tasks * (yields + 1) / dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--yields", type=int, default=200)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--spawn", choices=("outside", "inside"), default="outside",
                    help="spawn the tasks from the main thread, or from a task on a worker")
    ap.add_argument("--pin", default="compact", help="worker pinning policy (compact, spread, none)")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.workers.split(",")]
    print(f"python {sys.version.split()[0]} gil={'on' if sys._is_gil_enabled() else 'off'} "
          f"atomics={executor.BACKEND} pin={a.pin} spawn={a.spawn} tasks={a.tasks} yields={a.yields} reps={a.reps} (medians)")
    cpu = min(affinity.available_cpus())
    fl = statistics.median(floor(a.tasks, a.yields, cpu) for _ in range(a.reps))
    print(f"{'floor (1 thread, deque round robin)':42s} {fl / 1e6:7.3f} M polls/s")
    base = None
    for stealing in (True, False):
        for w in counts:
            r = statistics.median(run_executor(a.tasks, a.yields, w, stealing, a.spawn == 'inside', a.pin) for _ in range(a.reps))
            if stealing and w == counts[0]:
                base = r
            label = f"executor workers={w} stealing={'on' if stealing else 'off'}"
            print(f"{label:42s} {r / 1e6:7.3f} M polls/s   per worker vs floor {r / w / fl:5.2f}x"
                  f"   vs {counts[0]} worker(s) {r / base:5.2f}x")


if __name__ == "__main__":
    main()

"""Where the time of one worker-loop iteration goes: a diagnostic for hot-path work.

Reports, in one run:

* **ns per poll against tasks per batch.** One worker runs ``--polls`` polls
  of yielding tasks spawned from outside, with 1, 4, 16, 64 and 200 tasks. A
  worker polls every ready task once per iteration, so the batch holds about
  as many tasks as exist, and ``ns/poll ~ per_poll + per_iteration / tasks``.
  A least-squares fit over the rows gives both terms. ``per_iteration`` is
  what an iteration costs besides its polls (queue pops and pushes, state
  stores, wake checks). It matters wherever batches are small: with 2 workers
  on ``yield_many`` a batch holds about 60 tasks (64 stay local, the rest are
  split between the workers), and ``ping_pong`` or ``chained_spawn`` run one
  or two tasks per iteration.
* **queue operations in one thread** (no contention), ns each: a push of one
  item followed by the pop that takes it (the cycle a lone task goes through
  every iteration) for the global queue and for a local queue, and a pop that
  finds the queue empty.

Usage: python scripts/overhead.py [--polls N] [--reps N] [--ops N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import executor
from executor import Executor
from executor.local_queue import Worker
from executor.mpmc import Mpmc

TASK_COUNTS = (1, 4, 16, 64, 200)


async def yielder(n: int) -> None:
    yield_now = executor.yield_now
    for _ in range(n):
        await yield_now()


def ns_per_poll(tasks: int, polls: int) -> tuple[float, float]:
    """One worker, ``tasks`` tasks sharing ``polls`` yields; return (ns per poll,
    polls per iteration)."""
    per_task = max(1, polls // tasks)
    with Executor(1) as ex:
        t0 = time.perf_counter()
        handles = [ex.spawn(yielder(per_task)) for _ in range(tasks)]
        for h in handles:
            h.result(timeout=120)
        dt = time.perf_counter() - t0
        st = ex.stats()["workers"][0]
    total = tasks * (per_task + 1)
    iterations = st["global_batches"] + st["local_pops"]
    return dt / total * 1e9, st["polls"] / max(1, iterations)


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares ``y = a + b*x``; return (a, b)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def queue_costs(ops: int) -> dict[str, float]:
    """ns per operation of the queues' single-thread paths."""
    out = {}
    q = Mpmc()
    producer = q.producer()
    selector = q.home_selector(1)
    batch: list = [None] * 512
    one = [object()]
    push_n, pop = producer.try_push_n, q.try_pop_n_with_selector

    t0 = time.perf_counter()
    for _ in range(ops):
        push_n(one)
        pop(selector, batch)
    out["global: push 1 + pop it"] = (time.perf_counter() - t0) / ops * 1e9

    t0 = time.perf_counter()
    for _ in range(ops):
        pop(selector, batch)
    out["global: pop, empty"] = (time.perf_counter() - t0) / ops * 1e9

    local = Worker()
    lpush, lpop = local.push_n, local.pop_into
    t0 = time.perf_counter()
    for _ in range(ops):
        lpush(one)
        lpop(batch, 512)
    out["local: push 1 + pop it"] = (time.perf_counter() - t0) / ops * 1e9

    t0 = time.perf_counter()
    for _ in range(ops):
        lpop(batch, 512)
    out["local: pop, empty"] = (time.perf_counter() - t0) / ops * 1e9
    batch[:] = [None] * 512
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--polls", type=int, default=200_000, help="polls per measurement")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (medians reported)")
    ap.add_argument("--ops", type=int, default=100_000, help="queue operations per figure")
    args = ap.parse_args(argv)
    for name in ("polls", "reps", "ops"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")

    print(f"1 worker, {args.polls:,} polls per measurement, median of {args.reps}, "
          f"atomics={executor.BACKEND}")
    print(f"{'tasks':>6} {'ns/poll':>9} {'polls/iteration':>16}")
    inv, ys = [], []
    for tasks in TASK_COUNTS:
        runs = [ns_per_poll(tasks, args.polls) for _ in range(args.reps)]
        ns = statistics.median(r[0] for r in runs)
        per_iter = statistics.median(r[1] for r in runs)
        print(f"{tasks:>6} {ns:>9.0f} {per_iter:>16.1f}")
        inv.append(1 / tasks)
        ys.append(ns)
    per_poll, per_iteration = fit(inv, ys)
    print(f"fit ns/poll = per_poll + per_iteration / tasks: per_poll {per_poll:.0f} ns, "
          f"per_iteration {per_iteration / 1000:.2f} us")
    print()
    print(f"queue operations, one thread, ns each (median of {args.reps} x {args.ops:,}):")
    samples = [queue_costs(args.ops) for _ in range(args.reps)]
    for name in samples[0]:
        print(f"  {name:<26} {statistics.median(s[name] for s in samples):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

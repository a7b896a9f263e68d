"""Cost of each AtomicInt operation on every available backend, side by side.

The executor's default backend is the faster one; this script is how that was
decided. Usage: python scripts/atomics_bench.py [--n N] [--reps R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import deque
from itertools import repeat

from executor.atomics import BACKEND, BACKENDS


def _ops(cls, n: int) -> dict[str, float]:
    a = cls(0)
    objs = [cls(0) for _ in range(512)]
    sink = deque(maxlen=0).extend
    store = cls.store
    out = {}

    def timed(label, fn, count):
        t0 = time.perf_counter()
        fn()
        out[label] = (time.perf_counter() - t0) / count * 1e9

    def loop_load():
        for _ in range(n):
            a.load()

    def loop_store():
        for _ in range(n):
            a.store(1)

    def loop_cas():
        for _ in range(n):
            a.compare_and_swap(1, 1)

    def loop_fetch_add():
        for _ in range(n):
            a.fetch_add(1)

    def batched_store():
        for _ in range(n // 512):
            sink(map(store, objs, repeat(1, 512)))

    timed("load", loop_load, n)
    timed("store", loop_store, n)
    timed("compare_and_swap", loop_cas, n)
    timed("fetch_add (CAS loop)", loop_fetch_add, n)
    timed("store via map, per item", batched_store, n // 512 * 512)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    names = sorted(BACKENDS)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(a.reps):  # interleaved, so drift hits every backend alike
        for name in names:
            runs[name].append(_ops(BACKENDS[name], a.n))
    print(f"python {sys.version.split()[0]} gil={'on' if sys._is_gil_enabled() else 'off'} "
          f"default backend={BACKEND}; ns per operation, median of {a.reps}")
    labels = list(runs[names[0]][0])
    print(f"{'operation':28s}" + "".join(f"{n:>12s}" for n in names)
          + ("   python/cereggii" if len(names) > 1 else ""))
    for label in labels:
        meds = [statistics.median(r[label] for r in runs[n]) for n in names]
        row = f"{label:28s}" + "".join(f"{m:12.1f}" for m in meds)
        if len(names) > 1:
            row += f"   {meds[names.index('python')] / meds[names.index('cereggii')]:8.2f}x"
        print(row)


if __name__ == "__main__":
    main()

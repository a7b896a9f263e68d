"""The benchmark suite: ``python -m scripts.bench`` (``make bench``).

Modules:

* :mod:`.workloads`: what is measured (Tokio's micro-benchmarks, the spec's
  ``yield_many``, ``imbalance``, ``cpu_map``/``cpu_submit``), written once
  against a tiny api so that every contender runs the same coroutines.
* :mod:`.contenders`: this executor, the floor (a minimal one-thread
  scheduler / the plain loop), asyncio and ThreadPoolExecutor, and how one
  measurement of each runs (warm-up, rounds until ``--min-time``, deadlines).
* :mod:`.monitor`: the live ``Throughput: X M polls/sec`` line (or a progress
  bar on a terminal).
* :mod:`.report`: machine facts, the table, expected-vs-measured, JSON, plot.
* :mod:`.cli`: the command line and the driver (interleaved repetitions).

See docs/benchmarks.md.
"""

from .cli import main

__all__ = ["main"]

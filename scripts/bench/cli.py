"""Command line and driver of the benchmark suite (``python -m scripts.bench``)."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Any

import affinity
import executor

from . import report
from .contenders import BenchTimeout, Contender, measure
from .monitor import Monitor, other_cpu_now
from .workloads import BY_NAME, WORKLOADS, Workload

__all__ = ["main", "build_parser", "plan_contenders"]

PIN_POLICIES = ("compact", "spread", "none")


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _positive_ints(text: str) -> list[int]:
    try:
        vals = sorted({int(x) for x in _csv(text)})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of integers, got {text!r}")
    if not vals or vals[0] < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be >= 1, got {text!r}")
    return vals


def _workloads(text: str) -> list[str]:
    names = _csv(text)
    if names == ["all"]:
        return [w.name for w in WORKLOADS]
    bad = [n for n in names if n not in BY_NAME]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(bad) or text!r}; choose from "
            f"{', '.join(BY_NAME)} (or 'all')")
    return [w.name for w in WORKLOADS if w.name in names]  # suite order


def _pins(text: str) -> list[str]:
    pins = _csv(text)
    bad = [p for p in pins if p not in PIN_POLICIES]
    if bad or not pins:
        raise argparse.ArgumentTypeError(f"pin policies are {', '.join(PIN_POLICIES)}; got {text!r}")
    return list(dict.fromkeys(pins))


def _stealing(text: str) -> list[bool]:
    vals = []
    for x in _csv(text):
        if x not in ("on", "off"):
            raise argparse.ArgumentTypeError(f"--stealing takes on,off; got {text!r}")
        vals.append(x == "on")
    if not vals:
        raise argparse.ArgumentTypeError("--stealing needs on, off or on,off")
    return list(dict.fromkeys(vals))


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _workload_help() -> str:
    return "\n".join(f"  {w.name:17s} {w.summary}; unit: {w.unit}/s" for w in WORKLOADS)


def build_parser() -> argparse.ArgumentParser:
    ncpu = len(affinity.available_cpus())
    default_workers = "1" if ncpu == 1 else f"1,{ncpu}"
    ap = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Benchmark suite of the work-stealing executor (free-threaded CPython).\n\n"
            "Runs every workload on every contender, interleaved within each repetition\n"
            "(A B C, A B C, ...), and reports medians: a table on stdout with each\n"
            "contender's throughput relative to ours (work stealing on, the most workers,\n"
            "the default pin), an expected-vs-measured block, a JSON file of every sample\n"
            "and a PNG plot of throughput against worker count.\n\n"
            "Workloads:\n" + _workload_help() + "\n\n"
            "Contenders: this executor (work stealing on/off x pin policies x worker\n"
            "counts); the floor (the same coroutines on a minimal one-thread scheduler,\n"
            "or the plain loop list(map(fn, xs)) for callables); asyncio (one loop);\n"
            "concurrent.futures.ThreadPoolExecutor (callables, same worker counts).\n"
            "One-thread contenders run pinned to one CPU."),
        epilog=(
            "examples:\n"
            "  python -m scripts.bench                      # the default suite (~2 minutes on 2 cores)\n"
            "  python -m scripts.bench --quick              # smoke test, a few seconds\n"
            "  python -m scripts.bench --workloads yield_many,cpu_map --reps 5\n"
            "  python -m scripts.bench --workloads yield_many --yield-tasks 200000 \\\n"
            "      --yield-count 100000 --reps 1 --pin none  # the spec's full size (hours)\n\n"
            "See docs/benchmarks.md for what each number means."))
    ap.add_argument("--workloads", type=_workloads, default=[w.name for w in WORKLOADS],
                    metavar="LIST", help="comma list of workloads, or 'all' (default: all)")
    ap.add_argument("--workers", type=_positive_ints, default=None, metavar="LIST",
                    help=f"comma list of worker counts (default: {default_workers}: 1 and the "
                         "CPUs available)")
    ap.add_argument("--reps", type=int, default=None, metavar="N",
                    help="repetitions per contender; medians are reported (default: 3; "
                         "--quick: 1)")
    ap.add_argument("--size", type=_positive_float, default=1.0, metavar="F",
                    help="scale factor for every workload's size (tasks, yields' task count, "
                         "round trips, chain depth, slices, inputs); default 1")
    ap.add_argument("--pin", type=_pins, default=None, metavar="LIST",
                    help=f"pinning policies to compare for this executor, from "
                         f"{', '.join(PIN_POLICIES)} (default: compact,none plus the default "
                         f"pin {executor.DEFAULT_PIN!r})")
    ap.add_argument("--stealing", type=_stealing, default=[True, False], metavar="LIST",
                    help="work stealing settings to compare: on,off (default), on, or off")
    ap.add_argument("--min-time", type=float, default=None, metavar="S",
                    help="each measurement repeats its workload until S seconds have passed "
                         "(default: 0.25; --quick: 0, one round)")
    ap.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                    help="a measurement still running after S seconds fails the run loudly "
                         "(default: 60; --quick: 20)")
    ap.add_argument("--yield-tasks", type=int, default=None, metavar="N",
                    help="yield_many: number of tasks (default 200; the spec: 200000)")
    ap.add_argument("--yield-count", type=int, default=None, metavar="N",
                    help="yield_many: yields per task (default 1000; the spec: 100000)")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="write every sample here (default: bench-results/results.json; "
                         "--quick: bench-results/quick.json)")
    ap.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    ap.add_argument("--plot", default=None, metavar="PATH",
                    help="write the scaling plot here (default: bench-results/scaling.png; "
                         "--quick: bench-results/quick-scaling.png); needs matplotlib")
    ap.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: every workload at a tiny size, 1 repetition, no warm-up "
                         "(a few seconds; numbers meaningless)")
    ap.add_argument("--no-asyncio", action="store_true", help="leave asyncio out")
    ap.add_argument("--no-floor", action="store_true",
                    help="leave the floor / plain loop / plain threads out")
    ap.add_argument("--no-threadpool", action="store_true",
                    help="leave ThreadPoolExecutor out")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    return ap


def plan_contenders(wl: Workload, workers: list[int], stealing: list[bool], pins: list[str],
                    ref_pin: str, a: argparse.Namespace) -> list[Contender]:
    cs = [Contender("executor", w, ws, pin, wl.method)
          for w in workers for ws in stealing for pin in pins]
    if wl.kind == "coroutine":
        if not a.no_floor:
            cs.append(Contender("floor"))
        if not a.no_asyncio:
            cs.append(Contender("asyncio"))
        if wl.plain_threads and not a.no_floor:
            cs.extend(Contender("threads", w, None, ref_pin) for w in workers)
    else:
        if not a.no_floor:
            cs.append(Contender("loop"))
        if not a.no_threadpool:
            cs.extend(Contender("threadpool", w, None, ref_pin, wl.method) for w in workers)
    return cs


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.list:
        print(_workload_help())
        return 0
    ncpu = len(affinity.available_cpus())
    workers = a.workers or ([1] if ncpu == 1 else [1, ncpu])
    pins = a.pin or list(dict.fromkeys(["compact", "none", executor.DEFAULT_PIN]))
    ref_pin = executor.DEFAULT_PIN if executor.DEFAULT_PIN in pins else pins[0]
    reps = a.reps if a.reps is not None else (1 if a.quick else 3)
    if reps < 1:
        print("--reps must be >= 1", file=sys.stderr)
        return 2
    min_time = a.min_time if a.min_time is not None else (0.0 if a.quick else 0.25)
    timeout = a.timeout or (20.0 if a.quick else 60.0)
    json_path = None if a.no_json else (a.json or ("bench-results/quick.json" if a.quick
                                                   else "bench-results/results.json"))
    plot_path = None if a.no_plot else (a.plot or ("bench-results/quick-scaling.png" if a.quick
                                                   else "bench-results/scaling.png"))
    cpus = sorted(affinity.available_cpus())
    single_cpu = cpus[0] if affinity.supports_pinning() else None
    overrides = {"yield_many": {"tasks": a.yield_tasks, "yields": a.yield_count}}

    options = {"workloads": a.workloads, "workers": workers, "pins": pins,
               "stealing": ["on" if s else "off" for s in a.stealing], "reps": reps,
               "size": a.size, "min_time": min_time, "timeout": timeout, "quick": a.quick,
               "reference_pin": ref_pin, "single_thread_cpu": single_cpu,
               "argv": sys.argv[1:] if argv is None else list(argv)}
    machine = report.machine_facts()
    machine["other_cpu_before_start"] = other_cpu_now(0.2 if a.quick else 0.5)
    print(report.format_machine(machine, options), flush=True)
    if max(workers) > len(cpus):
        _say(f"note: {max(workers)} workers on {len(cpus)} CPUs: workers will share CPUs")

    plans = []
    for name in a.workloads:
        wl = BY_NAME[name]
        p = wl.params(a.size, a.quick, overrides.get(name))
        cs = plan_contenders(wl, workers, a.stealing, pins, ref_pin, a)
        ref = Contender("executor", max(workers), True if True in a.stealing else False,
                        ref_pin, wl.method)
        plans.append(report.WorkloadResult(wl, p, ref, [report.Result(c) for c in cs]))
    total = sum(len(wr.results) for wr in plans) * reps

    monitor = Monitor(total).start()
    t0 = time.perf_counter()
    error: str | None = None
    interrupted = False
    try:
        for i, wr in enumerate(plans, 1):
            wl = wr.workload
            if not monitor.tty:
                _say(f"[{i}/{len(plans)}] {wl.name}: {wl.describe(wr.params)}; "
                     f"{len(wr.results)} contenders x {reps} reps")
            for rep in range(reps):
                for r in wr.results:  # interleaved: A B C, A B C, ...
                    c = r.contender
                    monitor.begin(f"{wl.name} {rep + 1}/{reps}: {c.label}")
                    track = monitor if (wl.name == "yield_many" and c.kind == "executor") else None
                    r.samples.append(measure(
                        c, wl, wr.params, min_time=min_time, timeout=timeout,
                        warmup=not a.quick, single_cpu=single_cpu, monitor=track))
                    monitor.end()
    except KeyboardInterrupt:
        interrupted = True
        error = "interrupted"
    except BenchTimeout as exc:
        error = f"BenchTimeout: {exc}"
    except Exception as exc:  # report what was measured, then fail
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        monitor.stop()
    wall = time.perf_counter() - t0
    machine["other_cpu_during_run"] = monitor.other_load()

    wrs = [wr for wr in plans if any(r.samples for r in wr.results)]
    print(report.format_table(wrs, reps))
    ref_label = Contender("executor", max(workers), True in a.stealing, ref_pin).label
    checks = report.expectations(wrs, workers, pins, ref_pin)
    print(report.format_expectations(checks, ref_label))
    print()
    if json_path:
        report.write_json(json_path, machine, options, plans, checks, wall, error)
        print(f"results written: {json_path}")
    if plot_path:
        title = (f"{machine['cpu_model']}, {len(cpus)} CPUs, Python {machine['python']} "
                 f"GIL {'on' if machine['gil_enabled'] else 'off'}, {machine['date'][:10]}")
        print(report.write_plot(plot_path, wrs, title))
    print(f"wall time: {wall:.1f} s for {sum(len(r.samples) for wr in plans for r in wr.results)}"
          f" measurements")
    print(report.format_load(machine))
    if error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 130 if interrupted else 1
    return 0

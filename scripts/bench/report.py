"""Machine facts, the results table, expected-vs-measured, JSON and the scaling plot."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import sys
import sysconfig
from dataclasses import dataclass, field
from typing import Any

import affinity
import executor

from .contenders import Contender, Sample
from .workloads import BY_NAME, Workload

__all__ = ["Result", "WorkloadResult", "machine_facts", "format_machine", "format_load",
           "format_table",
           "expectations", "format_expectations", "write_json", "write_plot"]


# -- results -------------------------------------------------------------------------

@dataclass
class Result:
    contender: Contender
    samples: list[Sample] = field(default_factory=list)

    @property
    def throughputs(self) -> list[float]:
        return [s.throughput for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.throughputs) if self.samples else float("nan")

    @property
    def busiest(self) -> float | None:
        """Median share of the polls run by the busiest worker (None: not applicable)."""
        shares = [s.busiest_share for s in self.samples if s.busiest_share is not None]
        return statistics.median(shares) if shares else None

    @property
    def steals(self) -> int | None:
        """Median number of successful steals per measurement."""
        st = [sum(s.workers["steals"]) for s in self.samples if s.workers]
        return int(statistics.median(st)) if st else None

    @property
    def spread(self) -> float:
        """Half the range of the repetitions, relative to the median."""
        t = self.throughputs
        if len(t) < 2 or not self.median:
            return 0.0
        return (max(t) - min(t)) / 2 / self.median


@dataclass
class WorkloadResult:
    workload: Workload
    params: dict
    reference: Contender
    results: list[Result]

    def get(self, c: Contender) -> Result | None:
        for r in self.results:
            if r.contender == c and r.samples:
                return r
        return None

    @property
    def ours(self) -> Result | None:
        return self.get(self.reference)

    def ratio(self, c: Contender) -> float | None:
        r, o = self.get(c), self.ours
        if r is None or o is None or not o.median:
            return None
        return r.median / o.median


# -- machine -------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_facts() -> dict[str, Any]:
    cpus = sorted(affinity.available_cpus())
    try:
        topo = str(affinity.cpu_topology()).splitlines()[0]
    except Exception as exc:  # informative only
        topo = f"unknown ({exc})"
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpus_available": cpus,
        "cpu_count_os": os.cpu_count(),
        "topology": topo,
        "pinning_supported": affinity.supports_pinning(),
        "python": sys.version.split()[0],
        "python_build": sys.version.replace("\n", " "),
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_enabled": bool(getattr(sys, "_is_gil_enabled", lambda: True)()),
        "atomics_backend": executor.BACKEND,
        "default_pin": executor.DEFAULT_PIN,
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


def format_machine(m: dict, options: dict) -> str:
    cpus = m["cpus_available"]
    return "\n".join([
        f"machine  : {m['cpu_model']}; {len(cpus)} CPUs available {cpus} ({m['topology']}); "
        f"pinning {'supported' if m['pinning_supported'] else 'NOT supported'}",
        f"python   : {m['python']} {'free-threaded build' if m['free_threaded_build'] else 'GIL build'}, "
        f"GIL {'ON' if m['gil_enabled'] else 'off'}; atomics backend: {m['atomics_backend']}; "
        f"default pin: {m['default_pin']!r}",
        f"os       : {m['platform']}; load average at start: {m['loadavg_at_start']}; "
        f"other processes busy at start: {_cpus(m.get('other_cpu_before_start'))}",
        f"run      : {m['date']}; reps={options['reps']} (medians), workers={options['workers']}, "
        f"pins={options['pins']}, size x{options['size']:g}, min time {options['min_time']:g} s "
        f"per measurement{', QUICK (smoke test)' if options['quick'] else ''}",
    ])


def _cpus(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.2f} CPUs"


def format_load(m: dict) -> str:
    """One line: how much CPU other processes took while the suite ran."""
    load = m.get("other_cpu_during_run")
    if not load:
        return "other processes during the run: not sampled"
    line = (f"other processes during the run: {load['mean_cpus']:.2f} CPUs on average "
            f"(max {load['max_cpus']:.2f}, {load['samples']} one-second samples)")
    if load["mean_cpus"] > 0.1:
        line += ("\nWARNING: the machine was not quiet while this ran; the numbers are skewed "
                 "(multi-worker contenders the most)")
    return line


# -- the table -----------------------------------------------------------------------

def _rate(x: float) -> str:
    """``x`` per second with three significant digits and an SI prefix."""
    if x != x:  # nan
        return "-"
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")):
        if x >= div * 0.9995 or div == 1.0:
            v = x / div
            text = f"{v:.0f}" if v >= 99.95 else (f"{v:.1f}" if v >= 9.995 else f"{v:.2f}")
            return f"{text} {prefix}/s" if prefix else f"{text} /s"
    return f"{x} /s"


def format_table(wrs: list[WorkloadResult], reps: int) -> str:
    out = []
    for wr in wrs:
        wl = wr.workload
        out.append("")
        out.append(f"{wl.name}: {wl.describe(wr.params)}")
        out.append(f"  {'contender':44s} {wl.unit + '/s (median)':>20s} {'spread':>7s} "
                   f"{'vs ours':>8s} {'busiest':>8s}")
        for r in wr.results:
            c = r.contender
            mark = " *" if c == wr.reference else ""
            ratio = wr.ratio(c)
            rtxt = f"{ratio:.2f}x" if ratio is not None else "-"
            if not r.samples:
                out.append(f"  {c.label + mark:44s} {'FAILED':>20s}")
                continue
            n = "" if len(r.samples) == reps else f" (n={len(r.samples)})"
            busy = f"{r.busiest * 100:.0f}%" if r.busiest is not None else ""
            out.append(f"  {c.label + mark:44s} {_rate(r.median):>20s} "
                       f"{'±' + format(r.spread * 100, '.0f') + '%':>7s} {rtxt:>8s} {busy:>8s}{n}")
    out.append("")
    out.append("* = ours (the reference): work stealing on, the most workers, the default pin. "
               "'vs ours' = contender / ours (above 1 = faster than ours); spread = half the "
               "range of the repetitions; busiest = share of the task polls run by the busiest "
               "worker (50% = polls spread evenly over 2 workers, 100% = one worker ran every "
               "poll).")
    return "\n".join(out)


# -- expected vs measured --------------------------------------------------------------

@dataclass
class Check:
    name: str
    target: float | None  # None: informative, no target
    measured: float | None
    detail: str = ""

    @property
    def status(self) -> str:
        if self.measured is None:
            return "n/a"
        if self.target is None:
            return "info"
        return "PASS" if self.measured >= self.target else "SHORT"

    def as_dict(self) -> dict:
        return {"name": self.name, "target": self.target, "measured": self.measured,
                "status": self.status, "detail": self.detail}


def _median_of(wr: WorkloadResult | None, c: Contender) -> float | None:
    if wr is None:
        return None
    r = wr.get(c)
    return r.median if r is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return a / b


def expectations(wrs: list[WorkloadResult], workers: list[int], pins: list[str],
                 ref_pin: str) -> list[Check]:
    by = {wr.workload.name: wr for wr in wrs}
    wmax, wmin = max(workers), min(workers)
    checks: list[Check] = []

    def ours(name: str, w: int = wmax, ws: bool = True, pin: str = ref_pin) -> Contender:
        wl = BY_NAME[name]
        return Contender("executor", w, ws, pin, wl.method)

    # 1. yield_many vs asyncio
    m = _ratio(_median_of(by.get("yield_many"), ours("yield_many")),
               _median_of(by.get("yield_many"), Contender("asyncio")))
    checks.append(Check(f"yield_many: ours (w={wmax}) vs asyncio", 8.0, m))
    # 2. cpu_map vs ThreadPoolExecutor.map
    m = _ratio(_median_of(by.get("cpu_map"), ours("cpu_map")),
               _median_of(by.get("cpu_map"), Contender("threadpool", wmax, None, ref_pin, "map")))
    checks.append(Check(f"cpu_map: ours map vs ThreadPoolExecutor.map (w={wmax})", 10.0, m))
    # 3. stealing costs nothing where there is nothing to steal
    for wr in wrs:
        if not wr.workload.balanced:
            continue
        name = wr.workload.name
        m = _ratio(_median_of(wr, ours(name)), _median_of(wr, ours(name, ws=False)))
        checks.append(Check(f"stealing on vs off, balanced: {name}", 0.97, m,
                            "within 3%: on/off >= 0.97"))
    # 4. stealing fixes imbalance
    m = _ratio(_median_of(by.get("imbalance"), ours("imbalance")),
               _median_of(by.get("imbalance"), ours("imbalance", ws=False)))
    detail = ""
    wr = by.get("imbalance")
    if wr is not None and wr.get(ours("imbalance")) is not None:
        r_on, r_off = wr.get(ours("imbalance")), wr.get(ours("imbalance", ws=False))
        if r_on.busiest is not None:
            detail = (f"busiest worker ran {r_on.busiest * 100:.0f}% of the polls with stealing"
                      + (f", {r_off.busiest * 100:.0f}% without" if r_off and r_off.busiest
                         is not None else "")
                      + f"; steals per measurement: {r_on.steals}")
    checks.append(Check(f"stealing on vs off: imbalance (w={wmax})", 1.5, m, detail))
    # 5. scaling on CPU-bound work
    if wmax > wmin:
        target = 0.9 * wmax / wmin
        for name in ("imbalance", "yield_many", "cpu_map"):
            m = _ratio(_median_of(by.get(name), ours(name)),
                       _median_of(by.get(name), ours(name, w=wmin)))
            checks.append(Check(f"{wmax} workers vs {wmin}: {name} (ws=on)",
                                target if name == "imbalance" else None, m))
            if name == "imbalance":
                wr = by.get(name)
                m = _ratio(_median_of(wr, Contender("threads", wmax, None, ref_pin)),
                           _median_of(wr, Contender("threads", wmin, None, ref_pin)))
                checks.append(Check(f"{wmax} plain threads vs {wmin}: imbalance's work "
                                    f"(the machine's ceiling)", None, m))
    # 6. pinned vs unpinned (no target: it decides the default)
    if "compact" in pins and "none" in pins:
        for wr in wrs:
            name = wr.workload.name
            m = _ratio(_median_of(wr, ours(name, pin="compact")),
                       _median_of(wr, ours(name, pin="none")))
            checks.append(Check(f"pinned (compact) vs unpinned (none), w={wmax}: {name}",
                                None, m))
    return checks


def format_expectations(checks: list[Check], ref_label: str) -> str:
    out = ["", f"What we expected vs what we measured (ours = {ref_label}; medians; "
                f"each ratio = the first named / the second):"]
    for ch in checks:
        target = f">= {ch.target:.2f}x" if ch.target is not None else "(no target)"
        meas = f"{ch.measured:.2f}x" if ch.measured is not None else "not measured"
        out.append(f"  {ch.name:62s} target {target:>11s}  measured {meas:>12s}  {ch.status}")
        if ch.detail and ch.target is not None and ch.target > 1:
            out.append(f"      ({ch.detail})")
    short = [ch for ch in checks if ch.status == "SHORT"]
    out.append(f"  {len(short)} of {sum(ch.target is not None and ch.measured is not None for ch in checks)} "
               f"targets missed." if short else "  every measured target met.")
    return "\n".join(out)


# -- files ---------------------------------------------------------------------------

def write_json(path: str, machine: dict, options: dict, wrs: list[WorkloadResult],
               checks: list[Check], wall: float, error: str | None) -> None:
    doc = {
        "machine": machine,
        "options": options,
        "wall_time_s": round(wall, 2),
        "error": error,
        "workloads": {
            wr.workload.name: {
                "unit": wr.workload.unit,
                "description": wr.workload.describe(wr.params),
                "params": wr.params,
                "reference": wr.reference.label,
                "contenders": [
                    {**r.contender.as_dict(),
                     "throughputs": [s.throughput for s in r.samples],
                     "rounds": [s.rounds for s in r.samples],
                     "seconds": [round(s.seconds, 4) for s in r.samples],
                     "worker_counters": [s.workers for s in r.samples],
                     "busiest_share": r.busiest,
                     "median": r.median if r.samples else None,
                     "spread": r.spread if r.samples else None,
                     "ratio_to_ours": wr.ratio(r.contender)}
                    for r in wr.results],
            } for wr in wrs},
        "expectations": [ch.as_dict() for ch in checks],
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, default=str)
        f.write("\n")
    os.replace(tmp, path)


def write_plot(path: str, wrs: list[WorkloadResult], title: str) -> str:
    """Throughput against worker count, one panel per workload. Returns a message."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        return f"plot skipped: matplotlib is not importable ({exc.__class__.__name__}: {exc})"
    n = len(wrs)
    if not n:
        return "plot skipped: no results"
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, wr in zip(axes.flat, wrs):
        series: dict[str, list[tuple[int, float]]] = {}
        flat: dict[str, float] = {}
        for r in wr.results:
            if not r.samples:
                continue
            c = r.contender
            if c.kind == "executor":
                key = f"ws={'on' if c.stealing else 'off'} pin={c.pin}"
                series.setdefault(key, []).append((c.workers, r.median))
            elif c.kind == "threads":
                series.setdefault("plain threads", []).append((c.workers, r.median))
            elif c.kind == "threadpool":
                series.setdefault(f"ThreadPool {c.method}", []).append((c.workers, r.median))
            else:
                flat[c.label.split(" (")[0]] = r.median
        for key, pts in series.items():
            pts.sort()
            style = "--" if key.startswith(("ThreadPool", "plain")) else (
                "-" if "ws=on" in key else ":")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=key)
        for i, (key, y) in enumerate(flat.items()):
            ax.axhline(y, color=f"C{len(series) + i}", linestyle="-.", linewidth=1, label=key)
        ax.set_title(f"{wr.workload.name}", fontsize=10)
        ax.set_xlabel("workers")
        ax.set_ylabel(f"{wr.workload.unit} / s (log)")
        ax.set_yscale("log")
        xs = sorted({r.contender.workers for r in wr.results if r.contender.kind in
                     ("executor", "threadpool", "threads")})
        if xs:
            ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot written: {path}"

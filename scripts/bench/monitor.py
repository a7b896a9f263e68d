"""A monitor thread: live throughput while the suite runs.

* stdout is not a terminal (CI logs, pipes): while this executor runs
  ``yield_many``, print the spec's line ``Throughput: X M polls/sec`` about
  once a second. Polls come from the executor's own counters (the sum of the
  workers' ``polls`` in ``Executor.stats()``), divided by the time an executor
  was attached, so the other contenders' turns do not dilute the figure.
* stdout is a terminal: one line, redrawn in place: a progress bar over all
  measurements, the measurement under way, the live polls/sec during
  ``yield_many``, and the time left.

It also samples, about once a second, how much CPU *other* processes use
(system-wide busy time minus this process's, with psutil): on a shared
machine that is the first thing to look at when numbers look odd.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from typing import Any, TextIO

__all__ = ["Monitor", "other_cpu_now"]


def _polls(ex: Any) -> int:
    return sum(w["polls"] for w in ex.stats()["workers"])


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 60}:{s % 60:02d}"


class Monitor:
    def __init__(self, total: int, *, stream: TextIO | None = None, tty: bool | None = None,
                 interval: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.total = max(1, total)
        self.done = 0
        self.current = ""
        self.lines = 0  # Throughput lines printed
        self._lock = threading.Lock()
        self._ex: Any = None
        self._base = 0
        self._t_attach = 0.0
        self._acc_polls = 0
        self._acc_time = 0.0
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self.others: list[float] = []  # CPUs' worth used by other processes, per second
        self._load = _LoadSampler()

    # -- called by the driver ----------------------------------------------------

    def start(self) -> "Monitor":
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def begin(self, what: str) -> None:
        self.current = what

    def end(self) -> None:
        self.done += 1

    def attach(self, ex: Any) -> None:
        """Count ``ex``'s polls until :meth:`detach` (call both from the same thread)."""
        base = _polls(ex)
        with self._lock:
            self._ex, self._base, self._t_attach = ex, base, time.perf_counter()

    def detach(self) -> None:
        with self._lock:
            ex = self._ex
            if ex is None:
                return
            self._acc_polls += _polls(ex) - self._base
            self._acc_time += time.perf_counter() - self._t_attach
            self._ex = None

    # -- the thread ---------------------------------------------------------------

    def _sample(self) -> tuple[int, float, bool]:
        with self._lock:
            polls, secs, live = self._acc_polls, self._acc_time, self._ex is not None
            if live:
                polls += _polls(self._ex) - self._base
                secs += time.perf_counter() - self._t_attach
        return polls, secs, live

    def _run(self) -> None:
        last_polls, last_secs = self._sample()[:2]
        last_print = time.perf_counter()
        rate = 0.0
        tick = 0.25 if self.tty else min(0.25, self.interval)
        while not self._stop.wait(tick):
            now = time.perf_counter()
            if now - last_print < (0.25 if self.tty else self.interval):
                continue
            other = self._load.sample()
            if other is not None:
                self.others.append(other)
            polls, secs, live = self._sample()
            if secs - last_secs > 0.05:
                rate = (polls - last_polls) / (secs - last_secs)
                last_polls, last_secs = polls, secs
                fresh = True
            else:
                fresh = False
            last_print = now
            if self.tty:
                self._draw(rate if live else None)
            elif fresh:
                self.stream.write(f"Throughput: {rate / 1e6:.2f} M polls/sec\n")
                self.stream.flush()
                self.lines += 1

    def other_load(self) -> dict | None:
        """CPU used by other processes while the suite ran (in CPUs), or None."""
        if not self.others:
            return None
        o = sorted(self.others)
        return {"mean_cpus": round(sum(o) / len(o), 2), "max_cpus": round(o[-1], 2),
                "samples": len(o)}

    def _draw(self, rate: float | None) -> None:
        elapsed = time.perf_counter() - self._t0
        frac = min(1.0, self.done / self.total)
        left = f"{_clock(elapsed / self.done * (self.total - self.done))} left" if self.done else "--:-- left"
        width = shutil.get_terminal_size((100, 20)).columns
        bar_w = 20
        bar = "#" * int(frac * bar_w) + "-" * (bar_w - int(frac * bar_w))
        live = f"  Throughput: {rate / 1e6:.2f} M polls/sec" if rate is not None else ""
        line = f"[{bar}] {frac * 100:3.0f}% {left}{live}  {self.current}"
        self.stream.write("\r\033[K" + line[:width - 1])
        self.stream.flush()


class _LoadSampler:
    """CPUs' worth of time used by other processes since the previous sample."""

    def __init__(self) -> None:
        try:
            import psutil
            self._me = psutil.Process(os.getpid())
            self._psutil = psutil
            self._ncpu = psutil.cpu_count() or 1
            psutil.cpu_percent(None)
            self._me.cpu_percent(None)
        except Exception:
            self._psutil = None

    def sample(self) -> float | None:
        if self._psutil is None:
            return None
        try:
            total = self._psutil.cpu_percent(None) / 100 * self._ncpu
            mine = self._me.cpu_percent(None) / 100
        except Exception:
            return None
        return max(0.0, total - mine)


def other_cpu_now(interval: float = 0.5) -> float | None:
    """CPUs' worth of time used by other processes over the next ``interval`` seconds."""
    s = _LoadSampler()
    time.sleep(interval)
    return s.sample()

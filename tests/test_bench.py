"""The benchmark suite (the README's main command) runs end to end at tiny sizes."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_quick_runs_every_workload(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--quick", "--json", str(out),
         "--plot", str(tmp_path / "quick.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=170)  # under pytest-timeout (180 s)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "yield_many" in proc.stdout and "cpu_map" in proc.stdout
    data = json.loads(out.read_text())
    assert data


def test_bench_help_explains_options():
    proc = subprocess.run([sys.executable, "-m", "scripts.bench", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for opt in ("--workloads", "--workers", "--reps", "--quick"):
        assert opt in proc.stdout


def test_overhead_script_reports_the_fit_and_queue_costs():
    proc = subprocess.run(
        [sys.executable, "scripts/overhead.py", "--polls", "2000", "--reps", "1", "--ops", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "per_iteration" in proc.stdout
    for name in ("global: push 1 + pop it", "local: pop, empty"):
        assert name in proc.stdout
    bad = subprocess.run([sys.executable, "scripts/overhead.py", "--reps", "0"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--reps must be at least 1" in bad.stderr

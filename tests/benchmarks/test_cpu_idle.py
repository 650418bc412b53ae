"""benchmarks/cpu_idle.sh prints one parseable sample per interval: time, idle share, load."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cpu_idle.sh"


def test_samples_are_a_time_an_idle_share_and_a_load_per_interval() -> None:
    proc = subprocess.run(["timeout", "3.5", "bash", str(SCRIPT), "1"], capture_output=True, text=True, check=False)
    assert proc.returncode == 124, proc.stderr  # stopped by timeout, not failed
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert 2 <= len(rows) <= 4, proc.stdout
    times = [int(r[0]) for r in rows]
    assert times == sorted(times) and times[-1] - times[0] <= 4, times
    assert all(0.0 <= float(r[1]) <= 1.0 and float(r[2]) >= 0 for r in rows), rows

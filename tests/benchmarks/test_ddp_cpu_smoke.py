"""benchmarks/ddp_cpu.py at CI size: the same candidate on 1 and 2 CPU ranks runs and reports both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_ddp_cpu_smoke_trains_on_1_and_2_ranks(tmp_path: Path) -> None:
    out = tmp_path / "ddp.json"
    argv = [sys.executable, "-m", "benchmarks.ddp_cpu", "--smoke", "--set", "train.hidden_units=32", "--json", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke: ok" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert sorted(r["world_size"] for r in rows) == [1, 2]  # the default configurations: 1xC and 2x(C/2)
    assert all(r["seconds_per_epoch"] > 0 for r in rows)

"""benchmarks/omp_wait.py at two epochs (the docstring's example): correctness only, never time.

Every run the benchmark reports is one train stage that exited 0 (it stops on a failed stage), under
the policy and count it names; its CPU time is its own (``os.wait4``), so no stage can use more than
the cores times its wall time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import omp_wait


def test_omp_wait_smoke_runs_each_policy_alone_and_two_at_once(tmp_path: Path) -> None:
    out = tmp_path / "omp.json"
    assert omp_wait.main(["--set", "train.epochs=2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["sets"] == ["train.epochs=2"]
    runs = sorted((r["policy"], r["at_once"]) for r in result["rows"])
    assert runs == [("default", 1), ("default", 2), ("default", 2), ("passive", 1), ("passive", 2), ("passive", 2)]
    cores = os.cpu_count() or 1
    for row in result["rows"]:
        assert 0 < row["cpu_s"] <= cores * row["wall_s"] + 0.5, row

"""benchmarks/drift_throughput.py at CI size (``--smoke``): correctness only, never time.

Both stages run, every rate is finite and positive, the stage timings add up to the total, and the
decision timed alone is the pipeline's own decision on the same feature table.
"""

from __future__ import annotations

import math

from benchmarks import drift_throughput


def test_drift_throughput_smoke() -> None:
    result = drift_throughput.main(["--smoke"])
    assert result["images"] == 24 + 40
    assert result["finite"]
    assert math.isfinite(result["pipeline_img_per_s"]) and result["pipeline_img_per_s"] > 0
    stages = result["stages"]
    assert set(stages) == {"list", "decode", "features", "decide", "total"}
    assert all(math.isfinite(s) and s >= 0 for s in stages.values())
    parts = sum(s for k, s in stages.items() if k != "total")
    assert parts <= stages["total"] and stages["total"] - parts < 0.05 * stages["total"] + 0.01, stages
    assert 0.0 <= result["pipeline_score"] <= 1.0
    decision = result["decision"]
    assert len(decision) == 2  # ours and Evidently's default preset
    ours = next(r for name, r in decision.items() if name.startswith("ours"))
    evidently = next(r for name, r in decision.items() if name.startswith("Evidently"))
    assert ours["detected"] is result["pipeline_detected"]  # the same rule on the same table
    for name, r in decision.items():
        assert math.isfinite(r["rows_per_s"]) and r["rows_per_s"] > 0, name
        assert 0.0 <= r["share"] <= 1.0, name
    assert math.isclose(result["ratio"], evidently["seconds"] / ours["seconds"])

"""benchmarks/drift_throughput.py at CI size (``--smoke``): correctness only, never time.

Both stages run, every rate is finite and positive, and both detectors gave a verdict on the same
feature table.
"""

from __future__ import annotations

import math

from benchmarks import drift_throughput


def test_drift_throughput_smoke() -> None:
    result = drift_throughput.main(["--smoke"])
    assert result["images"] == 24 + 40
    assert result["finite"]
    assert math.isfinite(result["pipeline_img_per_s"]) and result["pipeline_img_per_s"] > 0
    assert set(result["stages"]) == {"list", "decode", "features", "decide", "total"}
    assert all(math.isfinite(s) and s >= 0 for s in result["stages"].values())
    assert isinstance(result["pipeline_detected"], bool)
    assert 0.0 <= result["pipeline_score"] <= 1.0
    decision = result["decision"]
    assert len(decision) == 2  # ours and Evidently's default preset
    for name, r in decision.items():
        assert math.isfinite(r["rows_per_s"]) and r["rows_per_s"] > 0, name
        assert isinstance(r["detected"], bool), name
        assert 0.0 <= r["share"] <= 1.0, name
    assert math.isfinite(result["ratio"]) and result["ratio"] > 0

"""benchmarks/serving.py at CI size (``--smoke``): correctness only, never time.

Both servers answer every request with the model's own prediction (as engine.predict gives it on
the same image), and the capturing one writes every input.
"""

from __future__ import annotations

import math

from benchmarks import serving


def test_serving_benchmark_smoke() -> None:
    result = serving.main(["--smoke"])
    for name in ("capture_off", "capture_on"):
        levels = result[name]["levels"]
        assert [lv["clients"] for lv in levels] == [1, 2]
        for lv in levels:
            assert lv["requests"] == 6 and lv["error_count"] == 0, (name, lv)
            assert set(lv["answers"]) <= set(result["expected_answers"]), (name, lv)
            assert math.isfinite(lv["req_per_s"]) and lv["p50_ms"] <= lv["p99_ms"]
    on = result["capture_on"]["metrics"]
    assert on['modelfreshness_serving_captured_samples_total{model="model"}'] == 4 + 12
    assert result["captured_files"] == 4 + 12
    assert all(math.isfinite(v) and v > 0 for v in result["ceiling"].values())

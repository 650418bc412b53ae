"""benchmarks/drift_throughput.py at CI size (``--smoke``): correctness only, never time.

Each size's check really scored every image it was given, wrote its report, and its stages add up
to no more than the whole; the CLI's way (Evidently) and the scipy twin give the same verdict on
the same feature table, since they compute the same p-values.
"""

from __future__ import annotations

from benchmarks import drift_throughput

CLI_WAY = "Evidently ValueDrift per column + HTML report (what the CLI runs)"
SCIPY_TWIN = "scipy twin of the same tests (drift_rule.feature_pvalues)"


def test_drift_throughput_smoke_scores_every_image_and_agrees_with_the_twin() -> None:
    result = drift_throughput.main(["--smoke"])
    assert result["finite"]
    assert list(result["results"]) == result["sizes"] == [30, 50]
    for n, r in result["results"].items():
        assert r["samples"] == n, "the check must score exactly the images of its folder"
        assert r["reference_samples"] == 24
        assert r["report_bytes"] > 10_000, "the Evidently HTML report was not written"
        stages = dict(r["stages"])
        total = stages.pop("total")
        assert sum(stages.values()) <= total + 1e-6
        assert r["decision"][CLI_WAY]["detected"] == r["decision"][SCIPY_TWIN]["detected"]

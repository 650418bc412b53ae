"""benchmarks/novelty_gate.py's pure parts: the gated rule and the per-gate summary."""

from __future__ import annotations

from benchmarks import novelty_gate as ng

REF = 0.96  # the reference (held-out) accuracy the estimates are compared with


def test_the_gate_holds_back_a_significant_but_small_excess_and_never_the_estimate() -> None:
    small = ng.Batch(estimate=0.96, novelty=True, excess=0.01)
    assert ng.retrains(small, 0.0, REF) and not ng.retrains(small, 0.02, REF)
    assert not ng.retrains(ng.Batch(0.96, False, 0.30), 0.0, REF)  # a large share that is not significant
    assert ng.retrains(ng.Batch(0.90, False, 0.0), 0.05, REF)  # the estimated drop (6 points) alone still retrains


def test_summary_counts_targets_per_gate_and_names_the_worst_cells() -> None:
    unusual = [ng.Batch(0.96, True, 0.02)] * 3 + [ng.Batch(0.96, False, 0.0)]
    bees = [ng.Batch(0.95, True, 0.03)] * 4
    rows = [{"grid": "holdout", **ng.cell_row("mirror", "harmless", 0.3, unusual, (0.0, 0.025), REF)},
            {"grid": "tuning", **ng.cell_row("bees 30%", "harmful", 28.0, bees, (0.0, 0.025), REF)}]
    assert rows[0]["rates"] == {"0.0": 0.75, "0.025": 0.0} and abs(rows[0]["excess"] - 0.015) < 1e-12
    s = ng.summary(rows, (0.0, 0.025))
    assert s["0.0"]["harmlessOk"] == 0 and s["0.0"]["worstHarmless"] == "holdout mirror"
    assert s["0.025"]["harmlessOk"] == 1 and s["0.025"]["harmfulOk"] == 1
    assert s["0.025"]["worstHarmful"] == "tuning bees 30%"

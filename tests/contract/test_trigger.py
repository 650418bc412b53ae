"""The trigger policy (``freshness_contract.trigger.decide``) as a table: which signals start a retrain.

Columns: policy, distribution test fired, reference accuracy, estimated accuracy, measured
accuracy (labelled window), novelty detected, accuracyDrop -> retrain, reasons.
"""

from __future__ import annotations

import pytest
from freshness_contract import trigger

ROWS = [
    # impact: distribution alone is reported, not acted on
    ("impact", True, 0.93, 0.925, None, False, 0.05, False, ()),
    # impact: the estimated drop beyond accuracyDrop
    ("impact", False, 0.93, 0.85, None, False, 0.05, True, ("estimated-accuracy",)),
    ("impact", True, 0.93, 0.85, None, False, 0.05, True, ("estimated-accuracy",)),
    # a drop of exactly accuracyDrop is not "more than"
    ("impact", False, 0.90, 0.85, None, False, 0.05000001, False, ()),
    # novelty alone (a new class calibration cannot see)
    ("impact", False, 0.93, 0.92, None, True, 0.05, True, ("novelty",)),
    ("impact", False, 0.93, 0.80, None, True, 0.05, True, ("estimated-accuracy", "novelty")),
    # labels override the estimate, both ways
    ("impact", False, 0.93, 0.80, 0.92, False, 0.05, False, ()),
    ("impact", False, 0.93, 0.92, 0.80, False, 0.05, True, ("accuracy",)),
    # no reference accuracy or no accuracyDrop: the accuracy rules are off, novelty still counts
    ("impact", False, None, 0.50, None, False, 0.05, False, ()),
    ("impact", False, 0.93, 0.50, None, False, None, False, ()),
    ("impact", False, 0.93, None, None, True, 0.05, True, ("novelty",)),
    # no drop can be computed (no estimate: an older trainer or model file): distribution counts
    ("impact", True, 0.93, None, None, False, 0.05, True, ("distribution",)),
    ("impact", True, None, 0.50, None, True, 0.05, True, ("novelty", "distribution")),
    ("impact", True, 0.93, 0.92, None, False, None, False, ()),
    # distribution: today's behaviour; the estimate and novelty are reported only
    ("distribution", True, 0.93, 0.93, None, False, 0.05, True, ("distribution",)),
    ("distribution", False, 0.93, 0.50, None, True, 0.05, False, ()),
    ("distribution", False, 0.93, 0.93, 0.80, False, 0.05, True, ("accuracy",)),
    ("distribution", True, 0.93, 0.93, 0.80, False, 0.05, True, ("accuracy", "distribution")),
]


@pytest.mark.parametrize(("policy", "dist", "ref", "est", "measured", "novel", "drop", "retrain", "reasons"), ROWS)
def test_trigger_table(policy: str, dist: bool, ref: float | None, est: float | None, measured: float | None,
                       novel: bool, drop: float | None, retrain: bool, reasons: tuple[str, ...]) -> None:
    d = trigger.decide(policy, distribution_detected=dist, accuracy_drop=drop, reference_accuracy=ref,
                       estimated_accuracy=est, measured_accuracy=measured, novelty_detected=novel)
    assert (d.retrain, d.reasons) == (retrain, reasons)
    current = measured if measured is not None else est
    assert d.drop == (None if current is None or ref is None else pytest.approx(ref - current))


def test_an_unknown_policy_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"spec.drift.trigger: 'always' is not one of impact, distribution"):
        trigger.decide("always", distribution_detected=True, accuracy_drop=0.05)

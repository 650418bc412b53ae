"""The decision rule (pure) and the per-feature tests against Evidently's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from freshness_trainer import drift_rule


def test_simes_combines_sorted_pvalues() -> None:
    assert drift_rule.simes({}) == 1.0
    assert drift_rule.simes({"a": 0.5}) == 0.5
    # min(3*0.01/1, 3*0.02/2, 3*0.9/3) = 0.03
    assert drift_rule.simes({"a": 0.9, "b": 0.02, "c": 0.01}) == pytest.approx(0.03)
    assert drift_rule.simes({"a": 1.0, "b": 1.0}) == 1.0


@pytest.mark.parametrize(
    ("pvalues", "accuracy", "detected", "why"),
    [
        ({"a": 0.5, "b": 0.9, "predicted": 0.3}, None, False, "nothing moved"),
        ({"a": 1e-6, "b": 0.9, "predicted": 0.3}, None, True, "one feature moved a lot"),
        ({"a": 0.02, "b": 0.03, "predicted": 0.04}, None, True, "all moved a little: Simes 0.04"),
        ({"a": 0.02, "b": 0.5, "predicted": 0.9}, None, False, "one moved a little: Simes 0.06"),
        ({"a": 0.5, "b": 0.9}, drift_rule.Accuracy(current=0.80, reference=0.90), True, "accuracy fell 10 points"),
        ({"a": 0.5, "b": 0.9}, drift_rule.Accuracy(current=0.88, reference=0.90), False, "accuracy fell 2 points"),
    ],
)
def test_decide(pvalues: dict[str, float], accuracy: drift_rule.Accuracy | None, detected: bool, why: str) -> None:
    v = drift_rule.decide(pvalues, accuracy=accuracy)
    assert v.detected is detected, why
    assert v.score == pytest.approx(1 - drift_rule.simes(pvalues))
    assert v.accuracy_drifted is (accuracy is not None and accuracy.drop > drift_rule.DEFAULT_ACCURACY_DROP)


def test_share_and_top_features_follow_evidentlys_conditions() -> None:
    v = drift_rule.decide({"a": 0.05, "predicted": 0.05, "b": 0.001, "c": 0.2})
    # K-S drifts at p <= 0.05, chi-square at p < 0.05 (Evidently's own conditions).
    assert v.drifted == ["a", "b"] and v.share == 0.5
    assert v.top_features() == ["b", "a"]


def test_scipy_pvalues_equal_evidentlys() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=300), "y": rng.uniform(size=300),
                        "predicted": rng.choice(["cats", "dogs"], 300)})
    cur = pd.DataFrame({"x": rng.normal(0.2, size=150), "y": rng.uniform(size=150),
                        "predicted": rng.choice(["cats", "dogs", "dogs"], 150)})
    ours = drift_rule.feature_pvalues(ref, cur)
    theirs = drift_rule.evidently_pvalues(ref, cur)
    assert list(ours) == list(theirs) == ["x", "y", "predicted"]
    np.testing.assert_allclose([ours[k] for k in ours], [theirs[k] for k in ours], rtol=1e-12)
    assert ours["x"] < 0.05 and ours["predicted"] < 0.05


def test_a_model_predicting_one_class_everywhere_is_no_evidence_of_drift() -> None:
    # Evidently's chi-square answers p = 0 when reference and production both hold one and the same
    # predicted class (no degrees of freedom); taken as is, every check of such a model "drifted"
    # (seen in benchmarks/drift_throughput.py with an untrained model at 1,000 images).
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=240), "predicted": ["cats"] * 240})
    cur = pd.DataFrame({"x": rng.normal(size=1000), "predicted": ["cats"] * 1000})
    theirs = drift_rule.evidently_pvalues(ref, cur)
    assert theirs["predicted"] == drift_rule.feature_pvalues(ref, cur)["predicted"] == 1.0
    assert not drift_rule.decide(theirs).detected

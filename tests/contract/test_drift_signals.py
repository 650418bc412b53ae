"""The drift result's label-free signals (issue 14): estimatedAccuracy, novelty and referenceKind
travel camelCase on the wire, type into the frozen results, and bad values are refused by name."""

from __future__ import annotations

from typing import Any

import freshness_contract as contract
import pytest


def _drift(**extra: Any) -> dict[str, Any]:
    section = {"detected": False, "share": 0.1, "score": 0.3, "method": "m", "samples": 200, **extra}
    return {"step": "drift", "ok": True, "drift": section}


def test_the_signals_round_trip_typed() -> None:
    text = contract.encode(_drift(
        estimatedAccuracy={"value": 0.9, "low": 0.87, "high": 0.93, "reference": 0.95},
        novelty={"share": 0.31, "referenceRate": 0.016, "pValue": 1e-9, "detected": True},
        referenceKind="heldOut",
    ))
    assert '"referenceRate":0.016' in text and '"pValue":1e-09' in text
    d = contract.parse(text, expected_step="drift").drift
    assert d.estimated_accuracy == contract.EstimatedAccuracy(0.9, 0.87, 0.93, 0.95)
    assert d.novelty == contract.Novelty(0.31, 0.016, 1e-9, True)
    assert d.reference_kind == "heldOut"


def test_the_signals_are_optional() -> None:
    d = contract.parse(contract.encode(_drift()), expected_step="drift").drift
    assert d.estimated_accuracy is None and d.novelty is None and d.reference_kind is None
    no_reference = contract.parse(contract.encode(_drift(estimatedAccuracy={"value": 0.5, "low": 0.4, "high": 0.6})))
    assert no_reference.drift.estimated_accuracy == contract.EstimatedAccuracy(0.5, 0.4, 0.6, None)


@pytest.mark.parametrize(("extra", "field"), [
    ({"estimatedAccuracy": {"value": 1.2, "low": 0.4, "high": 0.6}}, "drift.estimatedAccuracy.value"),
    ({"estimatedAccuracy": {"value": 0.7, "low": 0.4, "high": 0.6}}, "drift.estimatedAccuracy"),
    ({"estimatedAccuracy": {"value": 0.5, "low": 0.4}}, "drift.estimatedAccuracy.high"),
    ({"novelty": {"share": 0.1, "referenceRate": 0.01, "pValue": 0.2}}, "drift.novelty.detected"),
    ({"novelty": {"share": 0.1, "referenceRate": 0.01, "pValue": -0.1, "detected": False}}, "drift.novelty.pValue"),
    ({"novelty": {"share": 0.1, "reference_rate": 0.01, "pValue": 0.1, "detected": False}}, "drift.novelty"),
    ({"referenceKind": "training"}, "drift.referenceKind"),
])
def test_bad_signals_are_refused_by_name(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(contract.ResultError) as err:
        contract.encode(_drift(**extra))
    assert err.value.reason == "MalformedResult"
    assert err.value.message.startswith(f"result field {field}"), err.value.message

"""Transition rows of the trigger policy (``spec.drift.trigger``, issue 14): which of a check's three
signals (distribution, estimated accuracy, novelty) start a retrain. Same table form as test_decide.py;
the policy's truth table on its own is tests/contract/test_trigger.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from freshness_operator.core.spec import SpecError, parse_spec
from freshness_operator.core.status import Phase

from tests.operator.sim import BASE_SPEC, Sim, merge, some
from tests.operator.test_decide import Row, assert_row, sim_with

TRAIN = ["CreateTrainJob", "CreateTrainJob"]  # the base spec runs two candidates at once


def estimate(value: float, reference: float = 0.93, spread: float = 0.02) -> dict[str, Any]:
    return {"estimatedAccuracy": {"value": value, "low": value - spread, "high": value + spread,
                                  "reference": reference}, "referenceKind": "heldOut"}


def novelty(detected: bool, share: float = 0.3) -> dict[str, Any]:
    rate = 0.016
    return {"novelty": {"share": share if detected else rate, "referenceRate": rate,
                        "pValue": 1e-9 if detected else 0.6, "detected": detected}}


def labelled(current: float, reference: float = 0.93) -> dict[str, Any]:
    return {"accuracy": {"current": current, "reference": reference, "drop": reference - current}}


HARMLESS = {**estimate(0.925), **novelty(False)}  # the inputs changed, the accuracy did not


def reasons(s: Sim) -> list[str] | None:
    return s.status.drift.reasons


TABLE: dict[str, tuple[Callable[[], Sim], Row]] = {
    "impact: a distribution change that costs no accuracy is reported, not retrained": (
        Sim,
        Row(
            lambda s: s.check(True, **HARMLESS),
            Phase.MONITORING,
            [],
            ["DistributionDrift"],
            check=lambda s: (
                s.status.drift.detected is False and s.status.drift.distribution_detected is True,
                s.condition("DistributionDrift") == ("True", "InputsChanged"),
                s.condition("Drifted") == ("False", "NoDrift"),
                "DriftDetected" not in s.events(),
                "estimated accuracy 0.925" in s.event("DistributionDrift"),
                s.status.drift.summary == "0.50/0.30 changed",
            ),
        ),
    ),
    "impact: an estimated drop beyond accuracyDrop starts a retrain without labels": (
        Sim,
        Row(
            lambda s: s.check(False, **estimate(0.85), **novelty(False)),
            Phase.TRAINING,
            TRAIN,
            ["DriftDetected", "TrainingStarted"],
            check=lambda s: (
                reasons(s) == ["estimated-accuracy"],
                s.condition("DistributionDrift") == ("False", "InputsUnchanged"),
                some(s.status.drift.estimated_accuracy).drop == pytest.approx(0.08),
                "trigger impact: estimated-accuracy" in s.event("DriftDetected"),
            ),
        ),
    ),
    "impact: accuracyDrop in the spec sets the allowed estimated drop": (
        sim_with(drift={"accuracyDrop": 0.1}),
        Row(lambda s: s.check(False, **estimate(0.85), **novelty(False)), Phase.MONITORING, []),
    ),
    "impact: novelty alone starts a retrain (a class calibration cannot see)": (
        Sim,
        Row(
            lambda s: s.check(False, **estimate(0.92), **novelty(True)),
            Phase.TRAINING,
            TRAIN,
            ["DriftDetected"],
            check=lambda s: (reasons(s) == ["novelty"], some(s.status.drift.novelty).share == 0.3),
        ),
    ),
    "impact: labels override a low estimate": (
        Sim,
        Row(
            lambda s: s.check(True, **estimate(0.80), **novelty(False), **labelled(0.92)),
            Phase.MONITORING,
            [],
            ["DistributionDrift"],
            check=lambda s: s.status.drift.detected is False,
        ),
    ),
    "impact: labels override a good estimate": (
        Sim,
        Row(
            lambda s: s.check(False, **estimate(0.92), **novelty(False), **labelled(0.80)),
            Phase.TRAINING,
            TRAIN,
            ["DriftDetected"],
            check=lambda s: reasons(s) == ["accuracy"],
        ),
    ),
    "impact: a result without an estimate (an older trainer) is decided by the distribution test": (
        Sim,
        Row(lambda s: s.check(True), Phase.TRAINING, TRAIN, ["DriftDetected"],
            check=lambda s: reasons(s) == ["distribution"]),
    ),
    "impact: consecutive counts checks that call for a retrain, not distribution changes": (
        sim_with(drift={"consecutive": 2}),
        Row(
            lambda s: s.check(True, **HARMLESS).check(False, **estimate(0.8), **novelty(False)),
            Phase.DRIFT_DETECTED,
            [],
            check=lambda s: s.status.drift.consecutive == 1,
        ),
    ),
    "distribution: today's behaviour, the distribution test alone starts a retrain": (
        sim_with(drift={"trigger": "distribution"}),
        Row(
            lambda s: s.check(True, **HARMLESS),
            Phase.TRAINING,
            TRAIN,
            ["DriftDetected", "TrainingStarted"],
            check=lambda s: (reasons(s) == ["distribution"],
                             s.condition("DistributionDrift") == ("True", "InputsChanged")),
        ),
    ),
    "distribution: the estimate and novelty are reported, not acted on": (
        sim_with(drift={"trigger": "distribution"}),
        Row(
            lambda s: s.check(False, **estimate(0.5), **novelty(True)),
            Phase.MONITORING,
            [],
            check=lambda s: (s.status.drift.detected is False, some(s.status.drift.novelty).detected),
        ),
    ),
}


@pytest.mark.parametrize("row_name", list(TABLE))
def test_trigger_transition(row_name: str) -> None:
    assert_row(*TABLE[row_name])


def test_a_bad_trigger_is_refused_by_name() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(merge(BASE_SPEC, {"drift": {"trigger": "always"}}))
    assert err.value.path == "spec.drift.trigger"
    assert "'always' is not one of impact, distribution" in str(err.value)


def test_the_default_trigger_is_impact() -> None:
    assert parse_spec(BASE_SPEC).drift.trigger == "impact"

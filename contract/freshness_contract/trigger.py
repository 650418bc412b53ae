"""Which signals of a drift check start a retrain: the trigger policy (``spec.drift.trigger``). Pure.

A drift check reports three signals (docs/operator.md, "Drift signals"):

* **distribution**: the two-sample test of the feature table found the inputs changed;
* **estimated accuracy**: the serving model's accuracy on the window, estimated without labels
  from its calibrated confidence, beside its reference (held-out) accuracy; when the window carries
  labels, the measured accuracy replaces the estimate;
* **novelty**: a significant share of the window is far from the reference in the model's
  embedding space (what calibration cannot see: classes the model has never seen).

Policies:

* ``impact`` (default): retrain when the accuracy drop (reference - measured, or reference -
  estimated when unlabelled) exceeds ``accuracy_drop``, or when novelty is detected. A distribution
  change that costs no accuracy is reported, not acted on. When no drop can be computed (a result
  without an estimate, from an older trainer or a model file without a calibration, or without a
  reference accuracy) the distribution test counts as before: the policy is never blinder than
  ``distribution`` for want of its signals;
* ``distribution``: retrain when the distribution test fires or the measured accuracy (labelled
  windows only) dropped by more than ``accuracy_drop``: the behaviour before the policy existed.

Lives in the contract so that the operator's decision core and the trainer's benchmark apply the
same rule; it imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("impact", "distribution")
DEFAULT_POLICY = "impact"
DEFAULT_THRESHOLD = 0.95
"""The drift score (1 - the Simes-combined p-value) at which the distribution test fires: at most
about 5% false alarms per check. The one place this number is written in code: the CRD's default
(checked by tests/operator/test_crd.py), params.yaml (tests/trainer/test_params.py) and the
trainer's ``drift_rule`` follow it."""
DEFAULT_ACCURACY_DROP = 0.05
"""The accuracy drop that counts when ``spec.drift.accuracyDrop`` is unset (the trainer's default too)."""


@dataclass(frozen=True)
class Decision:
    """Whether a retrain is due, and why (``reasons``: ``accuracy``, ``estimated-accuracy``,
    ``novelty``, ``distribution``, in that order, only those that fired and count under the policy)."""

    retrain: bool
    reasons: tuple[str, ...] = ()
    drop: float | None = None  # reference - (measured or estimated) accuracy, when known


def check_policy(policy: str, field: str = "spec.drift.trigger") -> str:
    """``policy`` when it is one of POLICIES; ValueError naming ``field`` and the allowed values."""
    if policy not in POLICIES:
        raise ValueError(f"{field}: {policy!r} is not one of {', '.join(POLICIES)}")
    return policy


def decide(
    policy: str,
    *,
    distribution_detected: bool,
    accuracy_drop: float | None,
    reference_accuracy: float | None = None,
    estimated_accuracy: float | None = None,
    measured_accuracy: float | None = None,
    novelty_detected: bool = False,
) -> Decision:
    """Apply ``policy`` (module docstring) to one check's signals. Pure.

    ``accuracy_drop`` None disables the accuracy rules (both measured and estimated). The measured
    accuracy, when given, overrides the estimate; a missing reference accuracy disables both.
    """
    check_policy(policy)
    measured = measured_accuracy is not None
    current = measured_accuracy if measured else estimated_accuracy
    drop = None if current is None or reference_accuracy is None else reference_accuracy - current
    dropped = drop is not None and accuracy_drop is not None and drop > accuracy_drop
    reasons: list[str] = []
    if dropped and measured:
        reasons.append("accuracy")
    if policy == "impact":
        if dropped and not measured:
            reasons.append("estimated-accuracy")
        if novelty_detected:
            reasons.append("novelty")
    if distribution_detected and (policy == "distribution" or drop is None):
        reasons.append("distribution")
    return Decision(bool(reasons), tuple(reasons), drop)

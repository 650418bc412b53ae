"""The ModelDeployment status as dataclasses (serialised with ``serde``, camelCase). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

HISTORY_LIMIT = 10


def wire(name: str) -> dict[str, str]:
    """Field metadata: the status key this field is written as, when its Python name differs.

    The status is a published API (the CRD's schema, dashboards, ``kubectl get -o jsonpath``): the
    Python names follow the domain (a retrain has candidates), the wire keeps its first spelling.
    """
    return {"wire": name}


class Phase(StrEnum):
    PENDING = "Pending"
    MONITORING = "Monitoring"
    DRIFT_DETECTED = "DriftDetected"
    TRAINING = "Training"
    PACKAGING = "Packaging"
    ROLLING_OUT = "RollingOut"
    DEGRADED = "Degraded"
    PAUSED = "Paused"
    FAILED = "Failed"


class RetrainStage(StrEnum):
    """Where the retrain in flight is; DONE once it has an outcome. (Not a ``JobKind``: rolling out
    runs no Job, and a stage lasts across several Jobs.)"""

    TRAINING = "Training"
    PACKAGING = "Packaging"
    ROLLING_OUT = "RollingOut"
    DONE = "Done"


class Outcome(StrEnum):
    ROLLED_OUT = "RolledOut"
    REJECTED = "CandidateRejected"
    TRAINING_FAILED = "TrainingFailed"
    PACKAGING_FAILED = "PackagingFailed"
    ROLLED_BACK = "RolledBack"
    ROLLOUT_FAILED = "RolloutFailed"


FAILED_OUTCOMES = {Outcome.TRAINING_FAILED, Outcome.PACKAGING_FAILED}
DEGRADED_OUTCOMES = {Outcome.ROLLED_BACK, Outcome.ROLLOUT_FAILED}


class CandidateState(StrEnum):
    """Where one candidate (one training Job of a retrain) is."""

    PENDING = "Pending"
    QUEUED = "Queued"  # its Job exists, suspended by Kueue until the LocalQueue's ClusterQueue admits it
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int = 0


@dataclass
class StepError:
    reason: str
    message: str
    time: datetime | None = None


@dataclass
class ModelRef:
    """Which serving model a drift check measured (the image says it exactly; the version is for people)."""

    version: str | None = None
    image: str | None = None


@dataclass
class EstimateStatus:
    """The serving model's accuracy on the last window, estimated without labels (issue 14)."""

    value: float
    low: float
    high: float
    reference: float | None = None  # its accuracy on its held-out split
    drop: float | None = None  # reference - value


@dataclass
class NoveltyStatus:
    """Share of the last window far from the reference in the model's embedding space, and its test."""

    share: float
    reference_rate: float
    p_value: float
    detected: bool


@dataclass
class DriftStatus:
    """Drift checks: the one in flight, the last verdict, and the count of drifted ones in a row.

    ``sequence`` numbers checks (1, 2, ...; in Job names and labels); ``verdict_check`` is the
    sequence of the check whose verdict is shown.
    """

    sequence: int = 0
    job: str | None = None
    started_at: datetime | None = None
    job_model: ModelRef | None = None  # the model the check in flight measures
    model: ModelRef | None = None  # the model the last verdict was measured against
    discarded: StepError | None = None  # the last verdict thrown away, and why
    check_requested: str | None = None  # the check-now annotation value last acted on
    next_check_time: datetime | None = None
    last_check_time: datetime | None = None
    detected: bool | None = None
    share: float | None = None
    score: float | None = None
    threshold: float | None = None
    method: str | None = None
    samples: int | None = None
    reference_samples: int | None = None
    top_features: list[str] | None = None
    report: str | None = None
    accuracy: dict[str, float] | None = None
    distribution_detected: bool | None = None  # the distribution test of the last verdict (the step's detected)
    estimated_accuracy: EstimateStatus | None = None
    novelty: NoveltyStatus | None = None
    reference_kind: str | None = None  # heldOut | folder
    trigger: str | None = None  # the policy the last verdict was decided under
    reasons: list[str] | None = None  # the signals that called for a retrain (detected is true)
    verdict_check: int = 0
    consecutive: int = 0
    summary: str | None = None
    last_error: StepError | None = None


@dataclass
class ModelStatus:
    version: str | None = None
    image: str | None = None
    uri: str | None = None
    experiment: str | None = None
    rev: str | None = None
    metrics: dict[str, float] | None = None
    deployed_at: datetime | None = None


@dataclass
class Candidate:
    """One training run of a retrain: the spec's params with one entry of spec.training.candidates."""

    index: int
    job: str
    overrides: dict[str, Any] = field(default_factory=dict)
    state: CandidateState = CandidateState.PENDING
    reason: str | None = None
    message: str | None = None
    metrics: dict[str, float] | None = None
    baseline_metrics: dict[str, float] | None = None
    experiment: str | None = None
    rev: str | None = None
    model: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queued_at: datetime | None = None  # when it started waiting for admission (Kueue)
    queued_seconds: float | None = None  # how long it waited, once admitted


@dataclass
class Gate:
    metric: str
    passed: bool
    reason: str
    message: str
    value: float | None = None
    baseline: float | None = None
    min_improvement: float | None = None
    min_value: float | None = None


@dataclass
class RetrainStatus:
    """The retrain in flight, or the last one with its outcome (``status.candidate`` on the wire).

    ``sequence`` numbers retrains of this ModelDeployment (1, 2, ...; in Job names and labels);
    ``candidates`` are its training runs, ``best`` the index of the one the gate judged.
    """

    sequence: int = field(metadata=wire("retrain"))
    stage: RetrainStage = RetrainStage.TRAINING
    started_at: datetime | None = None
    trigger: str | None = None
    trigger_check: int = 0
    candidates: list[Candidate] = field(default_factory=list, metadata=wire("runs"))
    best: int | None = None
    gate: Gate | None = None
    version: str | None = None
    package_job: str | None = None
    package_started_at: datetime | None = None
    image: str | None = None
    digest: str | None = None
    target_image: str | None = None
    previous_image: str | None = None  # recorded (and confirmed written) before the patch: intent before action
    rollback: StepError | None = None  # why the rollback was decided, recorded before its patch
    rollout_started_at: datetime | None = None
    outcome: Outcome | None = None
    reason: str | None = None
    message: str | None = None
    finished_at: datetime | None = None
    after_check: int = 0

    @property
    def in_flight(self) -> bool:
        return self.stage is not RetrainStage.DONE

    def best_candidate(self) -> Candidate | None:
        return next((r for r in self.candidates if r.index == self.best), None)


@dataclass
class Retrains:
    """Retrain start times kept for the cooldown and the per-day limit."""

    last_started: datetime | None = None
    recent: list[datetime] = field(default_factory=list)
    last_sequence: int = field(default=0, metadata=wire("count"))  # the highest used: Job names are never reused


@dataclass
class HistoryEntry(ModelStatus):
    """A model that served before: its ``ModelStatus`` fields, then when, by what and why it was replaced."""

    replaced_at: datetime | None = None
    replaced_by: str | None = None
    reason: str | None = None


@dataclass
class Status:
    phase: Phase = Phase.PENDING
    observed_generation: int = 0
    conditions: list[Condition] = field(default_factory=list)
    drift: DriftStatus = field(default_factory=DriftStatus)
    model: ModelStatus | None = None
    retrain: RetrainStatus | None = field(default=None, metadata=wire("candidate"))
    retrains: Retrains = field(default_factory=Retrains)
    history: list[HistoryEntry] = field(default_factory=list)
    step: str | None = None  # the step running now, for the STEP column
    last_error: StepError | None = None  # the last reason Ready turned False, kept after recovery
    last_reconcile_time: datetime | None = None  # refreshed at least every HEARTBEAT while an operator runs

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

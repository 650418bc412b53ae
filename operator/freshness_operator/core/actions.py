"""What the core asks the wiring to do. Plain values; the wiring executes them in order. Pure.

``dispatch`` is the one place that tells the kinds apart: the wiring (``reconcile``) and the fake
world of the tests (``tests/operator/sim.py``) each implement ``Handler`` and get every kind, or
mypy says which one they miss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar, assert_never

from freshness_operator.core.observed import JobKind


@dataclass(frozen=True)
class CreateDriftJob:
    name: str
    sequence: int  # the check's
    model_uri: str | None
    kind = JobKind.DRIFT


@dataclass(frozen=True)
class CreateTrainJob:
    name: str
    sequence: int  # the retrain's
    index: int  # the candidate's
    overrides: dict[str, Any] = field(default_factory=dict)
    baseline_model: str | None = None
    kind = JobKind.TRAIN


@dataclass(frozen=True)
class CreatePackageJob:
    name: str
    sequence: int  # the retrain's
    model_uri: str
    image: str
    kind = JobKind.PACKAGE


CreateJob = CreateDriftJob | CreateTrainJob | CreatePackageJob


@dataclass(frozen=True)
class DeleteJob:
    name: str


@dataclass(frozen=True)
class PatchImage:
    """Set the serving container's image (a rollout or a rollback)."""

    image: str
    rollback: bool = False


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the ModelDeployment; ``reason`` is CamelCase."""

    reason: str
    message: str
    warning: bool = False


class Metric(StrEnum):
    """The counters a ``Count`` increments (``modelfreshness_<value>_total``, docs/contracts.md)."""

    DRIFT_CHECKS = "drift_checks"
    RETRAINS = "retrains"
    ROLLOUTS = "rollouts"
    ROLLBACKS = "rollbacks"


@dataclass(frozen=True)
class Count:
    """Increment a counter; ``result`` labels it (all but ``ROLLBACKS``)."""

    metric: Metric
    result: str | None = None


@dataclass(frozen=True)
class ObserveDuration:
    kind: JobKind
    seconds: float


@dataclass(frozen=True)
class ObserveQueued:
    """A training Job admitted by Kueue after ``seconds`` in its queue (core/queue.py)."""

    seconds: float


Action = (
    CreateDriftJob
    | CreateTrainJob
    | CreatePackageJob
    | DeleteJob
    | PatchImage
    | Emit
    | Count
    | ObserveDuration
    | ObserveQueued
)


T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Handler(Protocol[T_co]):
    """One method per kind of action; ``dispatch`` calls the one an action needs."""

    def create_job(self, action: CreateJob) -> T_co: ...
    def delete_job(self, action: DeleteJob) -> T_co: ...
    def patch_image(self, action: PatchImage) -> T_co: ...
    def emit(self, action: Emit) -> T_co: ...
    def count(self, action: Count) -> T_co: ...
    def observe_duration(self, action: ObserveDuration) -> T_co: ...
    def observe_queued(self, action: ObserveQueued) -> T_co: ...


def dispatch(action: Action, handler: Handler[T]) -> T:
    """Hand ``action`` to the method of ``handler`` for its kind (exhaustive: see ``assert_never``)."""
    match action:
        case CreateDriftJob() | CreateTrainJob() | CreatePackageJob():
            return handler.create_job(action)
        case DeleteJob():
            return handler.delete_job(action)
        case PatchImage():
            return handler.patch_image(action)
        case Emit():
            return handler.emit(action)
        case Count():
            return handler.count(action)
        case ObserveDuration():
            return handler.observe_duration(action)
        case ObserveQueued():
            return handler.observe_queued(action)
        case _:
            assert_never(action)

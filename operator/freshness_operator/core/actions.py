"""What the core asks the wiring to do. Plain values; the wiring executes them in order. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CreateDriftJob:
    name: str
    number: int
    model_uri: str | None


@dataclass(frozen=True)
class CreateTrainJob:
    name: str
    retrain: int
    index: int
    overrides: dict[str, Any] = field(default_factory=dict)
    baseline_model: str | None = None


@dataclass(frozen=True)
class CreatePackageJob:
    name: str
    retrain: int
    model_uri: str
    image: str


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


@dataclass(frozen=True)
class Count:
    """Increment a counter: drift_checks, retrains, rollouts (with ``result``) or rollbacks."""

    metric: str
    result: str | None = None


@dataclass(frozen=True)
class ObserveDuration:
    step: str
    seconds: float


@dataclass(frozen=True)
class ObserveQueued:
    """A training Job admitted by Kueue after ``seconds`` in its queue."""

    seconds: float


Action = (
    CreateDriftJob | CreateTrainJob | CreatePackageJob | DeleteJob | PatchImage | Emit | Count | ObserveDuration
    | ObserveQueued
)

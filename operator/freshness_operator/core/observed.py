"""What the operator saw in the cluster, already reduced to what the core needs. Pure values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from freshness_contract.results import Section


class JobState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class JobKind(StrEnum):
    """What a step Job does (its ``modelfreshness.io/step`` label; the step name in results)."""

    DRIFT = "drift"
    TRAIN = "train"
    PACKAGE = "package"


@dataclass(frozen=True)
class StepOutcome:
    """A finished step: ``ok`` and its typed result section, or the reason it failed.

    ``result`` comes from ``freshness_contract``, which requires the step's section when ``ok``;
    the core still checks its kind (and a package's image) before acting on it.
    """

    ok: bool
    reason: str = ""
    message: str = ""
    result: Section | None = None


@dataclass(frozen=True)
class Waiting:
    """Why a running step's pod makes no progress (unschedulable, image pull, missing Secret, crash loop)."""

    reason: str
    message: str
    pod: str


@dataclass(frozen=True)
class JobObservation:
    name: str
    kind: JobKind
    sequence: int  # the check's or the retrain's sequence number (its label)
    state: JobState
    index: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    outcome: StepOutcome | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    waiting: Waiting | None = None
    # Kueue (spec.training.queue): the LocalQueue the Job names, and whether it is suspended,
    # waiting for admission. ``started_at`` is then the Job's startTime (set on admission, reset on
    # every resume), never its creation; ``created_at`` is when it was created.
    queue: str | None = None
    queued: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True)
class DeploymentObservation:
    """The serving Deployment's rollout state (``found`` False when it does not exist).

    ``serving_for`` is the value of its ``modelfreshness.io/serving-for`` label (None without it):
    the opt-in naming the one ModelDeployment allowed to patch it.
    """

    found: bool = False
    image: str | None = None
    container_found: bool = False
    serving_for: str | None = None
    containers: tuple[str, ...] = ()  # the names of the pod template's containers
    generation: int = 0
    observed_generation: int = 0
    replicas: int = 0
    status_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    progress_deadline_exceeded: bool = False
    message: str = ""

    @property
    def rolled_out(self) -> bool:
        """kubectl rollout status' rule: every replica updated and available, no old ones left."""
        return (
            self.observed_generation >= self.generation
            and self.updated_replicas >= self.replicas
            and self.status_replicas <= self.updated_replicas
            and self.available_replicas >= self.updated_replicas
        )


@dataclass(frozen=True)
class Refusal:
    """The API refused an action of this reconcile for good (400/403/404/422, a webhook denial).

    ``action`` is the action's kind (``CreateTrainJob``, ``PatchImage``...), ``target`` the Job
    name or the image it carried; ``obj`` names the object (``Deployment default/web``) and
    ``message`` is the API's own Status message, which names the field it refused.
    """

    action: str
    target: str
    obj: str
    code: int
    reason: str
    message: str

    def describe(self) -> str:
        return f"{self.obj}: {self.code} {self.reason}: {self.message}"


@dataclass(frozen=True)
class Observed:
    jobs: tuple[JobObservation, ...] = ()
    deployment: DeploymentObservation = field(default_factory=DeploymentObservation)
    check_now: str | None = None  # the ModelDeployment's modelfreshness.io/check-now annotation
    peers: tuple[str, ...] = ()  # other ModelDeployments naming the same serving Deployment
    refused: Refusal | None = None  # an action of this reconcile the API refused (the wiring re-decides)

    def job(self, name: str | None) -> JobObservation | None:
        return next((j for j in self.jobs if j.name == name), None)

    def of_kind(self, kind: JobKind) -> list[JobObservation]:
        return [j for j in self.jobs if j.kind is kind]

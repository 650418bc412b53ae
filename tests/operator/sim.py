"""A fake world for the pure core: ``decide`` plus an in-memory cluster that applies its actions.

Fluent on purpose (Kubebuilder/Kueue style): ``Sim().check(drift=True).finish_runs(...)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import freshness_contract as contract
from freshness_operator.core import actions as act
from freshness_operator.core import decide, parse_spec
from freshness_operator.core.context import Decision
from freshness_operator.core.observed import (
    DeploymentObservation,
    JobKind,
    JobObservation,
    JobState,
    Observed,
    Refusal,
    StepOutcome,
    Waiting,
)
from freshness_operator.core.spec import Spec
from freshness_operator.core.status import ModelStatus, Phase, RetrainStatus, Status
from freshness_operator.observe import outcome_of

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
IMAGE0 = "registry.example/cats-dogs:0.1"
DIGEST = "sha256:" + "ab" * 32
T = TypeVar("T")


def some(value: T | None, what: str = "value") -> T:
    """The value, asserted present: narrows an Optional inside a table row's lambda."""
    assert value is not None, f"no {what}"
    return value


BASE_SPEC: dict[str, Any] = {
    "source": {"repo": "https://git.example/acme/cats-dogs.git", "revision": "main"},
    "data": {"reference": "data/train", "current": "s3://prod/cats-dogs/"},
    "serving": {
        "deployment": "cats-dogs",
        "container": "server",
        "image": "registry.example/cats-dogs",
        "modelUri": "s3://models/cats-dogs/0.1/model.pt",
    },
    "drift": {"interval": "1h", "threshold": 0.3, "minSamples": 10},
    "training": {
        "params": {"train.num_classes": 3},
        "candidates": [{"train.lr": 0.01}, {"train.lr": 0.001}],
        "maxParallel": 2,
    },
    "promotion": {"metric": "val_acc", "minImprovement": 0.0},
    "rollout": {"progressDeadlineSeconds": 600, "autoRollback": True},
    "policy": {"cooldown": "0s", "maxRetrainsPerDay": 100},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_spec(**sections: Any) -> Spec:
    return parse_spec(merge(BASE_SPEC, sections))


def healthy(image: str = IMAGE0, replicas: int = 2, serving_for: str | None = "cats") -> DeploymentObservation:
    """A rolled-out serving Deployment, opted in for ModelDeployment "cats" (Sim's default name)."""
    return DeploymentObservation(
        found=True,
        image=image,
        container_found=True,
        serving_for=serving_for,
        generation=1,
        observed_generation=1,
        replicas=replicas,
        status_replicas=replicas,
        updated_replicas=replicas,
        available_replicas=replicas,
    )


def drift_result(detected: bool, share: float = 0.5, score: float | None = None) -> dict[str, Any]:
    return {
        "detected": detected,
        "share": share,
        "score": share if score is None else score,
        "threshold": 0.3,
        "method": "evidently",
        "samples": 200,
        "topFeatures": ["confidence"],
    }


def train_result(val_acc: float | None, baseline: float | None = 0.8, rev: str = "abcdef1234") -> dict[str, Any]:
    metrics = {} if val_acc is None else {"val_acc": val_acc}
    doc: dict[str, Any] = {"experiment": "exp-1", "rev": rev, "metrics": metrics, "model": f"s3://m/{rev}.pt"}
    if baseline is not None:
        doc["baselineMetrics"] = {"val_acc": baseline}
    return doc


@dataclass
class Sim:
    spec: Spec = field(default_factory=make_spec)
    name: str = "cats"
    now: datetime = T0
    status: Status = field(default_factory=Status)
    jobs: dict[str, JobObservation] = field(default_factory=dict)
    deployment: DeploymentObservation = field(default_factory=healthy)
    generation: int = 1
    history: list[Decision] = field(default_factory=list)
    check_now: str | None = None
    peers: tuple[str, ...] = ()  # other ModelDeployments on the same serving Deployment
    follow: bool = True  # decide again at once when asked (False: stop after the intent is recorded)
    _before: tuple[Status, dict[str, JobObservation], DeploymentObservation] | None = None

    # ---------------------------------------------------------------- driving
    def observed(self) -> Observed:
        return Observed(tuple(self.jobs.values()), self.deployment, self.check_now, self.peers)

    def step(self, seconds: float = 0) -> Sim:
        """Advance the clock, decide, apply the actions to the fake cluster; decide again at once
        when the decision asks for it (an intent recorded), as the runner does."""
        self.now += timedelta(seconds=seconds)
        for _ in range(3):
            d = self.decide_once()
            if not self.follow or d.requeue_at != self.now:
                break
        return self

    def decide_once(self, refused: Refusal | None = None) -> Decision:
        """One decision at ``now`` (``refused``: the API refused an action of the last one)."""
        self._before = (copy.deepcopy(self.status), dict(self.jobs), self.deployment)
        d = decide(
            name=self.name,
            spec=self.spec,
            status=self.status,
            observed=replace(self.observed(), refused=refused),
            now=self.now,
            generation=self.generation,
        )
        self.status = d.status
        self.history.append(d)
        for a in d.actions:
            self._apply(a)
        return d

    def _apply(self, a: act.Action) -> None:
        act.dispatch(a, _World(self))

    def _create(self, a: act.CreateJob) -> None:
        if a.name not in self.jobs:  # create-if-absent, like the API (409)
            index = a.index if isinstance(a, act.CreateTrainJob) else None
            overrides = a.overrides if isinstance(a, act.CreateTrainJob) else {}
            self.jobs[a.name] = JobObservation(
                a.name, a.kind, a.sequence, JobState.RUNNING, index, overrides, started_at=self.now
            )

    def finish(
        self,
        name: str,
        result: dict[str, Any] | None = None,
        *,
        ok: bool = True,
        reason: str = "",
        message: str = "",
        seconds: float = 5,
    ) -> Sim:
        """Finish a Job with a result section (ok; read through the contract as the operator reads
        a termination message) or a failure reason, then decide."""
        if ok and result is not None:
            step = self.jobs[name].kind
            return self.finish_message(name, contract.encode({"step": step.value, "ok": True, step.value: result}))
        return self.finish_outcome(name, StepOutcome(ok, reason, message), seconds)

    def finish_message(self, name: str, message: str | None, seconds: float = 5) -> Sim:
        """Finish a Job whose container wrote exactly this termination message, then decide."""
        return self.finish_outcome(name, outcome_of(self.jobs[name].kind, message), seconds, succeeded=True)

    def finish_outcome(self, name: str, outcome: StepOutcome, seconds: float = 5, *, succeeded: bool = False) -> Sim:
        """Finish a Job with an outcome as given, bypassing the contract (the core's own defences)."""
        state = JobState.SUCCEEDED if outcome.ok or succeeded else JobState.FAILED
        finished = self.now + timedelta(seconds=seconds)
        self.jobs[name] = replace(self.jobs[name], state=state, outcome=outcome, finished_at=finished)
        return self.step(seconds)

    def stuck(self, name: str, reason: str, message: str = "") -> Sim:
        """A running Job's pod waits (``reason``; an empty reason: the pod runs again)."""
        waiting = Waiting(reason, message or reason, f"{name}-pod") if reason else None
        self.jobs[name] = replace(self.jobs[name], waiting=waiting)
        return self

    def lose_jobs(self) -> Sim:
        """Every Job disappears (deleted by someone, or garbage-collected)."""
        self.jobs.clear()
        return self

    def serving_image(self, image: str) -> Sim:
        """Someone else sets the serving container's image."""
        self.deployment = replace(self.deployment, image=image)
        return self

    def serving_for(self, value: str | None) -> Sim:
        """The serving Deployment's owner sets (or, with None, removes) the opt-in label."""
        self.deployment = replace(self.deployment, serving_for=value)
        return self

    def serving_gone(self) -> Sim:
        """The serving Deployment is deleted."""
        self.deployment = DeploymentObservation()
        return self

    def serving_containers(self, *names: str) -> Sim:
        """The serving Deployment has these containers, none of them spec.serving.container."""
        self.deployment = replace(self.deployment, image=None, container_found=False, containers=names)
        return self

    def serving_back(self, image: str = IMAGE0) -> Sim:
        """The serving Deployment exists (again), rolled out."""
        self.deployment = healthy(image)
        return self

    def shared_with(self, *peers: str) -> Sim:
        """Other ModelDeployments name the same serving Deployment (none: alone again)."""
        self.peers = peers
        return self

    def annotate_check_now(self, value: str) -> Sim:
        """Someone sets modelfreshness.io/check-now on the ModelDeployment."""
        self.check_now = value
        return self

    def check(self, detected: bool, share: float = 0.5, **signals: Any) -> Sim:
        """Run the next drift check to the end with the given verdict; ``signals``: more fields of
        the drift section (``estimatedAccuracy``, ``novelty``, ``accuracy``, ``referenceKind``)."""
        if self.status.drift.job is None:
            due = self.status.drift.next_check_time
            self.step(max(0.0, (due - self.now).total_seconds()) if due else 0)
        job = self.status.drift.job
        assert job is not None, "no drift check started"
        return self.finish(job, {**drift_result(detected, share), **signals})

    def finish_runs(self, *accs: float | None, baseline: float | None = 0.8) -> Sim:
        """Finish the running training Jobs in order with these val_acc values (None: fail)."""
        for acc in accs:
            running = self.running(JobKind.TRAIN)
            assert running, "no training Job is running"
            if acc is None:
                self.finish(running[0], ok=False, reason="TrainingError", message="loss is NaN")
            else:
                self.finish(running[0], train_result(acc, baseline, rev=f"rev{running[0][-1]}000000"))
        return self

    def package(self, image: str | None = None, digest: str = DIGEST) -> Sim:
        """Finish the package Job; by default with the image it was asked for, pinned by ``digest``."""
        c = self.retrain
        assert c.package_job, "no package Job started"
        built = image or f"registry.example/cats-dogs:{c.version}@{digest}"
        return self.finish(c.package_job, {"image": built, "digest": digest})

    def rollout_completes(self) -> Sim:
        d = self.deployment
        self.deployment = replace(
            d,
            observed_generation=d.generation,
            updated_replicas=d.replicas,
            available_replicas=d.replicas,
            status_replicas=d.replicas,
        )
        return self.step(3)

    def rollout_stalls(self) -> Sim:
        d = self.deployment
        self.deployment = replace(
            d,
            observed_generation=d.generation,
            updated_replicas=1,
            available_replicas=d.replicas,
            status_replicas=d.replicas + 1,
            progress_deadline_exceeded=True,
            message="ReplicaSet has timed out progressing.",
        )
        return self.step(3)

    def to_packaging(self) -> Sim:
        return self.check(True).finish_runs(0.9, 0.85)

    def to_rolling_out(self) -> Sim:
        return self.to_packaging().package()

    def to_intent(self) -> Sim:
        """Packaged; the decision that records the rollout's intent (no patch yet) is the last one."""
        self.to_packaging()
        self.follow = False
        self.package()
        self.follow = True
        return self

    def refuse(self, refusal: Refusal) -> Sim:
        """The API refused an action of the last decision for good: as the wiring does, nothing of
        that decision happened (no status write); decide again from before it, with the refusal."""
        self.status, self.jobs, self.deployment = some(self._before, "decision to refuse")
        self.history.pop()
        self.decide_once(refused=refusal)
        return self

    def stop_after_intent(self) -> Sim:
        """From now on, do not decide again when a decision records an intent."""
        self.follow = False
        return self

    def patch_lost(self) -> Sim:
        """The patch reached the Deployment, the status write after it was lost (a crash, a 409)."""
        kept = copy.deepcopy(self.status)
        self.follow = False
        self.step()
        self.follow = True
        assert self.actions(act.PatchImage), "the intent was not patched"
        self.status = kept
        return self

    # ---------------------------------------------------------------- reading
    @property
    def phase(self) -> Phase:
        return self.status.phase

    @property
    def last(self) -> Decision:
        """The latest decision (asserted to exist)."""
        assert self.history, "no decision taken yet"
        return self.history[-1]

    @property
    def model(self) -> ModelStatus:
        """The serving model of the status (asserted present)."""
        return some(self.status.model, "status.model")

    @property
    def retrain(self) -> RetrainStatus:
        """The retrain in flight or the last one (asserted present)."""
        return some(self.status.retrain, "status.retrain")

    def running(self, step: JobKind) -> list[str]:
        return sorted(j.name for j in self.jobs.values() if j.kind is step and j.state is JobState.RUNNING)

    def of_kind(self, step: JobKind) -> list[str]:
        return sorted(j.name for j in self.jobs.values() if j.kind is step)

    def actions(self, kind: type) -> list[Any]:
        return [a for a in self.last.actions if isinstance(a, kind)]

    def events(self) -> list[str]:
        """Event reasons of the last decision."""
        return [a.reason for a in self.actions(act.Emit)]

    def event(self, reason: str) -> str:
        """The message of the last decision's Event with this reason (asserted present)."""
        messages = [a.message for a in self.actions(act.Emit) if a.reason == reason]
        assert messages, f"no {reason} Event in {self.events()}"
        return str(messages[0])

    def all_events(self) -> list[str]:
        return [a.reason for d in self.history for a in d.actions if isinstance(a, act.Emit)]

    def counts(self) -> list[tuple[str, str | None]]:
        return [(a.metric, a.result) for d in self.history for a in d.actions if isinstance(a, act.Count)]

    def condition(self, type_: str) -> tuple[str, str]:
        c = self.status.condition(type_)
        assert c is not None, f"no {type_} condition"
        return c.status, c.reason


@dataclass
class _World:
    """The in-memory cluster's side of ``act.dispatch``: Jobs and the Deployment change; Events and
    metrics are only read back from the decisions (``events``, ``counts``)."""

    sim: Sim

    def create_job(self, action: act.CreateJob) -> None:
        self.sim._create(action)

    def delete_job(self, action: act.DeleteJob) -> None:
        self.sim.jobs.pop(action.name, None)

    def patch_image(self, action: act.PatchImage) -> None:
        dep = self.sim.deployment
        self.sim.deployment = replace(dep, image=action.image, generation=dep.generation + 1, updated_replicas=0)

    def emit(self, action: act.Emit) -> None:
        pass

    def count(self, action: act.Count) -> None:
        pass

    def observe_duration(self, action: act.ObserveDuration) -> None:
        pass

    def observe_queued(self, action: act.ObserveQueued) -> None:
        pass

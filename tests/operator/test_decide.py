"""Transition table of the decision core: one row per phase and branch (docs/architecture.md, house rule 1).

Each row drives the fake world to a state, takes one more decision, and states the phase,
the side-effect actions of that last decision, the Events it emits and anything else that matters.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest
from freshness_contract import SCHEMA_VERSION, PackageResult
from freshness_operator.core import actions as act
from freshness_operator.core import names
from freshness_operator.core.decide import retrying
from freshness_operator.core.heartbeat import HEARTBEAT
from freshness_operator.core.observed import JobKind, JobObservation, JobState, Refusal, StepOutcome
from freshness_operator.core.status import CandidateState, ModelRef, Outcome, Phase, Status

from tests.operator.sim import DIGEST, IMAGE0, Sim, drift_result, healthy, make_spec, some, train_result

OTHER = "sha256:" + "cd" * 32

EFFECTS = (act.CreateDriftJob, act.CreateTrainJob, act.CreatePackageJob, act.PatchImage, act.DeleteJob)


@dataclass
class Row:
    drive: Callable[[Sim], object]
    phase: Phase
    effects: list[str] = field(default_factory=list)  # kinds of side-effect actions, in order
    events: list[str] = field(default_factory=list)  # reasons that must be among the last decision's
    check: Callable[[Sim], object] | None = None


def assert_row(make: Callable[[], Sim], row: Row) -> None:
    """Drive a fresh world through the row, then check its phase, effects, events and own check."""
    sim = make()
    row.drive(sim)
    assert sim.phase is row.phase, f"phase {sim.phase}, conditions {sim.status.conditions}"
    effects = [type(a).__name__ for a in sim.last.actions if isinstance(a, EFFECTS)]
    assert effects == row.effects
    missing = [e for e in row.events if e not in sim.events()]
    assert not missing, f"events {sim.events()} lack {missing}"
    if row.check is not None:
        result = row.check(sim)
        checks = result if isinstance(result, tuple) else (result,)
        assert all(checks), f"checks {checks}"


def sim_with(**spec: object) -> Callable[[], Sim]:
    return lambda: Sim(spec=make_spec(**spec))


def paused(sim: Sim) -> Sim:
    sim.spec = replace(sim.spec, paused=True)
    sim.generation += 1
    return sim


def edited(sim: Sim) -> Sim:
    """Someone edits the spec without changing anything the core reads (a new generation)."""
    sim.generation += 1
    return sim


def unpaused(sim: Sim) -> Sim:
    sim.spec = replace(sim.spec, paused=False)
    sim.generation += 1
    return sim


def doc(step: str, section: dict[str, object] | None = None) -> str:
    """A termination message that passes the old schema: ok, and the step's section only if given."""
    body: dict[str, object] = {"schemaVersion": SCHEMA_VERSION, "step": step, "ok": True}
    if section is not None:
        body[step] = section
    return json.dumps(body)


def tamper_target(sim: Sim) -> Sim:
    """Someone edits the recorded target image between packaging and the rollout."""
    sim.retrain.target_image = f"evil.example/x:1@{DIGEST}"
    return sim


INVALID_IMAGE = Refusal(
    action="PatchImage",
    target=f"registry.example/cats-dogs:v1-rev00000@{DIGEST}",
    obj="Deployment default/cats-dogs",
    code=422,
    reason="Invalid",
    message='Deployment.apps "cats-dogs" is invalid: spec.template.spec.containers[0].image: Required value',
)


def job_refused(action: str, job: str) -> Refusal:
    return Refusal(action, job, f"Job default/{job}", 403, "Forbidden", 'admission webhook "x" denied the request')


def writes_lost(sim: Sim, drive: Callable[[], object]) -> Sim:
    """A check is started; every status write after it is lost (409s) while ``drive`` plays on."""
    if sim.status.drift.job is None:
        sim.step()
    kept = copy.deepcopy(sim.status)
    drive()
    sim.status, sim.follow = kept, True
    return sim.step(1)


def lose_status(sim: Sim) -> Sim:
    sim.status = Status()
    return sim


def beat(sim: Sim) -> datetime:
    """When the heartbeat wakes the ModelDeployment next (lastReconcileTime + HEARTBEAT)."""
    return some(sim.status.last_reconcile_time) + HEARTBEAT


def check_during_rollout(sim: Sim) -> Sim:
    """The state the issue found: a check of the old model runs while a retrain rolls out.

    Today's core never gets here (no check starts during a retrain, no retrain during a check);
    a status written by an older operator, or a check started just before a retrain, can.
    """
    sim.to_rolling_out()
    d = sim.status.drift
    d.sequence += 1
    d.job, d.started_at = f"cats-drift-{d.sequence}", sim.now
    d.job_model = ModelRef(sim.model.version, sim.model.image)
    sim.jobs[d.job] = JobObservation(d.job, JobKind.DRIFT, d.sequence, JobState.RUNNING, started_at=sim.now)
    return sim.rollout_completes()


def cooldown_ends_during_a_check(sim: Sim) -> Sim:
    """Drift suppressed by a 6h cooldown; the 6h check starts; the cooldown ends while it runs."""
    sim.check(True).finish_runs(0.7, 0.7).check(True)  # retrain 1 rejected, then Cooldown
    started = some(sim.status.retrains.last_started)
    sim.step((started + timedelta(hours=6) - sim.now).total_seconds() - 5)  # a check starts
    assert sim.status.drift.job is not None, "no check running"
    return sim.step(10)  # the cooldown is over, the check still runs


TABLE: dict[str, tuple[Callable[[], Sim], Row]] = {
    # ------------------------------------------------------------------ Pending
    "pending: a new ModelDeployment starts its first check": (
        Sim,
        Row(
            lambda s: s.step(),
            Phase.PENDING,
            ["CreateDriftJob"],
            check=lambda s: (s.condition("Ready") == ("False", "FirstCheckPending"), s.model.version == "0.1"),
        ),
    ),
    "pending: the first check is still running": (
        Sim,
        Row(lambda s: s.step().step(30), Phase.PENDING, []),
    ),
    "pending: the first check's result is malformed": (
        Sim,
        Row(
            lambda s: s.step().finish(
                "cats-drift-1", ok=False, reason="MalformedResult", message="result field drift/share"
            ),
            Phase.PENDING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: (
                s.condition("Ready") == ("False", "MalformedResult"),
                ("drift_checks", "failed") in s.counts(),
            ),
        ),
    ),
    "pending: ok without a drift section is a failed check, not NoDrift": (
        Sim,
        Row(
            lambda s: s.step().finish_message("cats-drift-1", doc("drift")),
            Phase.PENDING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: (
                "NoDrift" not in s.all_events(),
                s.status.drift.detected is None,
                some(s.status.drift.last_error).reason == "MalformedResult",
                some(s.status.drift.last_error).message == "result field drift: required when ok is true",
                s.condition("Ready") == ("False", "MalformedResult"),
            ),
        ),
    ),
    "pending: the core refuses an ok drift outcome without a section": (
        Sim,
        Row(
            lambda s: s.step().finish_outcome("cats-drift-1", StepOutcome(True)),
            Phase.PENDING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: (s.status.drift.detected is None, "result field drift:" in s.event("DriftCheckFailed")),
        ),
    ),
    "pending: the drift Job disappeared": (
        Sim,
        Row(
            lambda s: s.step().lose_jobs().step(1),
            Phase.PENDING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: some(s.status.drift.last_error).reason == "JobNotFound",
        ),
    ),
    # ------------------------------------------------------------------ Monitoring
    "monitoring: no drift": (
        Sim,
        Row(
            lambda s: s.check(False, 0.05),
            Phase.MONITORING,
            [],
            ["NoDrift"],
            check=lambda s: (
                s.last.requeue_at == min(some(s.status.drift.next_check_time), beat(s)),
                s.status.drift.summary == "0.05/0.30",
                s.condition("Drifted") == ("False", "NoDrift"),
                s.condition("Ready") == ("True", "Monitoring"),
            ),
        ),
    ),
    "monitoring: the next check starts when the interval has passed": (
        Sim,
        Row(
            lambda s: s.check(False).step(3600),
            Phase.MONITORING,
            ["CreateDriftJob"],
            check=lambda s: s.status.drift.job == "cats-drift-2",
        ),
    ),
    "monitoring: a serving Deployment not opted in is reported before any retrain": (
        Sim,
        Row(
            lambda s: s.serving_for(None).check(False),
            Phase.MONITORING,
            [],
            check=lambda s: s.condition("Ready") == ("False", "ServingNotOptedIn"),
        ),
    ),
    "monitoring: adding the opt-in label clears it": (
        Sim,
        Row(
            lambda s: s.serving_for(None).check(False).serving_for("cats").step(1),
            Phase.MONITORING,
            [],
            check=lambda s: s.condition("Ready") == ("True", "Monitoring"),
        ),
    ),
    "monitoring: not before the interval": (
        Sim,
        Row(lambda s: s.check(False).step(600), Phase.MONITORING, []),
    ),
    "monitoring: a cron schedule sets the next check": (
        sim_with(drift={"schedule": "0 */6 * * *", "interval": None}),
        Row(
            lambda s: s.check(False),
            Phase.MONITORING,
            [],
            check=lambda s: some(s.status.drift.next_check_time).hour == 18,
        ),
    ),
    "monitoring: a failed check after a good one keeps the phase, Ready turns False": (
        Sim,
        Row(
            lambda s: s.check(False).step(3600).finish("cats-drift-2", ok=False, reason="MissingResult", message="x"),
            Phase.MONITORING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: s.condition("Ready") == ("False", "MissingResult"),
        ),
    ),
    "monitoring: the serving image changed outside the operator": (
        Sim,
        Row(
            lambda s: s.check(False).serving_image("r/c:hotfix").step(1),
            Phase.MONITORING,
            [],
            ["ServingImageChanged"],
            check=lambda s: (
                s.model.version == "hotfix",
                s.status.history[0].reason == "ChangedOutsideOperator",
            ),
        ),
    ),
    "monitoring: finished Jobs of old checks are pruned": (
        Sim,
        Row(
            lambda s: [s.check(False) for _ in range(3)] and s.step(3600),
            Phase.MONITORING,
            ["CreateDriftJob", "DeleteJob"],
            check=lambda s: s.actions(act.DeleteJob)[0].name == "cats-drift-1",
        ),
    ),
    # ------------------------------------------------------------------ DriftDetected
    "drift detected: consecutive not reached suppresses": (
        sim_with(drift={"consecutive": 2}),
        Row(
            lambda s: s.check(True),
            Phase.DRIFT_DETECTED,
            [],
            ["DriftDetected", "RetrainSuppressed"],
            check=lambda s: s.condition("Suppressed") == ("True", "ConsecutiveNotReached"),
        ),
    ),
    "drift detected: consecutive reached starts training": (
        sim_with(drift={"consecutive": 2}),
        Row(
            lambda s: s.check(True).check(True),
            Phase.TRAINING,
            ["CreateTrainJob", "CreateTrainJob"],
            ["TrainingStarted"],
        ),
    ),
    "drift detected: a check without drift resets the count": (
        sim_with(drift={"consecutive": 2}),
        Row(
            lambda s: s.check(True).check(False).check(True),
            Phase.DRIFT_DETECTED,
            [],
            check=lambda s: s.status.drift.consecutive == 1,
        ),
    ),
    "drift detected: cooldown suppresses and wakes at its end": (
        sim_with(policy={"cooldown": "6h"}, drift={"interval": "4h"}),
        Row(
            lambda s: s.check(True).finish_runs(0.7, 0.7).check(True),
            Phase.DRIFT_DETECTED,
            [],
            ["RetrainSuppressed"],
            check=lambda s: (
                s.condition("Suppressed") == ("True", "Cooldown"),
                s.last.requeue_at == min(some(s.status.retrains.last_started) + timedelta(hours=6), beat(s)),
            ),
        ),
    ),
    "drift detected: the retrain starts when the cooldown ends": (
        sim_with(policy={"cooldown": "6h"}),
        Row(
            lambda s: s.check(True).finish_runs(0.7, 0.7).check(True).step(6 * 3600),
            Phase.TRAINING,
            ["CreateTrainJob", "CreateTrainJob"],
            ["TrainingStarted"],
        ),
    ),
    "drift detected: maxRetrainsPerDay suppresses": (
        sim_with(policy={"maxRetrainsPerDay": 1}),
        Row(
            lambda s: s.check(True).finish_runs(0.7, 0.7).step(3600).check(True),
            Phase.DRIFT_DETECTED,
            [],
            ["RetrainSuppressed"],
            check=lambda s: s.condition("Suppressed") == ("True", "MaxRetrainsPerDay"),
        ),
    ),
    "drift detected: maxRetrainsPerDay 0 only reports": (
        sim_with(policy={"maxRetrainsPerDay": 0}),
        Row(
            lambda s: s.check(True),
            Phase.DRIFT_DETECTED,
            [],
            check=lambda s: s.condition("Suppressed") == ("True", "RetrainingDisabled"),
        ),
    ),
    # ------------------------------------------------------------------ Training
    "training: maxParallel caps the Jobs started": (
        sim_with(training={"candidates": [{"train.lr": 0.1}, {"train.lr": 0.01}, {"train.lr": 0.001}]}),
        Row(
            lambda s: s.check(True),
            Phase.TRAINING,
            ["CreateTrainJob", "CreateTrainJob"],
            check=lambda s: (
                s.actions(act.CreateTrainJob)[0].overrides == {"train.num_classes": 3, "train.lr": 0.1},
                s.condition("Training")[0] == "True",
                s.retrain.candidates[2].state is CandidateState.PENDING,
            ),
        ),
    ),
    "training: a finished candidate frees a slot": (
        sim_with(training={"candidates": [{"train.lr": 0.1}, {"train.lr": 0.01}, {"train.lr": 0.001}]}),
        Row(
            lambda s: s.check(True).finish_runs(0.9),
            Phase.TRAINING,
            ["CreateTrainJob"],
            ["CandidateTrained"],
            check=lambda s: s.actions(act.CreateTrainJob)[0].index == 2,
        ),
    ),
    "training: running Jobs are not created again": (
        Sim,
        Row(lambda s: s.check(True).step(60), Phase.TRAINING, []),
    ),
    "training: one candidate fails, the others carry on": (
        Sim,
        Row(lambda s: s.check(True).finish_runs(None), Phase.TRAINING, [], ["CandidateFailed"]),
    ),
    "training: the best of the succeeded candidates is accepted": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(None, 0.9),
            Phase.PACKAGING,
            ["CreatePackageJob"],
            ["CandidateAccepted", "PackagingStarted"],
            check=lambda s: (
                s.retrain.best == 1,
                s.actions(act.CreatePackageJob)[0].image == "registry.example/cats-dogs:v1-rev10000",
            ),
        ),
    ),
    "training: every candidate failed": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(None, None),
            Phase.FAILED,
            [],
            ["TrainingFailed"],
            check=lambda s: (
                s.retrain.outcome is Outcome.TRAINING_FAILED,
                s.condition("Ready") == ("False", "TrainingError"),
                ("retrains", "failed") in s.counts(),
            ),
        ),
    ),
    "training: a malformed train result fails that candidate": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: s.check(True).finish("cats-train-1-0", ok=False, reason="MalformedResult", message="bad"),
            Phase.FAILED,
            [],
            ["CandidateFailed", "TrainingFailed"],
            check=lambda s: s.retrain.candidates[0].reason == "MalformedResult",
        ),
    ),
    "training: an ok outcome without a train section fails that candidate": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: s.check(True).finish_outcome("cats-train-1-0", StepOutcome(True)),
            Phase.FAILED,
            [],
            ["CandidateFailed", "TrainingFailed"],
            check=lambda s: (
                (s.retrain.candidates[0].reason, s.retrain.candidates[0].message)
                == ("MalformedResult", "result field train: required when ok is true")
            ),
        ),
    ),
    "training: a result without a model fails that candidate": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: s.check(True).finish("cats-train-1-0", {"metrics": {"val_acc": 0.9}}),
            Phase.FAILED,
            [],
            check=lambda s: s.retrain.candidates[0].reason == "MissingModel",
        ),
    ),
    "training: no candidate reports the promotion metric": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(None).finish("cats-train-1-1", {"metrics": {"loss": 1}, "model": "m"}),
            Phase.FAILED,
            [],
            ["TrainingFailed"],
            check=lambda s: s.retrain.reason == "MetricMissing",
        ),
    ),
    "training: the best candidate is worse than the serving model": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(0.7, 0.75, baseline=0.8),
            Phase.MONITORING,
            [],
            ["CandidateRejected"],
            check=lambda s: (
                some(s.retrain.gate).reason == "NotBetterThanServing",
                s.model.image == IMAGE0,
                ("retrains", "rejected") in s.counts(),
                s.condition("Training") == ("False", "CandidateRejected"),
            ),
        ),
    ),
    "training: below minValue is rejected": (
        sim_with(promotion={"minValue": 0.95}),
        Row(
            lambda s: s.check(True).finish_runs(0.9, 0.85),
            Phase.MONITORING,
            [],
            ["CandidateRejected"],
            check=lambda s: some(s.retrain.gate).reason == "BelowMinValue",
        ),
    ),
    "training: a best candidate at chance is rejected even with minValue 0": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: s.check(True).finish(
                "cats-train-1-0",
                {**train_result(0.3333), "metrics": {"val_acc": 0.3333, "val_acc_bees": 1.0, "val_acc_cats": 0.0,
                                                     "val_acc_dogs": 0.0, "learned": 0}},
            ),
            Phase.MONITORING,
            [],
            ["CandidateRejected"],
            check=lambda s: (
                some(s.retrain.gate).reason == "DidNotLearn",
                "never right on class cats, dogs" in some(s.retrain.gate).message,
                s.model.image == IMAGE0,
                s.condition("Training") == ("False", "CandidateRejected"),
            ),
        ),
    ),
    "training: no drift check runs while a retrain is in flight": (
        Sim,
        Row(lambda s: s.check(True).step(7200), Phase.TRAINING, []),
    ),
    # ------------------------------------------------------------------ one loop at a time
    "one loop: a check records the model it measures": (
        Sim,
        Row(
            lambda s: s.step(),
            Phase.PENDING,
            ["CreateDriftJob"],
            check=lambda s: s.status.drift.job_model == ModelRef("0.1", IMAGE0),
        ),
    ),
    "one loop: a verdict records the model it was measured against": (
        Sim,
        Row(
            lambda s: s.check(False),
            Phase.MONITORING,
            [],
            check=lambda s: (s.status.drift.model == ModelRef("0.1", IMAGE0), s.status.drift.job_model is None),
        ),
    ),
    "one loop: no retrain starts while a check runs, even when the cooldown ends": (
        sim_with(policy={"cooldown": "6h"}),
        Row(
            cooldown_ends_during_a_check,
            Phase.DRIFT_DETECTED,
            [],
            ["RetrainSuppressed"],
            check=lambda s: s.condition("Suppressed") == ("True", "CheckInFlight"),
        ),
    ),
    "one loop: the verdict of that check decides": (
        sim_with(policy={"cooldown": "6h"}),
        Row(
            lambda s: cooldown_ends_during_a_check(s).finish(some(s.status.drift.job), drift_result(True)),
            Phase.TRAINING,
            ["CreateTrainJob", "CreateTrainJob"],
            ["TrainingStarted"],
            check=lambda s: s.retrain.trigger_check == s.status.drift.verdict_check,
        ),
    ),
    "one loop: a verdict measured against a model that no longer serves is discarded": (
        Sim,
        Row(
            lambda s: check_during_rollout(s).finish(some(s.status.drift.job), drift_result(True, 0.9)),
            Phase.MONITORING,
            [],
            ["VerdictDiscarded"],
            check=lambda s: (
                s.status.retrains.last_sequence == 1,
                some(s.status.drift.discarded).reason == "StaleVerdict",
                s.condition("Drifted") == ("Unknown", "StaleVerdict"),
                s.status.drift.share != 0.9,
            ),
        ),
    ),
    "one loop: the next verdict of the serving model clears the discarded one": (
        Sim,
        Row(
            lambda s: check_during_rollout(s).finish(some(s.status.drift.job), drift_result(True)).check(False),
            Phase.MONITORING,
            [],
            check=lambda s: (
                s.status.drift.discarded is None,
                s.status.drift.model == ModelRef(s.model.version, s.model.image),
                s.condition("Drifted") == ("False", "NoDrift"),
            ),
        ),
    ),
    "one loop: the serving image changed outside while a check ran": (
        Sim,
        Row(
            lambda s: s.check(False).step(3600).serving_image("r/c:hotfix").finish("cats-drift-2", drift_result(True)),
            Phase.MONITORING,
            [],
            ["ServingImageChanged", "VerdictDiscarded"],
            check=lambda s: s.status.retrain is None,
        ),
    ),
    "one loop: a waiting verdict about a replaced model does not start a retrain": (
        sim_with(policy={"cooldown": "6h"}),
        Row(
            lambda s: s.check(True).finish_runs(0.7, 0.7).check(True).serving_image("r/c:hotfix").step(6 * 3600),
            Phase.DRIFT_DETECTED,
            ["CreateDriftJob"],
            ["RetrainSuppressed"],
            check=lambda s: (
                s.condition("Suppressed") == ("True", "StaleVerdict"),
                s.status.retrains.last_sequence == 1,
            ),
        ),
    ),
    # ------------------------------------------------------------------ stuck steps
    "stuck: an unschedulable training pod turns StepProgressing and Ready False at once": (
        Sim,
        Row(
            lambda s: s.check(True).stuck("cats-train-1-0", "Unschedulable", "0/2 nodes: Insufficient gpu").step(1),
            Phase.TRAINING,
            [],
            ["StepStuck"],
            check=lambda s: (
                s.condition("StepProgressing") == ("False", "Unschedulable"),
                s.condition("Ready") == ("False", "Unschedulable"),
                "spec.training.resources" in some(s.status.condition("StepProgressing")).message,
            ),
        ),
    ),
    "stuck: the Event is emitted once": (
        Sim,
        Row(
            lambda s: s.check(True).stuck("cats-train-1-0", "Unschedulable").step(1).step(30),
            Phase.TRAINING,
            [],
            check=lambda s: "StepStuck" not in s.events() and s.all_events().count("StepStuck") == 1,
        ),
    ),
    "stuck: a drift pod that cannot pull its image": (
        Sim,
        Row(
            lambda s: s.step().stuck("cats-drift-1", "ImagePullBackOff", "Back-off pulling image").step(1),
            Phase.PENDING,
            [],
            ["StepStuck"],
            check=lambda s: (
                s.condition("Ready") == ("False", "ImagePullBackOff"),
                "spec.training.image" in some(s.status.condition("Ready")).message,
            ),
        ),
    ),
    "stuck: a missing Secret names credentialsSecret": (
        Sim,
        Row(
            lambda s: s.check(True).stuck("cats-train-1-1", "CreateContainerConfigError", 'secret "git-creds"').step(1),
            Phase.TRAINING,
            [],
            ["StepStuck"],
            check=lambda s: "credentialsSecret" in some(s.status.condition("StepProgressing")).message,
        ),
    ),
    "stuck: the pod starts, StepProgressing and Ready recover": (
        Sim,
        Row(
            lambda s: s.check(True).stuck("cats-train-1-0", "Unschedulable").step(1).stuck("cats-train-1-0", "").step(),
            Phase.TRAINING,
            [],
            check=lambda s: (
                s.condition("StepProgressing") == ("True", "StepsRunning"),
                s.condition("Ready") == ("True", "Training"),
            ),
        ),
    ),
    "stuck: nothing running": (
        Sim,
        Row(
            lambda s: s.check(False),
            Phase.MONITORING,
            [],
            check=lambda s: s.condition("StepProgressing") == ("True", "NoStepRunning"),
        ),
    ),
    # ------------------------------------------------------------------ setup problems and requests
    "setup: no serving Deployment, no drift Job": (
        Sim,
        Row(
            lambda s: s.serving_gone().step(),
            Phase.PENDING,
            [],
            ["ServingDeploymentNotFound"],
            check=lambda s: (
                s.condition("Ready") == ("False", "ServingDeploymentNotFound"),
                "spec.serving.deployment" in some(s.status.condition("Ready")).message,
            ),
        ),
    ),
    "setup: a wrong container name lists the containers there are": (
        Sim,
        Row(
            lambda s: s.serving_containers("app", "db").step(),
            Phase.PENDING,
            [],
            ["ContainerNotFound"],
            check=lambda s: "its containers: app, db" in some(s.status.condition("Ready")).message,
        ),
    ),
    "setup: the Deployment deleted mid-loop stops checks and retrains": (
        Sim,
        Row(
            lambda s: s.check(False).step(3600).serving_gone().finish("cats-drift-2", drift_result(True)).step(3600),
            Phase.DRIFT_DETECTED,
            [],
            check=lambda s: s.condition("Suppressed") == ("True", "ServingDeploymentNotFound"),
        ),
    ),
    "setup: fixed, the loop resumes and Ready follows at once": (
        Sim,
        Row(
            lambda s: s.check(False).serving_gone().step(3600).serving_back().step(1),
            Phase.MONITORING,
            ["CreateDriftJob"],
            ["ServingFound"],
            check=lambda s: s.condition("Ready") == ("True", "Monitoring"),
        ),
    ),
    "setup: a second ModelDeployment on the same Deployment is a warning": (
        Sim,
        Row(
            lambda s: s.shared_with("cats-b").step(),
            Phase.PENDING,
            ["CreateDriftJob"],
            ["SharedServingDeployment"],
            check=lambda s: (
                s.condition("DeploymentShared") == ("True", "SharedServingDeployment"),
                "cats-b" in some(s.status.condition("DeploymentShared")).message,
            ),
        ),
    ),
    "setup: alone again, the warning clears": (
        Sim,
        Row(
            lambda s: s.shared_with("cats-b").step().shared_with().step(1),
            Phase.PENDING,
            [],
            check=lambda s: s.condition("DeploymentShared") == ("False", "Exclusive"),
        ),
    ),
    "request: a new check-now value starts a check before the interval": (
        Sim,
        Row(
            lambda s: s.check(False).step(60).annotate_check_now("1").step(1),
            Phase.MONITORING,
            ["CreateDriftJob"],
            ["CheckRequested"],
            check=lambda s: s.status.drift.check_requested == "1",
        ),
    ),
    "request: the same value again starts nothing": (
        Sim,
        Row(lambda s: s.check(False).annotate_check_now("1").step(60).check(False).step(60), Phase.MONITORING, []),
    ),
    "request: a check-now during a retrain waits for it": (
        Sim,
        Row(
            lambda s: s.check(True).annotate_check_now("x").step(60),
            Phase.TRAINING,
            [],
            check=lambda s: s.status.drift.check_requested is None,
        ),
    ),
    "drift column: a failing check replaces the last verdict": (
        Sim,
        Row(
            lambda s: (
                s.check(True)
                .finish_runs(0.7, 0.7)
                .check(False)
                .step(3600)
                .finish("cats-drift-3", ok=False, reason="MalformedResult", message="x")
            ),
            Phase.MONITORING,
            [],
            check=lambda s: s.status.drift.summary == "failing: MalformedResult",
        ),
    ),
    # ------------------------------------------------------------------ heartbeat and columns
    "heartbeat: lastReconcileTime stays while nothing changes": (
        Sim,
        Row(
            lambda s: s.check(False).step(60),
            Phase.MONITORING,
            [],
            check=lambda s: s.status.last_reconcile_time == s.history[-2].status.last_reconcile_time,
        ),
    ),
    "heartbeat: it moves after HEARTBEAT even when nothing changes": (
        Sim,
        Row(
            lambda s: s.check(False).step(HEARTBEAT.total_seconds()),
            Phase.MONITORING,
            [],
            check=lambda s: (s.status.last_reconcile_time == s.now, s.last.requeue_at == s.now + HEARTBEAT),
        ),
    ),
    "columns: the STEP column names the running step": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(0.9),
            Phase.TRAINING,
            [],
            check=lambda s: s.status.step == "train 1/2",
        ),
    ),
    "columns: lastError keeps the last reason Ready turned False": (
        Sim,
        Row(
            lambda s: s.step().finish("cats-drift-1", ok=False, reason="MissingResult", message="x").check(False),
            Phase.MONITORING,
            [],
            check=lambda s: (some(s.status.last_error).reason == "MissingResult", s.status.step is None),
        ),
    ),
    # ------------------------------------------------------------------ Packaging
    "packaging: the package Job fails": (
        Sim,
        Row(
            lambda s: s.to_packaging().finish("cats-package-1", ok=False, reason="PushFailed", message="denied"),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: s.condition("Ready") == ("False", "PushFailed"),
        ),
    ),
    "packaging: the result records the rollout's intent first, no patch yet": (
        Sim,
        Row(
            lambda s: s.to_intent(),
            Phase.ROLLING_OUT,
            [],
            ["Packaged"],
            check=lambda s: (
                s.retrain.previous_image == IMAGE0,
                s.retrain.target_image == f"registry.example/cats-dogs:v1-rev00000@{DIGEST}",
                s.retrain.rollout_started_at is None,
                s.last.requeue_at == s.now,
            ),
        ),
    ),
    "rolling out: the recorded intent is patched, by digest": (
        Sim,
        Row(
            lambda s: s.to_intent().step(),
            Phase.ROLLING_OUT,
            ["PatchImage"],
            ["RolloutStarted"],
            check=lambda s: (
                s.actions(act.PatchImage)[0].image == f"registry.example/cats-dogs:v1-rev00000@{DIGEST}",
                s.retrain.previous_image == IMAGE0,
                s.condition("RolledOut") == ("Unknown", "RollingOut"),
            ),
        ),
    ),
    "rolling out: status lost after the patch: no ServingImageChanged, the rollout goes on": (
        Sim,
        Row(
            lambda s: s.to_intent().patch_lost().step(),
            Phase.ROLLING_OUT,
            [],
            [],  # RolloutStarted, then judged at once (not rolled out yet: wait for its events)
            check=lambda s: (
                "RolloutStarted" in s.all_events(),
                s.last.requeue_at is not None and s.last.requeue_at > s.now,
                "ServingImageChanged" not in s.all_events(),
                s.model.image == IMAGE0,
                s.retrain.previous_image == IMAGE0,
                s.retrain.rollout_started_at is not None,
            ),
        ),
    ),
    "rolling out: status lost after the patch, the Deployment rolled out meanwhile: judged at once": (
        Sim,
        Row(
            # a failover or restart after the rollout finished: no Deployment event will come again
            lambda s: (s.to_intent().patch_lost(), s.rollout_completes()),
            Phase.MONITORING,
            [],
            ["RolledOut"],
            check=lambda s: (
                "RolloutStarted" in s.all_events(),
                "ServingImageChanged" not in s.all_events(),
                s.model.image == f"registry.example/cats-dogs:v1-rev00000@{DIGEST}",
            ),
        ),
    ),
    "rolling out: status lost after the patch, then a stall: the recorded previous image is restored": (
        Sim,
        Row(
            lambda s: s.to_intent().patch_lost().step().rollout_stalls(),
            Phase.DEGRADED,
            ["PatchImage"],
            ["RolledBack"],
            check=lambda s: (
                s.actions(act.PatchImage)[0] == act.PatchImage(IMAGE0, rollback=True),
                s.deployment.image == IMAGE0,
                "ServingImageChanged" not in s.all_events(),
            ),
        ),
    ),
    "rolling out: a stall records the rollback first, no patch yet": (
        Sim,
        Row(
            lambda s: (s.to_rolling_out(), s.stop_after_intent(), s.rollout_stalls()),
            Phase.ROLLING_OUT,
            [],
            [],
            check=lambda s: (
                some(s.retrain.rollback).reason == "ProgressDeadlineExceeded",
                s.last.requeue_at == s.now,
            ),
        ),
    ),
    "rolling out: status lost after the rollback patch: still RolledBack, nothing patched again": (
        Sim,
        Row(
            lambda s: (s.to_rolling_out(), s.stop_after_intent(), s.rollout_stalls(), s.patch_lost(), s.step()),
            Phase.DEGRADED,
            [],
            ["RolledBack"],
            check=lambda s: (
                s.deployment.image == IMAGE0,
                s.retrain.outcome is Outcome.ROLLED_BACK,
                "ServingImageChanged" not in s.all_events(),
            ),
        ),
    ),
    "rolling out: the API refuses the patch for good (422): the rollout fails with its message": (
        Sim,
        Row(
            lambda s: s.to_intent().step().refuse(INVALID_IMAGE),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: (
                s.retrain.reason == "PatchRefused",
                "spec.template.spec.containers[0].image" in some(s.retrain.message),
                s.condition("RolledOut") == ("False", "RolloutFailed"),
                s.condition("Ready")[0] == "False",
                s.deployment.image == IMAGE0,
            ),
        ),
    ),
    "rolling out: the API refuses the rollback patch: RolloutFailed RollbackRefused": (
        Sim,
        Row(
            lambda s: (
                s.to_rolling_out(),
                s.stop_after_intent(),
                s.rollout_stalls().step().refuse(replace(INVALID_IMAGE, target=IMAGE0)),
            ),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: s.retrain.reason == "RollbackRefused",
        ),
    ),
    "packaging: the API refuses the package Job (403): PackagingFailed names the object": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(0.9, 0.85).refuse(job_refused("CreatePackageJob", "cats-package-1")),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (
                s.retrain.reason == "JobRefused",
                "Job default/" in some(s.retrain.message),
                s.condition("Ready") == ("False", "JobRefused"),
            ),
        ),
    ),
    "training: the API refuses a training Job: that candidate fails, the other goes on": (
        Sim,
        Row(
            lambda s: s.check(True).refuse(job_refused("CreateTrainJob", "cats-train-1-0")),
            Phase.TRAINING,
            ["CreateTrainJob"],
            ["CandidateFailed"],
            check=lambda s: (
                s.retrain.candidates[0].state is CandidateState.FAILED,
                s.retrain.candidates[0].reason == "JobRefused",
                s.retrain.candidates[1].state is CandidateState.RUNNING,
            ),
        ),
    ),
    "monitoring: the API refuses the drift Job: the check fails, Ready says why": (
        Sim,
        Row(
            lambda s: s.step().refuse(job_refused("CreateDriftJob", "cats-drift-1")),
            Phase.PENDING,
            [],
            ["DriftCheckFailed"],
            check=lambda s: (
                s.status.drift.job is None,
                s.condition("Ready") == ("False", "JobRefused"),
                s.last.requeue_at is not None and s.last.requeue_at > s.now,
            ),
        ),
    ),
    "any phase: every condition carries the current generation, RolledOut too": (
        Sim,
        Row(
            lambda s: (
                s.to_rolling_out().rollout_completes().check(True).finish_runs(0.1, 0.1),
                edited(s),
                s.step(1),
            ),
            Phase.MONITORING,
            [],
            check=lambda s: (
                s.retrain.outcome is Outcome.REJECTED,
                s.condition("RolledOut") == ("True", "RolledOut"),
                all(c.observed_generation == s.generation for c in s.status.conditions),
            ),
        ),
    ),
    "any phase: a refusal of an action no longer asked for changes nothing": (
        Sim,
        Row(
            lambda s: s.check(False).refuse(job_refused("CreatePackageJob", "cats-package-9")),
            Phase.MONITORING,
            [],
            check=lambda s: (s.condition("Ready")[0] == "True", "PackagingFailed" not in s.events()),
        ),
    ),
    "packaging: ok without a package section fails with MalformedResult, the image is left alone": (
        Sim,
        Row(
            lambda s: s.to_packaging().finish_message("cats-package-1", doc("package")),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (
                s.retrain.reason == "MalformedResult",
                s.retrain.message == "result field package: required when ok is true",
                s.deployment.image == IMAGE0,
                "result field package:" in s.event("PackagingFailed"),
                s.condition("Ready") == ("False", "MalformedResult"),
            ),
        ),
    ),
    "packaging: the core refuses an ok outcome without a package section": (
        Sim,
        Row(
            lambda s: s.to_packaging().finish_outcome("cats-package-1", StepOutcome(True)),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (
                s.retrain.reason == "MalformedResult",
                "result field package:" in some(s.retrain.message),
            ),
        ),
    ),
    "packaging: an image without a digest is refused by the contract": (
        Sim,
        Row(
            lambda s: s.to_packaging().finish_message(
                "cats-package-1", doc("package", {"image": "registry.example/cats-dogs:v1-rev00000", "digest": DIGEST})
            ),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (
                s.retrain.reason == "MalformedResult",
                some(s.retrain.message).startswith("result field package.image:"),
                s.deployment.image == IMAGE0,
            ),
        ),
    ),
    "packaging: an image of another repository is not rolled out": (
        Sim,
        Row(
            lambda s: s.to_packaging().package(f"evil.example/x:1@{DIGEST}"),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (
                s.retrain.reason == "MalformedResult",
                some(s.retrain.message).startswith("result field package.image: got 'evil.example/x:1@"),
                "registry.example/cats-dogs:v1-rev00000@sha256:<64 hex>" in some(s.retrain.message),
                s.deployment.image == IMAGE0,
            ),
        ),
    ),
    "packaging: a tag other than the version built is not rolled out": (
        Sim,
        Row(
            lambda s: s.to_packaging().package(f"registry.example/cats-dogs:latest@{DIGEST}"),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (s.retrain.reason == "MalformedResult", s.deployment.image == IMAGE0),
        ),
    ),
    "packaging: a digest that is not the image's is not rolled out": (
        Sim,
        Row(
            lambda s: s.to_packaging().finish_outcome(
                "cats-package-1",
                StepOutcome(True, result=PackageResult(f"registry.example/cats-dogs:v1-rev00000@{DIGEST}", OTHER)),
            ),
            Phase.FAILED,
            [],
            ["PackagingFailed"],
            check=lambda s: (s.retrain.reason == "MalformedResult", s.deployment.image == IMAGE0),
        ),
    ),
    # ------------------------------------------------------------------ RollingOut
    "rolling out: waiting wakes at the progress deadline": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().step(10),
            Phase.ROLLING_OUT,
            [],
            check=lambda s: (
                s.last.requeue_at == min(some(s.retrain.rollout_started_at) + timedelta(seconds=600), beat(s))
            ),
        ),
    ),
    "rolling out: the new ReplicaSet is ready": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().rollout_completes(),
            Phase.MONITORING,
            [],
            ["RolledOut"],
            check=lambda s: (
                s.model.version == "v1-rev00000",
                s.model.uri == "s3://m/rev0000000.pt",
                s.status.history[0].image == IMAGE0,
                s.condition("RolledOut") == ("True", "RolledOut"),
                ("rollouts", "succeeded") in s.counts(),
                ("retrains", "succeeded") in s.counts(),
                s.status.drift.job is None,
            ),
        ),
    ),
    "rolling out: ProgressDeadlineExceeded rolls back": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().rollout_stalls(),
            Phase.DEGRADED,
            ["PatchImage"],
            ["RolloutFailed", "RolledBack"],
            check=lambda s: (
                s.actions(act.PatchImage)[0] == act.PatchImage(IMAGE0, rollback=True),
                s.model.image == IMAGE0,
                ("rollbacks", None) in s.counts(),
                s.condition("RolledOut") == ("False", "RolledBack"),
            ),
        ),
    ),
    "rolling out: the operator's deadline passes without the condition": (
        Sim,
        Row(lambda s: s.to_rolling_out().step(601), Phase.DEGRADED, ["PatchImage"], ["RolledBack"]),
    ),
    "rolling out: without autoRollback the failure is only reported": (
        sim_with(rollout={"autoRollback": False}),
        Row(
            lambda s: s.to_rolling_out().rollout_stalls(),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: s.retrain.outcome is Outcome.ROLLOUT_FAILED,
        ),
    ),
    "rolling out: a missing serving Deployment holds the rollout, not fails it": (
        Sim,
        Row(
            lambda s: s.to_packaging().serving_gone().package(),
            Phase.ROLLING_OUT,
            [],
            ["ServingDeploymentNotFound"],
            check=lambda s: (
                s.retrain.outcome is None,
                s.condition("Ready") == ("False", "ServingDeploymentNotFound"),
                s.condition("ServingFound") == ("False", "ServingDeploymentNotFound"),
            ),
        ),
    ),
    "rolling out: the held rollout starts when the Deployment appears": (
        Sim,
        Row(
            lambda s: s.to_packaging().serving_gone().package().step(3600).serving_back().step(1),
            Phase.ROLLING_OUT,
            ["PatchImage"],
            ["RolloutStarted"],
            check=lambda s: (s.retrain.previous_image == IMAGE0, "ServingFound" in s.all_events()),
        ),
    ),
    "rolling out: a Deployment without the opt-in label is never patched": (
        Sim,
        Row(
            lambda s: s.to_packaging().serving_for(None).package(),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: (
                s.retrain.reason == "ServingNotOptedIn",
                "add the label modelfreshness.io/serving-for=cats" in some(s.retrain.message),
                s.deployment.image == IMAGE0,
                s.condition("Ready") == ("False", "ServingNotOptedIn"),
                s.condition("RolledOut") == ("False", "RolloutFailed"),
                not any(isinstance(a, act.PatchImage) for d in s.history for a in d.actions),
            ),
        ),
    ),
    "rolling out: a label naming another ModelDeployment is no opt-in": (
        Sim,
        Row(
            lambda s: s.to_packaging().serving_for("dogs").package(),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: (s.retrain.reason == "ServingNotOptedIn", "'dogs'" in some(s.retrain.message)),
        ),
    ),
    "rolling out: the opt-in removed during a stalled rollout: no rollback patch": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().serving_for(None).rollout_stalls(),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: (s.retrain.reason == "ServingNotOptedIn", ("rollbacks", None) not in s.counts()),
        ),
    ),
    "rolling out: a long ModelDeployment name opts in with its hashed label value": (
        lambda: Sim(name="c" * 70, deployment=healthy(serving_for=names.label_value("c" * 70))),
        Row(
            lambda s: s.to_rolling_out().rollout_completes(),
            Phase.MONITORING,
            [],
            ["RolledOut"],
        ),
    ),
    "rolling out: a recorded target image of another form is never patched": (
        Sim,
        Row(
            lambda s: (s.to_packaging(), paused(s), s.package(), tamper_target(s), unpaused(s), s.step(1)),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: (
                s.retrain.reason == "MalformedResult",
                some(s.retrain.message).startswith("candidate.targetImage: got 'evil.example/x:1@"),
                s.deployment.image == IMAGE0,
            ),
        ),
    ),
    "rolling out: someone else changed the image meanwhile": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().serving_image("x:y").step(1),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: s.retrain.reason == "ImageChanged",
        ),
    ),
    # ------------------------------------------------------------------ Degraded and Failed
    "degraded: a drifted check keeps Degraded": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().rollout_stalls().step(3600).check(True),
            Phase.TRAINING,
            ["CreateTrainJob", "CreateTrainJob"],
        ),
    ),
    "degraded: a drifted but suppressed check keeps Degraded": (
        sim_with(policy={"cooldown": "24h"}),
        Row(
            lambda s: s.to_rolling_out().rollout_stalls().step(3600).check(True),
            Phase.DEGRADED,
            [],
            check=lambda s: s.condition("Suppressed") == ("True", "Cooldown"),
        ),
    ),
    "degraded: a check without drift returns to Monitoring": (
        Sim,
        Row(lambda s: s.to_rolling_out().rollout_stalls().step(3600).check(False), Phase.MONITORING, []),
    ),
    "failed: a check without drift returns to Monitoring": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(None, None).step(3600).check(False),
            Phase.MONITORING,
            [],
            check=lambda s: s.condition("Ready") == ("True", "Monitoring"),
        ),
    ),
    # ------------------------------------------------------------------ Paused
    "paused: nothing starts, status is kept": (
        Sim,
        Row(
            lambda s: paused(s).step(),
            Phase.PAUSED,
            [],
            check=lambda s: (s.condition("Ready") == ("False", "Paused"), s.status.model is not None),
        ),
    ),
    "paused: a running check is still recorded, no retrain starts": (
        Sim,
        Row(
            lambda s: (
                s.step(),
                paused(s),
                s.finish("cats-drift-1", {"detected": True, "share": 0.9, "score": 0.9, "method": "m", "samples": 50}),
            ),
            Phase.PAUSED,
            [],
            ["DriftDetected"],
            check=lambda s: (s.status.drift.detected, s.condition("Suppressed") == ("True", "Paused")),
        ),
    ),
    "paused: a finished candidate is recorded, the next is not started": (
        sim_with(training={"candidates": [{"a": 1}, {"a": 2}, {"a": 3}]}),
        Row(lambda s: (s.check(True), paused(s), s.finish_runs(0.9)), Phase.PAUSED, [], ["CandidateTrained"]),
    ),
    "paused: resuming continues where it stopped": (
        sim_with(training={"candidates": [{"a": 1}, {"a": 2}, {"a": 3}]}),
        Row(
            lambda s: (s.check(True), paused(s), s.finish_runs(0.9), unpaused(s), s.step(1)),
            Phase.TRAINING,
            ["CreateTrainJob"],
            ["Resumed"],
        ),
    ),
    "paused: a failed rollout is not rolled back until resumed": (
        Sim,
        Row(lambda s: (s.to_rolling_out(), paused(s), s.rollout_stalls()), Phase.PAUSED, []),
    ),
    "paused: the pause emits an Event once": (
        Sim,
        Row(lambda s: (s.check(False), paused(s), s.step(1)), Phase.PAUSED, [], ["Paused"]),
    ),
    # ------------------------------------------------------------------ restarts and lost state
    "restart: decide twice on the same world creates nothing new": (
        Sim,
        Row(lambda s: s.check(True).step(0), Phase.TRAINING, []),
    ),
    "restart: a lost status is rebuilt from the training Jobs": (
        sim_with(training={"candidates": [{"a": 1}, {"a": 2}, {"a": 3}]}),
        Row(
            lambda s: (s.check(True), lose_status(s), s.step(1)),
            Phase.TRAINING,
            [],
            ["StateRebuilt"],
            check=lambda s: (
                [r.state for r in s.retrain.candidates]
                == [CandidateState.RUNNING, CandidateState.RUNNING, CandidateState.PENDING],
                s.status.drift.job is None,
                len(s.of_kind(JobKind.TRAIN)) == 2,
            ),
        ),
    ),
    "restart: finished Jobs of an unknown retrain are not redone, and their names not reused": (
        sim_with(training={"candidates": [{}]}),
        Row(
            # the re-read verdict of the last check starts a new retrain, under a new number
            lambda s: (s.check(True), s.finish_runs(0.7), lose_status(s), s.step(1)),
            Phase.TRAINING,
            ["CreateTrainJob"],
            check=lambda s: s.actions(act.CreateTrainJob)[0].name == "cats-train-2-0",
        ),
    ),
    "restart: writes lost since the check (409s): its finished retrain is read again, not redone": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: writes_lost(s, lambda: s.check(True).finish_runs(0.7)),
            Phase.MONITORING,
            [],
            ["StateRebuilt", "CandidateRejected"],
            check=lambda s: (s.retrain.sequence == 1, s.of_kind(JobKind.TRAIN) == ["cats-train-1-0"]),
        ),
    ),
    "restart: writes lost since the check: a packaged retrain rolls out once, from a recorded intent": (
        Sim,
        Row(
            # the intent write is lost too, so nothing was patched: the intent is recorded again first
            lambda s: writes_lost(s, lambda: s.check(True).finish_runs(0.9, 0.85).stop_after_intent().package()),
            Phase.ROLLING_OUT,
            ["PatchImage"],
            ["RolloutStarted"],
            check=lambda s: (
                s.retrain.sequence == 1,
                s.retrain.previous_image == IMAGE0,
                "StateRebuilt" in s.all_events(),
                s.of_kind(JobKind.PACKAGE) == ["cats-package-1"],
            ),
        ),
    ),
    "restart: a rebuilt retrain completes": (
        Sim,
        Row(
            lambda s: (s.check(True), lose_status(s), s.step(1), s.finish_runs(0.9, 0.95)),
            Phase.PACKAGING,
            ["CreatePackageJob"],
        ),
    ),
}


@pytest.mark.parametrize("row_name", list(TABLE))
def test_transition(row_name: str) -> None:
    assert_row(*TABLE[row_name])


def test_every_phase_has_a_row() -> None:
    phases = {row.phase for _, row in TABLE.values()}
    assert phases == set(Phase)


def test_a_retry_past_the_bound_turns_ready_false_once() -> None:
    sim = Sim().check(False)
    error = "Deployment default/cats-dogs: 503 ServiceUnavailable: etcdserver: leader changed (attempt 5)"
    first = retrying(status=sim.status, error=error, now=sim.now, generation=2)
    again = retrying(status=first.status, error=error, now=sim.now, generation=2)
    ready = some(first.status.condition("Ready"))
    assert (ready.status, ready.reason, ready.message, ready.observed_generation) == ("False", "ApiRetrying", error, 2)
    assert [a.reason for a in first.actions if isinstance(a, act.Emit)] == ["ApiRetrying"]
    assert again.actions == ()
    assert first.status.retrain == sim.status.retrain and first.status.drift == sim.status.drift
    sim.status = first.status
    assert sim.step(1).condition("Ready") == ("True", "Monitoring")  # the next reconcile that works clears it

"""Transition table of the decision core: one row per phase and branch (STYLE.md rule 1).

Each row drives the fake world to a state, takes one more decision, and states the phase,
the side-effect actions of that last decision, the Events it emits and anything else that matters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest
from freshness_operator.core import actions as act
from freshness_operator.core.observed import Step
from freshness_operator.core.status import Outcome, Phase, RunState, Status

from tests.operator.sim import DIGEST, IMAGE0, Sim, make_spec, some, train_result

EFFECTS = (act.CreateDriftJob, act.CreateTrainJob, act.CreatePackageJob, act.PatchImage, act.DeleteJob)


@dataclass
class Row:
    drive: Callable[[Sim], object]
    phase: Phase
    effects: list[str] = field(default_factory=list)  # kinds of side-effect actions, in order
    events: list[str] = field(default_factory=list)  # reasons that must be among the last decision's
    check: Callable[[Sim], object] | None = None


def sim_with(**spec: object) -> Callable[[], Sim]:
    return lambda: Sim(spec=make_spec(**spec))


def paused(sim: Sim) -> Sim:
    sim.spec = replace(sim.spec, paused=True)
    sim.generation += 1
    return sim


def unpaused(sim: Sim) -> Sim:
    sim.spec = replace(sim.spec, paused=False)
    sim.generation += 1
    return sim


def lose_status(sim: Sim) -> Sim:
    sim.status = Status()
    return sim


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
                s.last.requeue_at == s.status.drift.next_check_time,
                s.status.drift.summary == "0.05",
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
                s.last.requeue_at == some(s.status.retrains.last_started) + timedelta(hours=6),
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
                s.candidate.runs[2].state is RunState.PENDING,
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
                s.candidate.best == 1,
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
                s.candidate.outcome is Outcome.TRAINING_FAILED,
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
            check=lambda s: s.candidate.runs[0].reason == "MalformedResult",
        ),
    ),
    "training: a result without a model fails that candidate": (
        sim_with(training={"candidates": [{}]}),
        Row(
            lambda s: s.check(True).finish("cats-train-1-0", {"metrics": {"val_acc": 0.9}}),
            Phase.FAILED,
            [],
            check=lambda s: s.candidate.runs[0].reason == "MissingModel",
        ),
    ),
    "training: no candidate reports the promotion metric": (
        Sim,
        Row(
            lambda s: s.check(True).finish_runs(None).finish("cats-train-1-1", {"metrics": {"loss": 1}, "model": "m"}),
            Phase.FAILED,
            [],
            ["TrainingFailed"],
            check=lambda s: s.candidate.reason == "MetricMissing",
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
                some(s.candidate.gate).reason == "NotBetterThanServing",
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
            check=lambda s: some(s.candidate.gate).reason == "BelowMinValue",
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
                some(s.candidate.gate).reason == "DidNotLearn",
                "never right on class cats, dogs" in some(s.candidate.gate).message,
                s.model.image == IMAGE0,
                s.condition("Training") == ("False", "CandidateRejected"),
            ),
        ),
    ),
    "training: no drift check runs while a retrain is in flight": (
        Sim,
        Row(lambda s: s.check(True).step(7200), Phase.TRAINING, []),
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
    "packaging: the image is rolled out by digest": (
        Sim,
        Row(
            lambda s: s.to_rolling_out(),
            Phase.ROLLING_OUT,
            ["PatchImage"],
            ["Packaged", "RolloutStarted"],
            check=lambda s: (
                s.actions(act.PatchImage)[0].image == f"registry.example/cats-dogs:v1-rev00000@{DIGEST}",
                s.candidate.previous_image == IMAGE0,
                s.condition("RolledOut") == ("Unknown", "RollingOut"),
            ),
        ),
    ),
    "packaging: without a digest the tag is rolled out": (
        Sim,
        Row(
            lambda s: s.to_packaging().package(digest=None),
            Phase.ROLLING_OUT,
            ["PatchImage"],
            check=lambda s: s.actions(act.PatchImage)[0].image == "registry.example/cats-dogs:v1-rev00000",
        ),
    ),
    # ------------------------------------------------------------------ RollingOut
    "rolling out: waiting wakes at the progress deadline": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().step(10),
            Phase.ROLLING_OUT,
            [],
            check=lambda s: s.last.requeue_at == some(s.candidate.rollout_started_at) + timedelta(seconds=600),
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
            check=lambda s: s.candidate.outcome is Outcome.ROLLOUT_FAILED,
        ),
    ),
    "rolling out: the serving Deployment is gone": (
        Sim,
        Row(
            lambda s: s.to_packaging().serving_gone().package(),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: s.candidate.reason == "ServingDeploymentNotFound",
        ),
    ),
    "rolling out: someone else changed the image meanwhile": (
        Sim,
        Row(
            lambda s: s.to_rolling_out().serving_image("x:y").step(1),
            Phase.DEGRADED,
            [],
            ["RolloutFailed"],
            check=lambda s: s.candidate.reason == "ImageChanged",
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
                [r.state for r in s.candidate.runs] == [RunState.RUNNING, RunState.RUNNING, RunState.PENDING],
                s.status.drift.job is None,
                len(s.of_step(Step.TRAIN)) == 2,
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
    make, row = TABLE[row_name]
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


def test_every_phase_has_a_row() -> None:
    phases = {row.phase for _, row in TABLE.values()}
    assert phases == set(Phase)

"""Transition rows of Kueue admission (``spec.training.queue``, issue 16 part 1): Queued runs, their
wait, maxParallel and the gate with runs still waiting. Same table form as test_decide.py.

``QueueSim`` plays Kueue's webhook: training Jobs of a spec with a queue are created suspended;
``admit`` unsuspends them as Kueue does, and the Job controller sets their startTime then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, cast

import pytest
from freshness_operator import builders, labels
from freshness_operator.cache import slim_job
from freshness_operator.core import actions as act
from freshness_operator.core.actions import CreatePackageJob, CreateTrainJob
from freshness_operator.core.observed import JobKind, JobObservation, JobState
from freshness_operator.core.status import Candidate, CandidateState, Phase
from freshness_operator.metrics import Metrics
from freshness_operator.observe import job_observation

from tests.operator.sim import Sim, make_spec, some
from tests.operator.test_decide import Row, assert_row

SWEEP = [{"train.lr": lr} for lr in (0.1, 0.03, 0.01, 0.003)]
QUEUED_SPEC: dict[str, Any] = {"training": {"candidates": SWEEP, "maxParallel": 4, "queue": "gpu"}}


@dataclass
class QueueSim(Sim):
    """Sim whose training Jobs Kueue's webhook creates suspended (when the spec names a queue)."""

    def _create(self, a: act.CreateJob) -> None:
        queue = self.spec.training.queue if isinstance(a, act.CreateTrainJob) else None
        if queue is None or a.name in self.jobs or not isinstance(a, act.CreateTrainJob):
            super()._create(a)
            return
        self.jobs[a.name] = JobObservation(
            a.name, a.kind, a.sequence, JobState.RUNNING, a.index, a.overrides, queue=queue, queued=True,
            created_at=self.now,
        )

    def admit(self, *indexes: int, after: float = 30) -> QueueSim:
        """``after`` seconds pass; Kueue admits these candidates' Jobs (startTime = now); decide."""
        self.now += timedelta(seconds=after)
        for name in self.names(*indexes):
            self.jobs[name] = replace(self.jobs[name], queued=False, started_at=self.now)
        self.step()
        return self

    def evict(self, index: int, after: float = 10) -> QueueSim:
        """Kueue suspends an admitted Job again (preemption); the Job controller clears nothing else."""
        self.now += timedelta(seconds=after)
        (name,) = self.names(index)
        self.jobs[name] = replace(self.jobs[name], queued=True)
        self.step()
        return self

    def names(self, *indexes: int) -> list[str]:
        return [r.job for r in self.retrain.candidates if r.index in indexes]

    def run(self, index: int) -> Candidate:
        return next(r for r in self.retrain.candidates if r.index == index)

    def states(self) -> list[str]:
        return [r.state.value for r in self.retrain.candidates]

    def finish_index(self, index: int, acc: float) -> QueueSim:
        (name,) = self.names(index)
        self.finish(name, {"experiment": "e", "rev": f"rev{index}000000", "metrics": {"val_acc": acc},
                           "baselineMetrics": {"val_acc": 0.8}, "model": f"s3://m/{index}.pt"})
        return self

    def unsuspend_only(self, index: int) -> QueueSim:
        """The sweep waits; Kueue unsuspends one Job, whose startTime the Job controller has not set yet."""
        sweep_waiting(self)
        (name,) = self.names(index)
        self.jobs[name] = replace(self.jobs[name], queued=False, started_at=None)
        self.step(1)
        return self

    def drop_job(self, index: int) -> QueueSim:
        """The sweep waits; one queued Job is deleted by someone."""
        sweep_waiting(self)
        (name,) = self.names(index)
        del self.jobs[name]
        self.step(1)
        return self

    def queued_observed(self) -> list[float]:
        return [a.seconds for d in self.history for a in d.actions if isinstance(a, act.ObserveQueued)]


def queue_sim(**spec: Any) -> Callable[[], QueueSim]:
    return lambda: QueueSim(spec=make_spec(**(spec or QUEUED_SPEC)))


def sweep_waiting(s: QueueSim) -> QueueSim:
    """Drift confirmed; four training Jobs created, all held suspended by Kueue; one more decision."""
    s.check(True)
    s.step(1)
    return s


def two_admitted(s: QueueSim) -> QueueSim:
    return sweep_waiting(s).admit(0, 1)


TRAIN4 = ["CreateTrainJob"] * 4


def qrow(
    drive: Callable[[QueueSim], object],
    phase: Phase,
    effects: list[str] | None = None,
    events: list[str] | None = None,
    check: Callable[[QueueSim], object] | None = None,
) -> Row:
    """A Row whose drive and check get the QueueSim that ``queue_sim`` makes."""
    return Row(cast(Callable[[Sim], object], drive), phase, effects or [], events or [], cast(Any, check))

TABLE: dict[str, tuple[Callable[[], Sim], Row]] = {
    "a sweep under a queue: the suspended Jobs are Queued, not Running, with no startedAt": (
        queue_sim(),
        qrow(
            sweep_waiting,
            Phase.TRAINING,
            [],
            ["CandidateQueued"],
            check=lambda s: (
                s.states() == ["Queued"] * 4,
                all(r.started_at is None and r.queued_at is not None for r in s.retrain.candidates),
                s.condition("Training") == ("True", "CandidatesQueued"),
                "4 candidate(s) wait for admission in LocalQueue gpu" in some(s.status.condition("Training")).message,
                s.status.step == "train 0/4 (4 queued)",
                s.queued_observed() == [],
            ),
        ),
    ),
    "the retrain creates every Job at once; Kueue, not the operator, holds them": (
        queue_sim(),
        qrow(lambda s: s.check(True), Phase.TRAINING, TRAIN4, check=lambda s: len(s.of_kind(JobKind.TRAIN)) == 4),
    ),
    "admission: two run from their startTime, the wait is observed once each, two stay Queued": (
        queue_sim(),
        qrow(
            two_admitted,
            Phase.TRAINING,
            [],
            ["CandidateAdmitted"],
            check=lambda s: (
                s.states() == ["Running", "Running", "Queued", "Queued"],
                s.run(0).started_at == s.now and s.run(1).started_at == s.now,
                s.run(0).queued_seconds == pytest.approx(31.0),  # created, one decision (1s), admitted 30s later
                s.queued_observed() == [pytest.approx(31.0)] * 2,
                s.status.step == "train 0/4 (2 queued)",
                "2 candidate(s) wait" in some(s.status.condition("Training")).message,
                "timeout counts from now" in s.event("CandidateAdmitted"),
            ),
        ),
    ),
    "an admitted run is observed once: the next decisions observe nothing more": (
        queue_sim(),
        qrow(
            lambda s: two_admitted(s).step(5).step(5), Phase.TRAINING, [], check=lambda s: len(s.queued_observed()) == 2
        ),
    ),
    "queued runs hold the retrain: two finish, the gate waits for the two still Queued": (
        queue_sim(),
        qrow(
            lambda s: two_admitted(s).finish_index(0, 0.84).finish_index(1, 0.86),
            Phase.TRAINING,
            [],
            ["CandidateTrained"],
            check=lambda s: (
                s.states() == ["Succeeded", "Succeeded", "Queued", "Queued"],
                s.retrain.gate is None,
                "CandidateAccepted" not in s.all_events(),
            ),
        ),
    ),
    "all four finish after waiting: the best of the four is gated, then packaged": (
        queue_sim(),
        qrow(
            lambda s: two_admitted(s).finish_index(0, 0.84).finish_index(1, 0.86).admit(2, 3)
            .finish_index(2, 0.91).finish_index(3, 0.83),
            Phase.PACKAGING,
            ["CreatePackageJob"],
            ["CandidateAccepted"],
            check=lambda s: (
                s.retrain.best == 2,
                some(s.retrain.gate).passed,
                some(s.run(2).queued_seconds) > some(s.run(0).queued_seconds),
                len(s.queued_observed()) == 4,
            ),
        ),
    ),
    "queued runs count against maxParallel: two Jobs, both waiting, no third": (
        queue_sim(training={"candidates": SWEEP, "maxParallel": 2, "queue": "gpu"}),
        qrow(
            lambda s: s.check(True).step(600),
            Phase.TRAINING,
            [],
            check=lambda s: (
                s.states() == ["Queued", "Queued", "Pending", "Pending"],
                len(s.of_kind(JobKind.TRAIN)) == 2,
            ),
        ),
    ),
    "a Job waiting longer than spec.training.timeout is not failed: the timeout counts from admission": (
        queue_sim(training={"candidates": SWEEP, "maxParallel": 4, "queue": "gpu", "timeout": "1h"}),
        qrow(
            lambda s: sweep_waiting(s).step(3 * 3600),
            Phase.TRAINING,
            [],
            check=lambda s: (s.states() == ["Queued"] * 4, "CandidateFailed" not in s.all_events()),
        ),
    ),
    "unsuspended before the Job controller set startTime: still Queued, nothing observed yet": (
        queue_sim(),
        qrow(
            lambda s: s.unsuspend_only(0),
            Phase.TRAINING,
            [],
            check=lambda s: (s.run(0).state is CandidateState.QUEUED, s.queued_observed() == []),
        ),
    ),
    "preempted: an admitted Job suspended again is Queued again, and its next admission observed again": (
        queue_sim(),
        qrow(
            lambda s: two_admitted(s).evict(0).admit(0, after=20),
            Phase.TRAINING,
            [],
            ["CandidateAdmitted"],
            check=lambda s: (
                "CandidateRequeued" in s.all_events(),
                s.run(0).state is CandidateState.RUNNING,
                s.run(0).queued_seconds == pytest.approx(20.0),
                s.queued_observed() == [pytest.approx(31.0), pytest.approx(31.0), pytest.approx(20.0)],
            ),
        ),
    ),
    "a queued Job that disappears fails its candidate (JobNotFound)": (
        queue_sim(),
        qrow(
            lambda s: s.drop_job(3),
            Phase.TRAINING,
            [],
            ["CandidateFailed"],
            check=lambda s: (s.run(3).state is CandidateState.FAILED, s.run(3).reason == "JobNotFound"),
        ),
    ),
    "no queue: Jobs run at once, never Queued, nothing observed (unchanged behaviour)": (
        queue_sim(training={"candidates": SWEEP, "maxParallel": 4}),
        qrow(
            lambda s: s.check(True).step(5),
            Phase.TRAINING,
            [],
            check=lambda s: (
                s.states() == ["Running"] * 4,
                s.condition("Training") == ("True", "Training"),
                s.queued_observed() == [],
                s.status.step == "train 0/4",
            ),
        ),
    ),
}


@pytest.mark.parametrize("row_name", list(TABLE))
def test_transition(row_name: str) -> None:
    assert_row(*TABLE[row_name])


# ---------------------------------------------------------------- the wiring's pure parts

OWNER = builders.Owner(name="cats", namespace="ml", uid="u")


def test_the_queue_label_goes_on_the_job_only_and_suspend_is_never_set() -> None:
    spec = make_spec(training={"queue": "gpu", "timeout": "30m"}, package={"queue": "cpu"})
    train = builders.train_job(OWNER, spec, CreateTrainJob("cats-train-1-0", 1, 0), "img")
    package = builders.package_job(OWNER, spec, CreatePackageJob("cats-package-1", 1, "s3://m", "r/x:1"), "img")
    assert train["metadata"]["labels"][labels.KUEUE_QUEUE] == "gpu"
    assert package["metadata"]["labels"][labels.KUEUE_QUEUE] == "cpu"
    for job in (train, package):
        assert labels.KUEUE_QUEUE not in job["spec"]["template"]["metadata"]["labels"]
        assert "suspend" not in job["spec"]
    assert train["spec"]["activeDeadlineSeconds"] == 1800  # the Job controller counts it from startTime


def test_no_queue_no_label() -> None:
    train = builders.train_job(OWNER, make_spec(), CreateTrainJob("cats-train-1-0", 1, 0), "img")
    assert labels.KUEUE_QUEUE not in train["metadata"]["labels"]


def _job(suspend: bool, start: str | None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "cats-train-1-0",
            "uid": "j",
            "creationTimestamp": "2025-03-01T12:00:00Z",
            "labels": {labels.STEP: "train", labels.RETRAIN: "1", labels.CANDIDATE: "0", labels.KUEUE_QUEUE: "gpu"},
        },
        "spec": {"suspend": suspend},
        "status": {"startTime": start} if start else {},
    }


def test_observe_reads_suspend_and_takes_start_time_not_creation() -> None:
    held = some(job_observation(_job(True, None), []))
    assert (held.queued, held.queue, held.started_at) == (True, "gpu", None)
    assert held.created_at is not None and held.created_at.isoformat() == "2025-03-01T12:00:00+00:00"
    admitted = some(job_observation(_job(False, "2025-03-01T12:07:00Z"), []))
    assert not admitted.queued and some(admitted.started_at).isoformat() == "2025-03-01T12:07:00+00:00"
    racing = some(job_observation(_job(False, None), []))  # unsuspended, startTime not yet set
    assert not racing.queued and racing.started_at is None


def test_queued_seconds_reach_the_histogram() -> None:
    m = Metrics()
    m.record("ml", "cats", [act.ObserveQueued(42.0), act.ObserveQueued(3.0)])
    labels_ = {"namespace": "ml", "name": "cats"}
    assert m.registry.get_sample_value("modelfreshness_candidate_queued_seconds_count", labels_) == 2
    assert m.registry.get_sample_value("modelfreshness_candidate_queued_seconds_sum", labels_) == 45.0
    m.forget("ml", "cats")
    assert m.registry.get_sample_value("modelfreshness_candidate_queued_seconds_count", labels_) is None


def test_the_watch_cache_keeps_suspend_so_a_queued_job_stays_queued() -> None:
    slim = slim_job({**_job(True, None), "spec": {"suspend": True, "template": {"spec": {"containers": []}}}})
    assert slim["spec"] == {"suspend": True}
    assert some(job_observation(slim, [])).queued

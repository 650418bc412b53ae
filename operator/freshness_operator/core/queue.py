"""Kueue admission of training Jobs (``spec.training.queue``): Queued runs and their wait. Pure.

The training Jobs carry ``kueue.x-k8s.io/queue-name``; Kueue's webhook creates them suspended and
its ClusterQueue admits (unsuspends) them as quota allows. The operator never sets ``suspend``.

- A run whose Job is suspended is ``Queued`` (no pods yet, no ``startedAt``).
- Once admitted it is ``Running`` from the Job's ``startTime``, which the Job controller sets on
  every resume; the Job's ``activeDeadlineSeconds`` (``spec.training.timeout``) counts from there,
  so the timeout counts from admission, not creation.
- The wait (``startTime`` - creation, or since Kueue suspended it again) is kept in the run's
  ``queuedSeconds`` and observed once per admission (``ObserveQueued``).
"""

from __future__ import annotations

from freshness_operator.core.actions import ObserveQueued
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobObservation
from freshness_operator.core.status import Candidate, CandidateState, RetrainStatus

IN_FLIGHT = (CandidateState.PENDING, CandidateState.QUEUED, CandidateState.RUNNING)
HAS_JOB = (CandidateState.QUEUED, CandidateState.RUNNING)


def track(ctx: Context, run: Candidate, job: JobObservation) -> None:
    """A training Job that has not finished: Queued while suspended, Running once admitted."""
    if job.queued:
        _queued(ctx, run, job)
        return
    if job.queue is not None and job.started_at is None:
        return  # unsuspended a moment ago; the Job controller has not set startTime yet
    if job.queue is not None and run.queued_seconds is None:
        _admitted(ctx, run, job)
    run.state = CandidateState.RUNNING
    run.started_at = run.started_at or job.started_at or ctx.now


def _queued(ctx: Context, run: Candidate, job: JobObservation) -> None:
    if run.state is CandidateState.QUEUED:
        return
    queue = job.queue or "(none: the Job was suspended by someone else)"
    again = run.queued_seconds is not None  # it had been admitted: preempted or evicted
    run.state, run.started_at, run.queued_seconds = CandidateState.QUEUED, None, None
    run.queued_at = ctx.now if again else (job.created_at or ctx.now)
    if again:
        ctx.emit("CandidateRequeued", f"candidate {run.index} ({run.job}) was suspended again; waits in {queue}")
    else:
        ctx.emit("CandidateQueued", f"candidate {run.index} ({run.job}) waits for admission in LocalQueue {queue}")


def _admitted(ctx: Context, run: Candidate, job: JobObservation) -> None:
    admitted = job.started_at or ctx.now
    since = run.queued_at or job.created_at or admitted
    run.queued_seconds = max(0.0, (admitted - since).total_seconds())
    run.started_at = admitted
    ctx.actions.append(ObserveQueued(run.queued_seconds))
    if run.state is CandidateState.QUEUED:
        ctx.emit(
            "CandidateAdmitted",
            f"candidate {run.index} ({run.job}) admitted by LocalQueue {job.queue} after "
            f"{run.queued_seconds:.0f}s; spec.training.timeout counts from now",
        )


def occupying(retrain: RetrainStatus) -> int:
    """Runs whose Job exists and is not finished: they count against spec.training.maxParallel."""
    return sum(r.state in HAS_JOB for r in retrain.candidates)


def waiting(retrain: RetrainStatus, queue: str | None) -> str | None:
    """The Training condition's note on queued runs, or None when none waits."""
    queued = [r.index for r in retrain.candidates if r.state is CandidateState.QUEUED]
    if not queued:
        return None
    where = f"LocalQueue {queue}" if queue else "their queue"
    shown = ", ".join(str(i) for i in queued)
    return f"{len(queued)} candidate(s) wait for admission in {where} (Kueue): {shown}"

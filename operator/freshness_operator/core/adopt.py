"""Step 1, adopt: Jobs newer than the status knows (status lost or written late) are taken over.

Observe, don't remember: in-flight state is rebuilt from the child Jobs' labels, so an operator that
restarts, or a status that was wiped, never starts a check or a retrain twice. Pure.
"""

from __future__ import annotations

from freshness_operator.core import names
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobState
from freshness_operator.core.status import Candidate, CandidateState, RetrainStage, RetrainStatus


def adopt_jobs(ctx: Context) -> None:
    """Step 1: Jobs newer than the status knows (status lost or written late) are taken over.

    A status that still shows a check in flight is only behind (the writes after it were lost to
    a crash or to 409s): the retrain that check's verdict started is taken over even when its Jobs
    have finished, so it is never started twice. A status without one may be wiped: finished Jobs
    of an unknown retrain are then not redone (whether it rolled out or was rolled back is unknown).
    """
    behind = ctx.status.drift.job is not None
    _adopt_drift(ctx)
    _adopt_retrain(ctx, behind)


def _adopt_drift(ctx: Context) -> None:
    jobs = ctx.observed.of_kind(JobKind.DRIFT)
    d = ctx.status.drift
    latest = max(jobs, key=lambda j: j.sequence, default=None)
    if latest is None or latest.sequence <= d.sequence:
        return
    d.sequence, d.job, d.started_at = latest.sequence, latest.name, latest.started_at or ctx.now


def _adopt_retrain(ctx: Context, behind: bool) -> None:
    jobs = [j for j in ctx.observed.jobs if j.kind in (JobKind.TRAIN, JobKind.PACKAGE)]
    retrain, retrains = ctx.status.retrain, ctx.status.retrains
    number = max((j.sequence for j in jobs), default=0)
    if number == 0 or (retrain is not None and retrain.sequence >= number):
        return
    retrains.last_sequence = max(retrains.last_sequence, number)
    mine = [j for j in jobs if j.sequence == number]
    if not behind and all(j.state is not JobState.RUNNING for j in mine):
        return  # finished before the status knew it: whether it rolled out is unknown, so do not redo it
    runs = {
        j.index: Candidate(index=j.index, job=j.name, overrides=j.overrides, state=CandidateState.RUNNING)
        for j in mine
        if j.kind is JobKind.TRAIN and j.index is not None
    }
    for i, cand in enumerate(ctx.spec.training.candidates):
        if i not in runs:
            merged = {**ctx.spec.training.params, **cand}
            runs[i] = Candidate(index=i, job=names.train_job(ctx.name, number, i), overrides=merged)
    started = min((j.started_at for j in mine if j.started_at), default=ctx.now)
    ctx.status.retrain = RetrainStatus(
        sequence=number,
        stage=RetrainStage.TRAINING,
        started_at=started,
        trigger="rebuilt from the cluster's Jobs",
        # Only the last check's verdict starts a retrain (none runs during one), even when the write
        # that recorded that verdict was lost with the one that started the retrain.
        trigger_check=ctx.status.drift.sequence,
        candidates=[runs[i] for i in sorted(runs)],
    )
    if retrains.last_started is None or retrains.last_started < started:
        retrains.last_started = started
        retrains.recent.append(started)
    ctx.emit("StateRebuilt", f"retrain {number} taken over from {len(mine)} existing Job(s)")

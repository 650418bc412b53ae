"""Observe, don't remember: rebuild in-flight state from child Jobs, follow the serving image,
and prune old Jobs. Pure."""

from __future__ import annotations

from freshness_operator.core import names
from freshness_operator.core.actions import DeleteJob
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobState, Step
from freshness_operator.core.status import CandidateStatus, ModelStatus, RunState, RunStatus, Stage

KEEP_CHECKS = 3  # finished drift Jobs kept for `kubectl logs`
KEEP_RETRAINS = 2  # retrains whose training and package Jobs are kept


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
    jobs = ctx.observed.of_step(Step.DRIFT)
    d = ctx.status.drift
    latest = max(jobs, key=lambda j: j.number, default=None)
    if latest is None or latest.number <= d.sequence:
        return
    d.sequence, d.job, d.started_at = latest.number, latest.name, latest.started_at or ctx.now


def _adopt_retrain(ctx: Context, behind: bool) -> None:
    jobs = [j for j in ctx.observed.jobs if j.step in (Step.TRAIN, Step.PACKAGE)]
    c, retrains = ctx.status.candidate, ctx.status.retrains
    number = max((j.number for j in jobs), default=0)
    if number == 0 or (c is not None and c.retrain >= number):
        return
    retrains.count = max(retrains.count, number)
    mine = [j for j in jobs if j.number == number]
    if not behind and all(j.state is not JobState.RUNNING for j in mine):
        return  # finished before the status knew it: whether it rolled out is unknown, so do not redo it
    runs = {
        j.index: RunStatus(index=j.index, job=j.name, overrides=j.overrides, state=RunState.RUNNING)
        for j in mine
        if j.step is Step.TRAIN and j.index is not None
    }
    for i, cand in enumerate(ctx.spec.training.candidates):
        if i not in runs:
            merged = {**ctx.spec.training.params, **cand}
            runs[i] = RunStatus(index=i, job=names.train_job(ctx.name, number, i), overrides=merged)
    started = min((j.started_at for j in mine if j.started_at), default=ctx.now)
    ctx.status.candidate = CandidateStatus(
        retrain=number,
        stage=Stage.TRAINING,
        started_at=started,
        trigger="rebuilt from the cluster's Jobs",
        # Only the last check's verdict starts a retrain (none runs during one), even when the write
        # that recorded that verdict was lost with the one that started the retrain.
        trigger_check=ctx.status.drift.sequence,
        runs=[runs[i] for i in sorted(runs)],
    )
    if retrains.last_started is None or retrains.last_started < started:
        retrains.last_started = started
        retrains.recent.append(started)
    ctx.emit("StateRebuilt", f"retrain {number} taken over from {len(mine)} existing Job(s)")


def track_serving(ctx: Context) -> None:
    """Step 2: status.model follows what the Deployment runs (first sight, or changed by someone else)."""
    dep, st = ctx.observed.deployment, ctx.status
    c = st.candidate
    if not dep.container_found or dep.image is None:
        return
    if c is not None and (c.stage is Stage.ROLLING_OUT or dep.image == c.target_image):
        return
    if st.model is None or st.model.image is None:
        st.model = ModelStatus(version=names.version_of_image(dep.image), image=dep.image)
        return
    if dep.image == st.model.image:
        return
    version = names.version_of_image(dep.image)
    ctx.push_history(st.model, replaced_by=version, reason="ChangedOutsideOperator")
    st.model = ModelStatus(version=version, image=dep.image, deployed_at=ctx.now)
    ctx.emit("ServingImageChanged", f"{ctx.spec.serving.deployment} now runs {dep.image}, not set by the operator")


def prune_jobs(ctx: Context) -> None:
    """Step 7: delete finished Jobs of old checks and retrains (their pods go with them)."""
    if not ctx.may_act:
        return
    d, c = ctx.status.drift, ctx.status.candidate
    for job in ctx.observed.jobs:
        if job.state is JobState.RUNNING or job.name == d.job:
            continue
        if job.step is Step.DRIFT:
            old = job.number <= d.sequence - KEEP_CHECKS
        else:
            old = c is not None and job.number <= c.retrain - KEEP_RETRAINS
        if old:
            ctx.actions.append(DeleteJob(job.name))

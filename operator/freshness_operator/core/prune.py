"""Step 7, prune: finished Jobs of old checks and retrains are deleted (their pods go with them). Pure."""

from __future__ import annotations

from freshness_operator.core.actions import DeleteJob
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobState

KEEP_CHECKS = 3  # finished drift Jobs kept for `kubectl logs`
KEEP_RETRAINS = 2  # retrains whose training and package Jobs are kept


def prune_jobs(ctx: Context) -> None:
    """Step 7: delete finished Jobs older than KEEP_CHECKS checks or KEEP_RETRAINS retrains."""
    if not ctx.may_act:
        return
    d, retrain = ctx.status.drift, ctx.status.retrain
    for job in ctx.observed.jobs:
        if job.state is JobState.RUNNING or job.name == d.job:
            continue
        if job.kind is JobKind.DRIFT:
            old = job.sequence <= d.sequence - KEEP_CHECKS
        else:
            old = retrain is not None and job.sequence <= retrain.sequence - KEEP_RETRAINS
        if old:
            ctx.actions.append(DeleteJob(job.name))

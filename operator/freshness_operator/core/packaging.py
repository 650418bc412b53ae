"""Step 4c, packaging: one Job builds the serving image from the best candidate's model file. Pure.

Only the image this retrain asked for (``<spec.serving.image>:<version>``), pinned by its digest,
moves on to the rollout; anything else the Job reports fails the retrain as ``MalformedResult``.
"""

from __future__ import annotations

from freshness_contract.results import PackageResult

from freshness_operator.core import image
from freshness_operator.core.actions import CreatePackageJob
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobState, StepOutcome
from freshness_operator.core.status import Outcome, RetrainStage, RetrainStatus


def advance(ctx: Context) -> None:
    """Step 4c: create the package Job once, then take its image or its failure."""
    r = ctx.status.retrain
    if r is not None and r.stage is RetrainStage.PACKAGING:
        _advance(ctx, r)


def _advance(ctx: Context, c: RetrainStatus) -> None:
    job = ctx.observed.job(c.package_job)
    best = c.best_candidate()
    if job is None:
        if c.package_started_at is not None:
            _failed(ctx, c, "JobNotFound", f"package Job {c.package_job} disappeared before it finished")
        elif ctx.may_act and best is not None and best.model and c.package_job:
            tag = f"{ctx.spec.serving.image}:{c.version}"
            ctx.actions.append(CreatePackageJob(c.package_job, c.sequence, best.model, tag))
            c.package_started_at = ctx.now
            ctx.emit("PackagingStarted", f"retrain {c.sequence}: building {tag} from {best.model}")
        return
    if job.state is JobState.RUNNING:
        c.package_started_at = c.package_started_at or job.started_at or ctx.now
        return
    ctx.duration(JobKind.PACKAGE, job.started_at, job.finished_at)
    outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
    if not outcome.ok:
        _failed(ctx, c, outcome.reason, outcome.message)
        return
    result = outcome.result
    if not isinstance(result, PackageResult):
        _failed(ctx, c, "MalformedResult", "result field package: required when ok is true")
        return
    # Only the image this retrain asked for, pinned by digest, ever reaches the Deployment.
    problem = image.problem(ctx.spec.serving.image, c.version, result.image, result.digest)
    if problem is not None:
        _failed(ctx, c, "MalformedResult", f"result field package.image: {problem}")
        return
    c.image, c.digest, c.target_image = result.reference, result.digest, result.image
    c.stage = RetrainStage.ROLLING_OUT
    ctx.emit("Packaged", f"retrain {c.sequence}: {c.target_image}")


def _failed(ctx: Context, c: RetrainStatus, reason: str, message: str) -> None:
    ctx.emit("PackagingFailed", f"retrain {c.sequence}: {reason}: {message}", warning=True)
    ctx.finish(c, Outcome.PACKAGING_FAILED, reason, message, "failed")

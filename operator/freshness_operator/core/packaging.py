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


def _advance(ctx: Context, retrain: RetrainStatus) -> None:
    job = ctx.observed.job(retrain.package_job)
    best = retrain.best_candidate()
    if job is None:
        if retrain.package_started_at is not None:
            _failed(ctx, retrain, "JobNotFound", f"package Job {retrain.package_job} disappeared before it finished")
        elif ctx.may_act and best is not None and best.model and retrain.package_job:
            tag = f"{ctx.spec.serving.image}:{retrain.version}"
            ctx.actions.append(CreatePackageJob(retrain.package_job, retrain.sequence, best.model, tag))
            retrain.package_started_at = ctx.now
            ctx.emit("PackagingStarted", f"retrain {retrain.sequence}: building {tag} from {best.model}")
        return
    if job.state is JobState.RUNNING:
        retrain.package_started_at = retrain.package_started_at or job.started_at or ctx.now
        return
    ctx.duration(JobKind.PACKAGE, job.started_at, job.finished_at)
    outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
    if not outcome.ok:
        _failed(ctx, retrain, outcome.reason, outcome.message)
        return
    result = outcome.result
    if not isinstance(result, PackageResult):
        _failed(ctx, retrain, "MalformedResult", "result field package: required when ok is true")
        return
    # Only the image this retrain asked for, pinned by digest, ever reaches the Deployment.
    problem = image.problem(ctx.spec.serving.image, retrain.version, result.image, result.digest)
    if problem is not None:
        _failed(ctx, retrain, "MalformedResult", f"result field package.image: {problem}")
        return
    retrain.image, retrain.digest, retrain.target_image = result.reference, result.digest, result.image
    retrain.stage = RetrainStage.ROLLING_OUT
    ctx.emit("Packaged", f"retrain {retrain.sequence}: {retrain.target_image}")


def _failed(ctx: Context, retrain: RetrainStatus, reason: str, message: str) -> None:
    ctx.emit("PackagingFailed", f"retrain {retrain.sequence}: {reason}: {message}", warning=True)
    ctx.finish(retrain, Outcome.PACKAGING_FAILED, reason, message, "failed")

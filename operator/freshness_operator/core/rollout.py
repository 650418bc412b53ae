"""Step 4d, rollout: the serving Deployment gets the packaged image, or its previous one back. Pure."""

from __future__ import annotations

from datetime import timedelta

from freshness_operator.core import image, names, serving
from freshness_operator.core.actions import Metric, PatchImage
from freshness_operator.core.context import Context
from freshness_operator.core.status import ModelStatus, Outcome, RetrainStage, RetrainStatus, StepError


def _problem(ctx: Context) -> tuple[str, str] | None:
    dep, serving_spec = ctx.observed.deployment, ctx.spec.serving
    if not dep.found:
        return "ServingDeploymentNotFound", f"Deployment {serving_spec.deployment} does not exist"
    if not dep.container_found:
        return "ContainerNotFound", f"Deployment {serving_spec.deployment} has no container {serving_spec.container}"
    return opt_in_problem(ctx)


def opt_in_problem(ctx: Context) -> tuple[str, str] | None:
    """Why the serving Deployment may not be patched by this ModelDeployment, or None. Pure.

    Its owner opts in with the label ``modelfreshness.io/serving-for: <ModelDeployment name>``;
    without it, whoever may create a ModelDeployment could change the image of any Deployment in
    the namespace through the operator's permissions (docs/security.md).
    """
    dep, want = ctx.observed.deployment, names.label_value(ctx.name)
    if not dep.found or dep.serving_for == want:
        return None
    has = f" (it names {dep.serving_for!r})" if dep.serving_for is not None else ""
    return (
        "ServingNotOptedIn",
        f"Deployment {ctx.spec.serving.deployment} is not opted in{has}: add the label "
        f"{names.SERVING_FOR}={want} to let ModelDeployment {ctx.name} patch its image",
    )


def advance(ctx: Context) -> None:
    """Step 4d: patch the image once, then judge the rollout from the Deployment's status."""
    retrain = ctx.status.retrain
    if retrain is None or retrain.stage is not RetrainStage.ROLLING_OUT:
        return
    if retrain.rollout_started_at is None:
        _start(ctx, retrain)
    else:
        _judge(ctx, retrain)


def _start(ctx: Context, retrain: RetrainStatus) -> None:
    """Intent before action: record the previous image, then patch on the next reconcile.

    The first pass only writes ``previousImage`` (with ``targetImage``) to the status; the patch
    is sent by a reconcile that read that status back from the API, so a crash or a lost write
    after the patch is resolved from the record, never from the Deployment's (new) image.
    """
    dep, serving_spec = ctx.observed.deployment, ctx.spec.serving
    if not ctx.may_act:
        return
    if serving.problem(ctx) is not None:
        return  # a setup problem: wait until it is fixed (ServingFound, Ready); the Deployment's events retry
    not_opted_in = opt_in_problem(ctx)
    if not_opted_in is not None:
        _failed(ctx, retrain, *not_opted_in)  # never patched: its owner did not opt in (docs/security.md)
        return
    wrong = image.problem(serving_spec.image, retrain.version, retrain.target_image)
    if wrong is not None:  # a status from elsewhere (edited, older operator): never patch it
        _failed(ctx, retrain, "MalformedResult", f"candidate.targetImage: {wrong}; the Deployment was left alone")
        return
    if retrain.previous_image is None:
        retrain.previous_image = dep.image
        ctx.recheck()
        return
    if dep.image != retrain.target_image:
        ctx.actions.append(PatchImage(str(retrain.target_image)))
    else:  # the patch went out, the status write after it was lost (a crash, a failover): the
        # Deployment may have finished rolling out already and sends no more events, so judge it now
        ctx.recheck()
    retrain.rollout_started_at = ctx.now
    where = f"{serving_spec.deployment}/{serving_spec.container}"
    ctx.emit("RolloutStarted", f"{where}: {retrain.previous_image} -> {retrain.target_image}")
    ctx.wake_at(ctx.now + timedelta(seconds=ctx.spec.rollout.progress_deadline_seconds))


def _judge(ctx: Context, retrain: RetrainStatus) -> None:
    dep, rollout = ctx.observed.deployment, ctx.spec.rollout
    assert retrain.rollout_started_at is not None
    problem = _problem(ctx)
    if problem is not None:
        _failed(ctx, retrain, *problem)
    elif retrain.rollback is not None:
        _roll_back(ctx, retrain, retrain.rollback)
    elif dep.image != retrain.target_image:
        _failed(ctx, retrain, "ImageChanged", f"the container image was changed to {dep.image} during the rollout")
    elif dep.rolled_out:
        _promote(ctx, retrain)
    else:
        deadline = retrain.rollout_started_at + timedelta(seconds=rollout.progress_deadline_seconds)
        if not dep.progress_deadline_exceeded and ctx.now < deadline:
            ctx.wake_at(deadline)
            return
        message = dep.message or f"not available within {rollout.progress_deadline_seconds}s"
        if rollout.auto_rollback and retrain.previous_image:
            _decide_rollback(ctx, retrain, "ProgressDeadlineExceeded", message)
        else:
            _failed(ctx, retrain, "ProgressDeadlineExceeded", message)


def _decide_rollback(ctx: Context, retrain: RetrainStatus, reason: str, message: str) -> None:
    """Intent before action: the rollback and its reason are written before the patch."""
    if not ctx.may_act:
        return  # paused: the rollback is an action too; it happens on resume
    retrain.rollback = StepError(reason, message, ctx.now)
    ctx.recheck()


def _roll_back(ctx: Context, retrain: RetrainStatus, why: StepError) -> None:
    """Restore the recorded previous image (never the one that failed), then close the retrain."""
    previous = retrain.previous_image
    if not ctx.may_act or previous is None:
        return
    if ctx.observed.deployment.image != previous:  # equal: patched already, the status write was lost
        ctx.actions.append(PatchImage(previous, rollback=True))
    ctx.count(Metric.ROLLOUTS, "failed")
    ctx.count(Metric.ROLLBACKS)
    ctx.emit("RolloutFailed", f"{retrain.target_image}: {why.reason}: {why.message}", warning=True)
    ctx.emit("RolledBack", f"restored {previous} on {ctx.spec.serving.deployment}", warning=True)
    ctx.finish(retrain, Outcome.ROLLED_BACK, why.reason, why.message, "failed")


def _failed(ctx: Context, retrain: RetrainStatus, reason: str, message: str) -> None:
    ctx.count(Metric.ROLLOUTS, "failed")
    ctx.emit("RolloutFailed", f"retrain {retrain.sequence}: {reason}: {message}", warning=True)
    ctx.finish(retrain, Outcome.ROLLOUT_FAILED, reason, message, "failed")


def _promote(ctx: Context, retrain: RetrainStatus) -> None:
    best = retrain.best_candidate()
    ctx.push_history(ctx.status.model, replaced_by=retrain.version, reason=f"Retrained after {retrain.trigger}")
    ctx.status.model = ModelStatus(
        version=retrain.version,
        image=retrain.target_image,
        uri=best.model if best else None,
        experiment=best.experiment if best else None,
        rev=best.rev if best else None,
        metrics=best.metrics if best else None,
        deployed_at=ctx.now,
    )
    ctx.count(Metric.ROLLOUTS, "succeeded")
    message = f"{ctx.spec.serving.deployment} serves {retrain.version} ({retrain.target_image})"
    ctx.emit("RolledOut", message)
    ctx.finish(retrain, Outcome.ROLLED_OUT, "RolledOut", message, "succeeded")

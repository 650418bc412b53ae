"""Step 2, serving: what the serving Deployment runs, and whether it and its container exist. Pure.

``status.model`` follows the Deployment's image (step 2), also when someone else changed it.
Setup problems (step 2a): the serving Deployment or its container does not exist.

Nothing starts while one lasts (no drift Job, no training Job, no rollout): a check of a model
nobody serves, or a retrain that cannot be rolled out, is wasted work. A retrain already packaged
waits in RollingOut and rolls out when the Deployment appears (its watch event kicks a reconcile).
"""

from __future__ import annotations

from freshness_operator.core import names
from freshness_operator.core.context import Context
from freshness_operator.core.status import ModelStatus, RetrainStage


def problem(ctx: Context) -> tuple[str, str] | None:
    """(reason, message) of a setup problem, or None; the message says which field to fix."""
    dep, serving = ctx.observed.deployment, ctx.spec.serving
    if not dep.found:
        return (
            "ServingDeploymentNotFound",
            f"Deployment {serving.deployment} (spec.serving.deployment) does not exist; "
            "no drift check, retrain or rollout starts until it does",
        )
    if not dep.container_found:
        have = ", ".join(dep.containers) or "none"
        return (
            "ContainerNotFound",
            f"Deployment {serving.deployment} has no container {serving.container} (spec.serving.container); "
            f"its containers: {have}",
        )
    return None


def shared(ctx: Context) -> None:
    """Step 2b: DeploymentShared warns when other ModelDeployments roll the same Deployment."""
    peers, deployment = ctx.observed.peers, ctx.spec.serving.deployment
    if not peers:
        ctx.condition("DeploymentShared", "False", "Exclusive", f"no other ModelDeployment rolls {deployment}")
        return
    message = (
        f"ModelDeployment(s) {', '.join(sorted(peers))} also roll Deployment {deployment}: each overwrites "
        "the other's image and model history; keep one ModelDeployment per serving Deployment"
    )
    if ctx.condition("DeploymentShared", "True", "SharedServingDeployment", message):
        ctx.emit("SharedServingDeployment", message, warning=True)


def check(ctx: Context) -> None:
    """Step 2a: the ServingFound condition; a Warning Event (and log line) when a problem appears."""
    found = problem(ctx)
    if found is not None:
        reason, message = found
        if ctx.condition("ServingFound", "False", reason, message):
            ctx.emit(reason, message, warning=True)
        return
    serving = ctx.spec.serving
    before = ctx.status.condition("ServingFound")
    was_missing = before is not None and before.status == "False"
    ctx.condition("ServingFound", "True", "Found", f"Deployment {serving.deployment}, container {serving.container}")
    if was_missing:
        ctx.emit("ServingFound", f"Deployment {serving.deployment} and container {serving.container} exist now")


def track(ctx: Context) -> None:
    """Step 2: status.model follows what the Deployment runs (first sight, or changed by someone else)."""
    dep, st = ctx.observed.deployment, ctx.status
    c = st.retrain
    if not dep.container_found or dep.image is None:
        return
    if c is not None and (c.stage is RetrainStage.ROLLING_OUT or dep.image == c.target_image):
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

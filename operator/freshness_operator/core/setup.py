"""Setup problems: the serving Deployment or its container does not exist. Pure.

Nothing starts while one lasts (no drift Job, no training Job, no rollout): a check of a model
nobody serves, or a retrain that cannot be rolled out, is wasted work. A retrain already packaged
waits in RollingOut and rolls out when the Deployment appears (its watch event kicks a reconcile).
"""

from __future__ import annotations

from freshness_operator.core.context import Context


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

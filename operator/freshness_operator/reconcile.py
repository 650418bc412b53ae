"""One reconcile of one ModelDeployment: load -> observe -> decide -> act -> write status.

Touches the API only through ``kube.Kube``. Job creations, deletions and the Deployment patch
run before the status write (they are idempotent, so a failed write just repeats them);
Events and counters run after it, so a conflicting write does not emit them twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from freshness_operator import KIND, builders, labels
from freshness_operator.core import SpecError, decide, parse_spec
from freshness_operator.core import actions as act
from freshness_operator.core.decide import Decision, reject_spec
from freshness_operator.core.serde import from_dict, to_dict
from freshness_operator.core.spec import Spec
from freshness_operator.core.status import Status
from freshness_operator.kube import Kube
from freshness_operator.metrics import Metrics
from freshness_operator.observe import observe
from freshness_operator.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deps:
    kube: Kube
    settings: Settings
    metrics: Metrics


def utcnow() -> datetime:
    """The only clock of the operator; the core gets ``now`` from here."""
    return datetime.now(UTC).replace(microsecond=0)


Peers = Callable[[str, str], Iterable[str]]


def no_peers(namespace: str, deployment: str) -> Iterable[str]:
    return ()


async def reconcile(
    deps: Deps, namespace: str, name: str, peers: Peers = no_peers
) -> tuple[datetime | None, str | None]:
    """Reconcile once. Returns when to look again and the resourceVersion the status write made.

    ``peers(namespace, deployment)`` names the ModelDeployments serving through that Deployment.
    """
    body = await deps.kube.get_mdep(namespace, name)
    if body is None:
        deps.metrics.forget(namespace, name)
        return None, None
    meta = body["metadata"]
    owner = builders.Owner(name=name, namespace=namespace, uid=meta["uid"])
    generation = int(meta.get("generation") or 0)
    status = from_dict(Status, body.get("status") or {})
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError as exc:
        decision = reject_spec(status=status, error=exc, now=utcnow(), generation=generation)
        return None, await _commit(deps, body, owner, None, decision)
    jobs, pods = await deps.kube.list_children(namespace, name)
    deployment = await deps.kube.get_deployment(namespace, spec.serving.deployment)
    check_now = (meta.get("annotations") or {}).get(labels.CHECK_NOW)
    others = tuple(sorted({n for n in peers(namespace, spec.serving.deployment) if n != name}))
    observed = observe(owner.uid, jobs, pods, deployment, spec.serving.container, check_now, others)
    decision = decide(name=name, spec=spec, status=status, observed=observed, now=utcnow(), generation=generation)
    return decision.requeue_at, await _commit(deps, body, owner, spec, decision)


async def _commit(
    deps: Deps, body: dict[str, Any], owner: builders.Owner, spec: Spec | None, decision: Decision
) -> str | None:
    where = f"{KIND} {owner.namespace}/{owner.name}"
    if spec is not None:
        for action in decision.actions:
            await _execute(deps, owner, spec, action, where)
    new_status = to_dict(decision.status)
    written = None
    if new_status != body.get("status"):
        result = await deps.kube.replace_status({**body, "status": new_status})
        written = result.get("metadata", {}).get("resourceVersion")
    for action in decision.actions:
        if isinstance(action, act.Emit):
            (log.warning if action.warning else log.info)("%s: %s: %s", where, action.reason, action.message)
            await deps.kube.post_event(owner, action.reason, action.message, warning=action.warning)
    deps.metrics.record(owner.namespace, owner.name, decision.actions)
    deps.metrics.update(owner.namespace, owner.name, spec, decision.status)
    return written


async def _execute(deps: Deps, owner: builders.Owner, spec: Spec, action: act.Action, where: str) -> None:
    kube = deps.kube
    image = spec.training.image or deps.settings.trainer_image
    manifest = None
    if isinstance(action, act.CreateDriftJob):
        manifest = builders.drift_job(owner, spec, action, image)
    elif isinstance(action, act.CreateTrainJob):
        manifest = builders.train_job(owner, spec, action, image)
    elif isinstance(action, act.CreatePackageJob):
        manifest = builders.package_job(owner, spec, action, image)
    elif isinstance(action, act.DeleteJob):
        log.info("%s: deleting old Job %s", where, action.name)
        await kube.delete_job(owner.namespace, action.name)
    elif isinstance(action, act.PatchImage):
        log.info("%s: %s image %s", where, "restoring" if action.rollback else "rolling out", action.image)
        patch = builders.image_patch(spec.serving.container, action.image)
        await kube.patch_deployment(owner.namespace, spec.serving.deployment, patch)
    if manifest is not None:
        created = await kube.create_job(manifest)
        log.info("%s: Job %s %s", where, manifest["metadata"]["name"], "created" if created else "exists already")

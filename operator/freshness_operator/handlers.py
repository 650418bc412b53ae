"""kopf wiring: watch events become reconcile kicks. Each handler is a few lines.

ModelDeployment events, events of Jobs the operator created, events of their pods that are
stuck (unschedulable, image pull errors, a missing Secret, a crash loop: the Job itself does not
change then), and events of Deployments that a ModelDeployment serves through (found with a
kopf index) all kick the same reconcile. The same watches feed the kopf indexes that
``cache.Cache`` serves every reconcile's reads from (kopf runs no handler before each index has its
initial LIST, so nothing acts on a half-known world after a start). The index handlers are
``async``: they do no I/O, and kopf runs a plain ``def`` handler in a thread pool, a hand-off per
object per event (the largest cost of a start-up at 1,000 objects after ``readiness``). No
finalizers and no kopf state annotations: nothing blocks deletion, owner references GC the Jobs.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from freshness_operator import GROUP, KIND, PLURAL, VERSION, labels
from freshness_operator.cache import Cache, slim_deployment, slim_job, slim_mdep, slim_pod
from freshness_operator.core import names
from freshness_operator.kube import Kube
from freshness_operator.leadership import Leadership
from freshness_operator.metrics import Metrics
from freshness_operator.observe import pod_waiting
from freshness_operator.reconcile import Deps, reconciler
from freshness_operator.reconcile_queue import ReconcileQueue
from freshness_operator.settings import Settings

WATCH_SERVER_TIMEOUT = 300  # the API server ends each watch after this; kopf starts a new one
WATCH_CLIENT_TIMEOUT = 330  # and a watch that silently stalls (no data, no close) is dropped after this
WATCH_CONNECT_TIMEOUT = 30


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf's settings: bounded watches, so a silently stalled one cannot stop the operator seeing events."""
    settings.posting.level = logging.WARNING  # our own Events say what happened; kopf's only on trouble
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = WATCH_CONNECT_TIMEOUT


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **indexes: Any) -> None:
    configure(settings)
    config: Settings = memo["settings"]
    metrics: Metrics = memo["metrics"]
    cache = Cache()
    cache.bind(indexes)  # live views: kopf fills them from the watches before any other handler runs
    kube = await Kube.connect()
    deps = Deps(kube=kube, settings=config, metrics=metrics, cache=cache)
    memo["kube"], memo["cache"] = kube, cache
    memo["queue"] = ReconcileQueue(reconciler(deps), metrics=metrics)  # timers on wall_time
    memo["leadership"] = Leadership(config, memo["queue"], metrics, kube)  # a standby's queue waits for the Lease
    memo["leadership"].start()


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    await memo["leadership"].close()  # stops the queue, then frees the Lease if held
    kube: Kube = memo["kube"]
    await kube.close()


@kopf.index(GROUP, VERSION, PLURAL)
async def serving_index(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str]:
    """(namespace, serving Deployment) -> ModelDeployment names, to route Deployment events."""
    return {(namespace or "", str(spec.get("serving", {}).get("deployment", ""))): name}


@kopf.index(GROUP, VERSION, PLURAL)
async def child_index(namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], str]:
    """(namespace, the children's deployment label value) -> ModelDeployment name, to route pod events."""
    return {(namespace or "", names.label_value(name)): name}


@kopf.index(GROUP, VERSION, PLURAL)
async def mdep_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, name) -> the ModelDeployment, which reconciles read instead of GETting it."""
    return {(namespace or "", name): slim_mdep(body)}


@kopf.index("batch", "v1", "jobs", labels={labels.MANAGED_BY: labels.MANAGER})
async def job_index(namespace: str | None, meta: kopf.Meta, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, deployment label) -> the operator's Jobs (slim), instead of a LIST per reconcile."""
    return {(namespace or "", str((meta.get("labels") or {}).get(labels.DEPLOYMENT, ""))): slim_job(body)}


@kopf.index("", "v1", "pods", labels={labels.MANAGED_BY: labels.MANAGER})
async def pod_index(namespace: str | None, meta: kopf.Meta, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, deployment label) -> the step pods (slim: status and identity)."""
    return {(namespace or "", str((meta.get("labels") or {}).get(labels.DEPLOYMENT, ""))): slim_pod(body)}


@kopf.index("apps", "v1", "deployments")
async def deployment_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, name) -> every Deployment, slim (containers' names and images, replicas, rollout
    status). All of them, since a ModelDeployment may name any, including one created or listed
    before it; kopf watches them all for the kicks anyway."""
    return {(namespace or "", name): slim_deployment(body)}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def modeldeployment_event(
    event: kopf.RawEvent, namespace: str | None, name: str, meta: kopf.Meta, memo: Any, **kwargs: Any
) -> None:
    queue: ReconcileQueue = memo["queue"]
    queue.serving = kwargs["serving_index"]  # kopf keeps the index current; reconciles read peers from it
    key = (namespace or "", name)
    if event["type"] == "DELETED":
        queue.forget(key)
        cache: Cache = memo["cache"]
        cache.forget(*key)
    elif not queue.is_own_write(key, meta.get("resourceVersion")):
        queue.kick(key)
    # Others rolling the same Deployment learn of this one (DeploymentShared) as it comes and goes.
    serving = ((event.get("object") or {}).get("spec") or {}).get("serving") or {}
    for peer in queue.serving.get((key[0], str(serving.get("deployment", ""))), ()):
        if peer != name:
            queue.kick((key[0], peer))


@kopf.on.event("batch", "v1", "jobs", labels={labels.MANAGED_BY: labels.MANAGER})
async def job_event(namespace: str | None, meta: kopf.Meta, memo: Any, **_: Any) -> None:
    queue: ReconcileQueue = memo["queue"]
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            queue.kick((namespace or "", ref["name"]))


@kopf.on.event("", "v1", "pods", labels={labels.MANAGED_BY: labels.MANAGER})
async def step_pod_event(namespace: str | None, body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """Only a stuck pod kicks: its recovery shows in the Job's status (ready/active), which kicks too."""
    if pod_waiting(dict(body)) is None:
        return
    queue: ReconcileQueue = memo["queue"]
    index: kopf.Index[tuple[str, str], str] = kwargs["child_index"]
    owner = (body.get("metadata", {}).get("labels") or {}).get(labels.DEPLOYMENT, "")
    for mdep in index.get((namespace or "", owner), []):
        queue.kick((namespace or "", mdep))


@kopf.on.event("apps", "v1", "deployments")
async def deployment_event(namespace: str | None, name: str, memo: Any, **kwargs: Any) -> None:
    queue: ReconcileQueue = memo["queue"]
    index: kopf.Index[tuple[str, str], str] = kwargs["serving_index"]
    for mdep in index.get((namespace or "", name), []):
        queue.kick((namespace or "", mdep))

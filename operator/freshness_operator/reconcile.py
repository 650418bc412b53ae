"""One reconcile of one ModelDeployment: load -> observe -> decide -> act -> write status.

Reads come from ``cache.Cache`` (the watches; GETs only where it cannot order two copies, and after
a conflict); writes go through ``kube.Kube`` and their answers are given to the cache, so the next
reconcile sees them before the watch does. Job creations, deletions and the Deployment patch
run before the status write (they are idempotent, so a failed write just repeats them);
Events and counters run after it, so a conflicting write does not emit them twice. The core
never patches the Deployment in the decision that records the intent (``previousImage``, a
rollback): that decision asks to be decided again at once, and the next reconcile reads the
recorded intent back from the API before it sends the patch.

An action the API refuses for good (``ApiError.permanent``) is fed back: the reconcile decides
again with it in ``observed.refused``, and the core fails the step that asked for it. An action
that keeps failing with a retryable error goes to the reconcile queue's backoff; past
``RETRIES_BEFORE_REPORTING`` failed reconciles, Ready turns False with reason ApiRetrying.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from freshness_operator import KIND, builders, labels
from freshness_operator.cache import Cache, Unordered
from freshness_operator.core import SpecError, decide, parse_spec
from freshness_operator.core import actions as act
from freshness_operator.core.decide import Decision, reject_spec, retrying
from freshness_operator.core.observed import Refusal
from freshness_operator.core.owner import Owner
from freshness_operator.core.serde import from_dict, to_dict
from freshness_operator.core.spec import Spec
from freshness_operator.core.status import Status
from freshness_operator.kube import TRANSPORT_ERRORS, ApiError, KubeApi
from freshness_operator.metrics import Metrics
from freshness_operator.observe import observe
from freshness_operator.settings import Settings

log = logging.getLogger(__name__)
_TRAIN_JOB = re.compile(r"-train-[0-9]+-[0-9]+$")  # core.names.train_job
MAX_REFUSALS = 3  # re-decisions after refusals in one reconcile; more go to the reconcile queue's backoff
STATUS_RETRIES = 5  # status writes put again after a 409 that only metadata caused
RETRIES_BEFORE_REPORTING = 4  # failed reconciles in a row (1+2+5+10 s of backoff) before ApiRetrying
Retryable = (ApiError, *TRANSPORT_ERRORS)


class Refused(Exception):
    """The API refused an action for good; ``refusal`` is what the core is told."""

    def __init__(self, refusal: Refusal, error: ApiError) -> None:
        super().__init__(refusal.describe())
        self.refusal, self.error = refusal, error


class ActionFailed(Exception):
    """An action failed with an error worth retrying; ``obj`` names the object it acted on."""

    def __init__(self, obj: str, error: Exception) -> None:
        super().__init__(f"{obj}: {error}")
        self.obj, self.error = obj, error


def utcnow() -> datetime:
    """The clock of decisions: wall time in whole seconds, as the status writes times (``Deps.clock``).

    Reconciles read it once per decision and give it to the core as ``now``. Other clocks have
    other jobs: the reconcile queue sets its timers on ``wall_time`` (a deadline measured from a
    truncated ``now`` fired up to a second late), the leader election and the cache measure
    intervals on ``time.monotonic`` (a wall-clock jump must not end a lease), Events are stamped by
    ``kube`` and the model-age gauge by ``metrics`` at scrape time.
    """
    return datetime.now(UTC).replace(microsecond=0)


def wall_time() -> datetime:
    """Wall time to the microsecond: what the reconcile queue measures its timers' delays on, so
    a deadline at a whole second (as decisions and the status have them) fires at that second."""
    return datetime.now(UTC)


Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Deps:
    kube: KubeApi
    settings: Settings
    metrics: Metrics
    cache: Cache
    clock: Clock = utcnow


Peers = Callable[[str, str], Iterable[str]]
# One reconcile of (namespace, name): (when to look again, the resourceVersion of the status written).
Reconcile = Callable[[str, str, Peers, int], Awaitable[tuple[datetime | None, str | None]]]


def reconciler(deps: Deps) -> Reconcile:
    """``reconcile`` with its dependencies bound: what the reconcile queue runs."""

    async def run(namespace: str, name: str, peers: Peers, failures: int) -> tuple[datetime | None, str | None]:
        return await reconcile(deps, namespace, name, peers, failures)

    return run


def no_peers(namespace: str, deployment: str) -> Iterable[str]:
    return ()


async def reconcile(
    deps: Deps, namespace: str, name: str, peers: Peers = no_peers, failures: int = 0
) -> tuple[datetime | None, str | None]:
    """Reconcile once. Returns when to look again and the resourceVersion the status write made.

    ``peers(namespace, deployment)`` names the ModelDeployments serving through that Deployment;
    ``failures`` counts the reconciles before this one that failed in a row (the reconcile queue's backoff).
    """
    body = await _read_mdep(deps, namespace, name)
    if body is None:
        deps.metrics.forget(namespace, name)
        return None, None
    meta = body["metadata"]
    owner = Owner(name=name, namespace=namespace, uid=meta["uid"])
    generation = int(meta.get("generation") or 0)
    status = from_dict(Status, body.get("status") or {})
    try:
        spec = parse_spec(body.get("spec") or {})
    except SpecError as exc:
        decision = reject_spec(status=status, error=exc, now=deps.clock(), generation=generation)
        return None, await _commit(deps, body, owner, None, decision)
    jobs, pods = deps.cache.children(namespace, name)
    deployment = await _read_deployment(deps, namespace, spec.serving.deployment)
    check_now = (meta.get("annotations") or {}).get(labels.CHECK_NOW)
    others = tuple(sorted({n for n in peers(namespace, spec.serving.deployment) if n != name}))
    observed = observe(owner.uid, jobs, pods, deployment, spec.serving.container, check_now, others)
    refusal: Refusal | None = None
    for _ in range(MAX_REFUSALS):
        seen = replace(observed, refused=refusal)
        decision = decide(name=name, spec=spec, status=status, observed=seen, now=deps.clock(), generation=generation)
        try:
            return decision.requeue_at, await _commit(deps, body, owner, spec, decision)
        except Refused as exc:
            log.warning("%s %s/%s: %s refused for good: %s", KIND, namespace, name, exc.refusal.action, exc)
            refusal = exc.refusal
        except ActionFailed as exc:
            if failures + 1 >= RETRIES_BEFORE_REPORTING:
                await _report_retrying(deps, body, owner, status, exc, generation)
            raise exc.error from exc
    raise ApiError(0, "RefusedAgain", f"{KIND} {namespace}/{name}: actions refused {MAX_REFUSALS} times in a row")


async def _read_mdep(deps: Deps, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return deps.cache.mdep(namespace, name)
    except Unordered as exc:
        log.info("%s %s/%s: read from the API: %s", KIND, namespace, name, exc)
        body = await deps.kube.get_mdep(namespace, name)
        if body is not None:
            deps.cache.wrote_mdep(body)
        return body


async def _read_deployment(deps: Deps, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return deps.cache.deployment(namespace, name)
    except Unordered as exc:
        log.info("Deployment %s/%s: read from the API: %s", namespace, name, exc)
        body = await deps.kube.get_deployment(namespace, name)
        if body is not None:
            deps.cache.wrote_deployment(body)
        return body


async def _report_retrying(
    deps: Deps, body: dict[str, Any], owner: Owner, status: Status, exc: ActionFailed, generation: int
) -> None:
    """Ready=False ApiRetrying on the status as it was; best effort (the API may be what fails)."""
    error = f"{exc}; retrying with backoff"
    decision = retrying(status=status, error=error, now=deps.clock(), generation=generation)
    try:
        await _commit(deps, body, owner, None, decision)
    except Retryable as write_error:
        log.warning("%s %s/%s: ApiRetrying not recorded: %s", KIND, owner.namespace, owner.name, write_error)


async def _commit(deps: Deps, body: dict[str, Any], owner: Owner, spec: Spec | None, decision: Decision) -> str | None:
    where = f"{KIND} {owner.namespace}/{owner.name}"
    if spec is not None:
        for action in decision.actions:
            await _execute(deps, owner, spec, action, where)
    new_status = to_dict(decision.status)
    written = None
    if new_status != body.get("status"):
        result = await _write_status(deps, body, new_status)
        written = result.get("metadata", {}).get("resourceVersion")
    for action in decision.actions:
        if isinstance(action, act.Emit):
            (log.warning if action.warning else log.info)("%s: %s: %s", where, action.reason, action.message)
            await deps.kube.post_event(owner, action.reason, action.message, warning=action.warning)
    deps.metrics.record(owner.namespace, owner.name, decision.actions)
    deps.metrics.update(owner.namespace, owner.name, spec, decision.status)
    return written


async def _write_status(deps: Deps, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """PUT the status, guarded by resourceVersion. A 409 caused only by someone else's metadata
    write (an annotation, a label) leaves the decision valid: it is put again on the fresh object,
    so a stream of annotations cannot starve the operator's writes. Any other change re-raises the
    409 and the queue decides again."""
    meta = body["metadata"]
    for _ in range(STATUS_RETRIES):
        try:
            written = await deps.kube.replace_status({**body, "status": status})
            deps.cache.wrote_mdep(written)
            return written
        except ApiError as exc:
            if exc.status != 409:
                raise
            # The watch may not have shown the newer object yet: read it from the API, and give it
            # to the cache, so the reconcile the queue reruns after this conflict sees it too.
            fresh = await deps.kube.get_mdep(meta["namespace"], meta["name"])
            if fresh is not None:
                deps.cache.wrote_mdep(fresh)
            if fresh is None or not _same_inputs(body, fresh):
                raise
            body = fresh
    written = await deps.kube.replace_status({**body, "status": status})
    deps.cache.wrote_mdep(written)
    return written


def _same_inputs(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """True when nothing ``decide`` reads from the object changed: spec (generation), status, check-now."""
    a, b = before["metadata"], now["metadata"]
    return (
        a.get("uid") == b.get("uid")
        and a.get("generation") == b.get("generation")
        and before.get("status") == now.get("status")
        and (a.get("annotations") or {}).get(labels.CHECK_NOW) == (b.get("annotations") or {}).get(labels.CHECK_NOW)
    )


async def _execute(deps: Deps, owner: Owner, spec: Spec, action: act.Action, where: str) -> None:
    """Run one action; a permanent refusal raises ``Refused``, a retryable error ``ActionFailed``."""
    obj, target = _object_of(owner, spec, action)
    try:
        await _send(deps, owner, spec, action, where)
    except ApiError as exc:
        if exc.permanent and isinstance(action, REFUSABLE):
            message = exc.message or str(exc)
            raise Refused(Refusal(type(action).__name__, target, obj, exc.status, exc.reason, message), exc) from exc
        raise ActionFailed(obj, exc) from exc
    except TRANSPORT_ERRORS as exc:
        raise ActionFailed(obj, exc) from exc


REFUSABLE = (act.CreateDriftJob, act.CreateTrainJob, act.CreatePackageJob, act.PatchImage)


def _object_of(owner: Owner, spec: Spec, action: act.Action) -> tuple[str, str]:
    """The object an action acts on, for messages, and the Job name or image it carries."""
    if isinstance(action, act.PatchImage):
        return f"Deployment {owner.namespace}/{spec.serving.deployment}", action.image
    name = getattr(action, "name", "")
    return f"Job {owner.namespace}/{name}", name


async def _send(deps: Deps, owner: Owner, spec: Spec, action: act.Action, where: str) -> None:
    await act.dispatch(action, _Sender(deps, owner, spec, where))


@dataclass(frozen=True)
class _Sender:
    """The API side of ``act.dispatch``: Jobs and the Deployment patch. Events and counters are
    sent after the status write (``_commit``), so here they do nothing."""

    deps: Deps
    owner: Owner
    spec: Spec
    where: str

    async def create_job(self, action: act.CreateJob) -> None:
        image = self.spec.training.image or self.deps.settings.trainer_image
        manifest = builders.job(self.owner, self.spec, action, image)
        if (service := builders.train_service(self.owner, manifest)) is not None:
            await self.deps.kube.create_service(service)  # first: the pods' names must exist before they start
        created = await self.deps.kube.create_job(manifest)
        if created is not None:
            self.deps.cache.created_job(created)
        log.info("%s: Job %s %s", self.where, manifest["metadata"]["name"], "created" if created else "exists already")

    async def delete_job(self, action: act.DeleteJob) -> None:
        log.info("%s: deleting old Job %s", self.where, action.name)
        await self.deps.kube.delete_job(self.owner.namespace, action.name)
        self.deps.cache.deleted_job(self.owner.namespace, self.owner.name, action.name)
        if _TRAIN_JOB.search(action.name):  # a multi-node candidate's Service goes with its Job
            await self.deps.kube.delete_service(self.owner.namespace, action.name)

    async def patch_image(self, action: act.PatchImage) -> None:
        log.info("%s: %s image %s", self.where, "restoring" if action.rollback else "rolling out", action.image)
        patch = builders.image_patch(self.spec.serving.container, action.image)
        written = await self.deps.kube.patch_deployment(self.owner.namespace, self.spec.serving.deployment, patch)
        self.deps.cache.wrote_deployment(written)

    async def emit(self, action: act.Emit) -> None:
        pass

    async def count(self, action: act.Count) -> None:
        pass

    async def observe_duration(self, action: act.ObserveDuration) -> None:
        pass

    async def observe_queued(self, action: act.ObserveQueued) -> None:
        pass

"""Reduce raw cluster objects (Jobs, their pods, the serving Deployment) to core observations.

Pure: takes dicts as the API returns them. Step results are read from the finished pod's
termination message and validated with ``freshness_contract``, which types them; a missing,
oversized or malformed message becomes a failed step with that reason, never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import freshness_contract as contract
from freshness_contract.launch import COMPLETION_INDEX_ANNOTATION

from freshness_operator import labels
from freshness_operator.core.observed import (
    DeploymentObservation,
    JobKind,
    JobObservation,
    JobState,
    Observed,
    StepOutcome,
    Waiting,
)
from freshness_operator.core.serde import parse_time

_SEQUENCE_LABEL = {JobKind.DRIFT: labels.CHECK, JobKind.TRAIN: labels.RETRAIN, JobKind.PACKAGE: labels.RETRAIN}
# The spec field that sets each step's Job deadline, named when a step runs out of time.
TIMEOUT_FIELD = {
    JobKind.DRIFT: "spec.drift.timeout",
    JobKind.TRAIN: "spec.training.timeout",
    JobKind.PACKAGE: "spec.package.timeout",
}
# Container waiting reasons that mean "this will not start by itself" (kubelet's names).
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
        "RunContainerError",
    }
)


def observe(
    owner_uid: str,
    jobs: Iterable[dict[str, Any]],
    pods: Iterable[dict[str, Any]],
    deployment: dict[str, Any] | None,
    container: str,
    check_now: str | None = None,
    peers: tuple[str, ...] = (),
) -> Observed:
    pods_by_job: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Job":
                pods_by_job.setdefault(ref["uid"], []).append(pod)
    observed = []
    for job in jobs:
        if not _owned_by(job, owner_uid):
            continue
        obs = job_observation(job, pods_by_job.get(job["metadata"]["uid"], []))
        if obs is not None:
            observed.append(obs)
    return Observed(
        jobs=tuple(observed),
        deployment=deployment_observation(deployment, container),
        check_now=check_now,
        peers=peers,
    )


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def _time(value: str | None) -> datetime | None:
    return parse_time(value) if value else None


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def job_observation(job: dict[str, Any], pods: list[dict[str, Any]]) -> JobObservation | None:
    meta = job["metadata"]
    lbl = meta.get("labels") or {}
    try:
        kind = JobKind(lbl[labels.STEP])
        sequence = int(lbl[_SEQUENCE_LABEL[kind]])
        index = int(lbl[labels.CANDIDATE]) if labels.CANDIDATE in lbl else None
        overrides = json.loads((meta.get("annotations") or {}).get(labels.OVERRIDES, "{}"))
    except (ValueError, KeyError, TypeError):
        return None  # not one of ours in a shape we know; leave it alone
    status = job.get("status") or {}
    complete, failed = _condition(job, "Complete"), _condition(job, "Failed")
    state = JobState.SUCCEEDED if complete else JobState.FAILED if failed else JobState.RUNNING
    outcome = None
    finished = None
    if complete:
        finished = _time(status.get("completionTime") or complete.get("lastTransitionTime"))
        outcome = _succeeded_outcome(kind, pods)
    elif failed:
        finished = _time(failed.get("lastTransitionTime"))
        outcome = _failed_outcome(kind, failed, pods)
    # Suspended and unfinished: Kueue holds it until its ClusterQueue admits it. Its startTime is
    # set on admission (and reset on every resume: activeDeadlineSeconds counts from there).
    queued = bool((job.get("spec") or {}).get("suspend")) and state is JobState.RUNNING
    queue = lbl.get(labels.KUEUE_QUEUE)
    created = _time(meta.get("creationTimestamp"))
    return JobObservation(
        name=meta["name"],
        kind=kind,
        sequence=sequence,
        state=state,
        index=index,
        overrides=overrides if isinstance(overrides, dict) else {},
        outcome=outcome,
        started_at=_time(status.get("startTime")) or (None if queued or queue else created),
        finished_at=finished,
        waiting=pods_waiting(pods) if state is JobState.RUNNING else None,
        queue=queue,
        queued=queued,
        created_at=created,
    )


def pod_waiting(pod: dict[str, Any]) -> Waiting | None:
    """Why this pod makes no progress, or None: unschedulable, or a container stuck waiting. Pure."""
    status = pod.get("status") or {}
    name = str(pod["metadata"].get("name", ""))
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("reason"):
            return Waiting(str(cond["reason"]), str(cond.get("message") or "the pod cannot be scheduled"), name)
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in STUCK_REASONS:
            message = str(waiting.get("message") or f"container {cs.get('name')} is waiting")
            return Waiting(str(reason), message, name)
    return None


def pods_waiting(pods: list[dict[str, Any]]) -> Waiting | None:
    """The first stuck pod among a running Job's pods (newest first)."""
    newest = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    return next((w for p in newest if (w := pod_waiting(p)) is not None), None)


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == labels.CONTAINER:
            state = cs.get("state") or {}
            term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
            return dict(term) if term else None
    return None


def _latest(pods: list[dict[str, Any]], phase: str) -> dict[str, Any] | None:
    matching = [p for p in pods if (p.get("status") or {}).get("phase") == phase]
    return max(matching, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def _rank(pod: dict[str, Any]) -> str | None:
    """A multi-node candidate's pod: its completion index (its node rank); None for a plain Job's."""
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    return str(value) if value is not None else None


def _first_failed(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The failed pod that finished first: when one rank fails, the others fail after it (their peer
    is gone), so the first one holds the cause. Plain Jobs: the newest failed pod, as before."""
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not any(_rank(p) is not None for p in failed):
        return _latest(pods, "Failed")

    def finished(p: dict[str, Any]) -> str:
        term = _terminated(p) or {}
        return str(term.get("finishedAt") or "~")  # unknown sorts last

    return min(failed, key=lambda p: (finished(p), int(_rank(p) or 0)), default=None)


def outcome_of(step: JobKind, message: str | None) -> StepOutcome:
    """A succeeded pod's termination message as the step's outcome: its typed section, or why not."""
    try:
        result = contract.parse(message, expected_step=step.value)
    except contract.ResultError as exc:
        return StepOutcome(False, exc.reason, exc.message)
    if not result.ok:
        return StepOutcome(False, result.reason, result.message)
    return StepOutcome(True, result.reason, result.message, result.section)


def _succeeded_outcome(step: JobKind, pods: list[dict[str, Any]]) -> StepOutcome:
    # A multi-node candidate: rank 0 (completion index 0) alone writes the result.
    pod = _latest([p for p in pods if _rank(p) in (None, "0")], "Succeeded")
    term = _terminated(pod) if pod else None
    message = term.get("message") if term else None
    return outcome_of(step, message if isinstance(message, str) else None)


def _failed_outcome(step: JobKind, condition: dict[str, Any], pods: list[dict[str, Any]]) -> StepOutcome:
    pod = _first_failed(pods)
    term = _terminated(pod) if pod else None
    rank = _rank(pod) if pod else None
    if term:
        try:
            message = term.get("message")
            result = contract.parse(message if isinstance(message, str) else None, expected_step=step.value)
            if not result.ok:
                where = f"rank {rank} (pod {pod['metadata'].get('name')}): " if pod and rank is not None else ""
                return StepOutcome(False, result.reason, where + result.message)
        except contract.ResultError:
            pass  # the Job's own failure reason says more than a missing result here
    reason = condition.get("reason") or "JobFailed"
    detail = condition.get("message") or "the Job failed"
    if term:
        detail += f" (exit code {term.get('exitCode')}, {term.get('reason') or 'Error'})"
    if reason == "DeadlineExceeded":
        detail += f"; raise {TIMEOUT_FIELD[step]} if the step needs longer"
    return StepOutcome(False, reason, detail)


def deployment_observation(dep: dict[str, Any] | None, container: str) -> DeploymentObservation:
    if dep is None:
        return DeploymentObservation()
    containers = dep["spec"]["template"]["spec"].get("containers") or []
    image = next((c.get("image") for c in containers if c.get("name") == container), None)
    status = dep.get("status") or {}
    exceeded, message = False, ""
    generation = int(dep["metadata"].get("generation") or 0)
    observed_generation = int(status.get("observedGeneration") or 0)
    # A deadline exceeded by an older rollout says nothing until the controller saw the new spec.
    for cond in status.get("conditions") or [] if observed_generation >= generation else []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            exceeded, message = cond.get("status") == "False", cond.get("message") or ""
    return DeploymentObservation(
        found=True,
        image=image,
        container_found=image is not None,
        serving_for=(dep["metadata"].get("labels") or {}).get(labels.SERVING_FOR),
        containers=tuple(str(c.get("name")) for c in containers),
        generation=generation,
        observed_generation=observed_generation,
        replicas=int(dep["spec"].get("replicas", 1)),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
        progress_deadline_exceeded=exceeded,
        message=message,
    )

"""End a step pod as its container would. kwok leaves pods labelled ``modelfreshness.io/step``
Running; a test or a benchmark plays the step: it writes the step's result into the container's
termination message and ends the pod, as the kubelet would, by patching ``pods/status``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import freshness_contract as contract

from testkit.api import Api
from testkit.labels import CONTAINER

TRAINER_IMAGE = "registry.example/freshness-trainer:test"


def termination_patch(
    message: str | None,
    *,
    exit_code: int = 0,
    container: str = CONTAINER,
    image: str = TRAINER_IMAGE,
    now: float | None = None,
) -> dict[str, Any]:
    """The merge patch of ``pods/status`` that ends a one-container pod with ``exit_code`` and
    ``message`` (None: no termination message) in its container's terminated state. Pure."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": stamp,
        "finishedAt": stamp,
    }
    if message is not None:
        terminated["message"] = message
    return {
        "status": {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": container,
                    "image": image,
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"terminated": terminated},
                }
            ],
        }
    }


def finish_step_pod(
    api: Api,
    pod: dict[str, Any],
    doc: dict[str, Any] | None = None,
    *,
    raw: str | None = None,
    exit_code: int = 0,
) -> None:
    """End ``pod`` (as listed or watched) with result ``doc`` (encoded and validated by the
    contract) or the ``raw`` termination message, exiting ``exit_code``."""
    meta, main = pod["metadata"], pod["spec"]["containers"][0]
    message = contract.encode(doc) if doc is not None else raw
    api.request(
        "PATCH",
        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
        termination_patch(message, exit_code=exit_code, container=main["name"], image=main["image"]),
        content_type="application/merge-patch+json",
    )


def running_step_pod(pod: dict[str, Any]) -> bool:
    """True once kwok's pod-ready stage is done (phase Running with a podIP) and the pod is not
    being deleted: finishing it earlier would be undone by kwok."""
    status = pod.get("status") or {}
    return bool(
        status.get("phase") == "Running" and status.get("podIP") and not pod["metadata"].get("deletionTimestamp")
    )

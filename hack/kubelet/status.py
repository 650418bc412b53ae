"""The node's and the pods' status as the runner reports them. Pure (the clock aside).

The host IP is this machine's loopback address; the pod IP is the pod's own (hack/kubelet/network.py),
or the host's when pods share the host's network.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hack.kubelet.podspec import Refused

RUNNER_LABEL = "modelfreshness.io/runner"
POD_IP = "127.0.0.1"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_manifest(name: str) -> dict[str, Any]:
    """The runner's node: schedulable, labelled so manifests can target it."""
    capacity = {"cpu": "8", "memory": "16Gi", "pods": "20", "ephemeral-storage": "50Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {RUNNER_LABEL: "local", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def ready_status(at: str) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True", "reason": "ProcessRunnerReady",
                 "message": "dev-only process runner", "lastHeartbeatTime": at, "lastTransitionTime": at}
    return {"status": {"conditions": [condition], "addresses": [{"type": "InternalIP", "address": POD_IP}]}}


def pod_status(
    pod: dict[str, Any], phase: str, state: dict[str, Any], *, ready: bool, restarts: int,
    last_state: dict[str, Any] | None, pod_ip: str, image_id: str = "",
) -> dict[str, Any]:
    """A pods/status patch for the pod's one container in ``state`` (running, waiting or terminated)."""
    at, c = now(), pod["spec"]["containers"][0]
    is_ready = "True" if ready and "running" in state else "False"
    status = {"name": c["name"], "image": c.get("image", ""), "imageID": image_id, "ready": is_ready == "True",
              "restartCount": restarts, "started": "running" in state, "state": state}
    if last_state:
        status["lastState"] = last_state
    conditions = [{"type": t, "status": is_ready, "lastTransitionTime": at} for t in ("Ready", "ContainersReady")]
    return {"status": {"phase": phase, "hostIP": POD_IP, "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
                       "startTime": (pod.get("status") or {}).get("startTime") or at, "conditions": conditions,
                       "containerStatuses": [status]}}


def init_failed(name: str, code: int) -> list[dict[str, Any]]:
    terminated = {"exitCode": code, "reason": "Error"}
    return [{"name": name, "image": "", "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": terminated}}]


def why(state: dict[str, Any]) -> Refused | None:
    """A container that never started: its waiting reason, for the pod's status."""
    waiting = state.get("waiting")
    return Refused(waiting["reason"], waiting.get("message", "")) if waiting else None

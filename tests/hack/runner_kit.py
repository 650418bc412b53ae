"""The dev kubelet (hack/process_runner.py) as a subprocess against the test cluster, and pod helpers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit.wait import wait_for
from tests.conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
RUNNER_ONLY = "PROCESS_RUNNER_TEST_MARKER"  # set for the runner only: no pod may see it


@dataclass
class Runner:
    cluster: Cluster
    node: str
    namespace: str
    log: Path

    def pod(self, name: str, command: list[str], container: dict[str, Any] | None = None,
            **spec: Any) -> dict[str, Any]:
        """A pod bound to the runner's node, with the fields the API would otherwise default to refused values."""
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "nodeName": self.node,
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 5,
                "containers": [{"name": "main", "image": "none", "command": command, **(container or {})}],
                **spec,
            },
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
        return body

    def get(self, name: str) -> dict[str, Any]:
        out = self.cluster.kubectl("get", "pod", name, "-n", self.namespace, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def wait(self, name: str, what: str, probe: Callable[[dict[str, Any]], Any], timeout: float = 90) -> Any:
        return wait_for(f"pod {name}: {what}", lambda: probe(self.get(name)), timeout, self.tail)

    def finished(self, name: str, timeout: float = 90) -> dict[str, Any]:
        pod: dict[str, Any] = self.wait(
            name, "Succeeded or Failed", lambda p: p if p.get("status", {}).get("phase") in ("Succeeded", "Failed")
            else None, timeout)
        return pod

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def terminated(pod: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = pod["status"]["containerStatuses"][0]["state"]
    return state.get("terminated") or {}


def condition(pod: dict[str, Any], kind: str) -> str | None:
    for c in pod.get("status", {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return None


@contextlib.contextmanager
def start_runner(cluster: Cluster, work: Path, args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> Iterator[Runner]:
    """A process runner with its own node and namespace, stopped and cleaned up on exit."""
    if os.geteuid() != 0:
        pytest.skip("the process runner needs root (a mount namespace per container)")
    node, ns = f"runner-{uuid.uuid4().hex[:6]}", f"pr-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    env = {**cluster.env, RUNNER_ONLY: "1", "PYTHONPATH": str(ROOT), **(env or {})}
    log = work / "runner.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hack.process_runner", "--node", node, "--workdir",
                                 str(work / "pods"), *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    r = Runner(cluster, node, ns, log)
    try:
        wait_for("the runner's node to be Ready", lambda: "True" in cluster.kubectl(
            "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout, 60, r.tail)
        yield r
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        proc.terminate()
        proc.wait(timeout=30)
        cluster.kubectl("delete", "node", node, check=False)

"""Helpers for the operator's cluster tests: the operator as a subprocess and ``Kit``, kubectl
reads and step finishing in one namespace. Manifests and step results come from ``testkit``.

kwok leaves pods labelled ``modelfreshness.io/step`` Running; ``Kit.finish`` plays the step's
container: it writes the result into the pod's termination message and ends the pod, as the
kubelet would, by patching ``pods/status`` (``testkit.pods.termination_patch``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import freshness_contract as contract

from testkit.labels import DEPLOYMENT, STEP
from testkit.manifests import CRD, REPO, ServingDeploymentBuilder
from testkit.manifests import restricted_namespace as namespace_manifest
from testkit.net import free_port, http_ok
from testkit.pods import TRAINER_IMAGE, termination_patch
from testkit.process import log_tail, stop_process
from testkit.wait import wait_for
from tests.conftest import Cluster


@dataclass
class Operator:
    """``python -m freshness_operator`` against the test cluster."""

    cluster: Cluster
    namespaces: str
    log: Path
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the leader election settings, a KUBECONFIG

    def start(self) -> Operator:
        env = {
            **self.cluster.env,
            "FRESHNESS_NAMESPACES": self.namespaces,
            "FRESHNESS_METRICS_PORT": str(self.metrics_port),
            "FRESHNESS_HEALTH_PORT": str(self.health_port),
            "FRESHNESS_TRAINER_IMAGE": TRAINER_IMAGE,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "freshness_operator"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for("the operator's /healthz", self._healthy, 90, self.tail)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"operator exited\n{self.tail()}"
        return http_ok(f"http://127.0.0.1:{self.health_port}/healthz")

    def stop(self, *, kill: bool = False) -> None:
        stop_process(self.proc, kill=kill)

    def tail(self, lines: int = 60) -> str:
        return log_tail(self.log, lines, "operator log")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())


def apply_crd(cluster: Cluster) -> None:
    """Apply the CRD and wait until it is served. A CRD just created may have no
    status.conditions yet, which ``kubectl wait`` reports as an error rather than waiting."""
    cluster.kubectl("apply", "-f", str(CRD))
    established = ("wait", "--for=condition=Established", "crd/modeldeployments.modelfreshness.io", "--timeout=60s")
    wait_for("the CRD established", lambda: cluster.kubectl(*established, check=False).returncode == 0)


def restricted_namespace(cluster: Cluster, name: str) -> str:
    """A namespace enforcing the restricted Pod Security level: non-compliant step pods would be refused."""
    cluster.kubectl("apply", "-f", "-", input=json.dumps(namespace_manifest(name)))
    return name


class Kit:
    """kubectl-based reads and step finishing in one namespace."""

    def __init__(self, cluster: Cluster, namespace: str, operator: Operator) -> None:
        self.cluster, self.ns, self.operator = cluster, namespace, operator

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, "-n", self.ns, input=input, check=check)

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        out = self.kubectl("get", kind, name, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else {}

    def items(self, kind: str, selector: str) -> list[dict[str, Any]]:
        return list(json.loads(self.kubectl("get", kind, "-l", selector, "-o", "json").stdout)["items"])

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get("mdep", name).get("status") or {})

    def condition(self, name: str, type_: str) -> tuple[str, str]:
        for c in self.status(name).get("conditions") or []:
            if c["type"] == type_:
                return c["status"], c["reason"]
        return "", ""

    def jobs(self, mdep: str, step: str) -> list[str]:
        sel = f"{DEPLOYMENT}={mdep},{STEP}={step}"
        return sorted(j["metadata"]["name"] for j in self.items("jobs", sel))

    def events(self, name: str) -> list[str]:
        out = self.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
        return [e["reason"] for e in json.loads(out.stdout)["items"]]

    def event_messages(self, name: str, reason: str) -> list[str]:
        out = self.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
        return [e.get("message") or "" for e in json.loads(out.stdout)["items"] if e["reason"] == reason]

    def until(self, what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
        return wait_for(
            what, probe, timeout, lambda: f"status: {json.dumps(self.status_brief())}\n{self.operator.tail()}"
        )

    def status_brief(self) -> dict[str, Any]:
        out = self.kubectl("get", "mdep", "-o", "json", check=False)
        if out.returncode != 0:
            return {}
        return {
            m["metadata"]["name"]: {k: m.get("status", {}).get(k) for k in ("phase", "drift", "candidate")}
            for m in json.loads(out.stdout)["items"]
        }

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return dict(
            self.until(
                f"{name} in phase {phase}", lambda: (s := self.status(name)).get("phase") == phase and s, timeout
            )
        )

    def wait_job(self, mdep: str, step: str, job: str, timeout: float = 60) -> str:
        self.until(f"Job {job}", lambda: job in self.jobs(mdep, step), timeout)
        return job

    def finish(
        self,
        job: str,
        doc: dict[str, Any] | None = None,
        *,
        raw: str | None = None,
        exit_code: int = 0,
        timeout: float = 60,
    ) -> None:
        """End the job's pod as its container would: result in the termination message, then exit."""
        message = contract.encode(doc) if doc is not None else raw

        def running_pod() -> dict[str, Any] | None:
            for pod in self.items("pods", f"job-name={job}"):
                if pod.get("status", {}).get("podIP") and pod["status"].get("phase") == "Running":
                    return pod
            return None

        pod = self.until(f"a Running pod of Job {job}", running_pod, timeout)
        main = pod["spec"]["containers"][0]
        patch = termination_patch(message, exit_code=exit_code, container=main["name"], image=main["image"])
        name = pod["metadata"]["name"]
        self.kubectl("patch", "pod", name, "--subresource=status", "--type=merge", "-p", json.dumps(patch))

    def image(self, deployment: str = "cats-dogs") -> str:
        return str(self.get("deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["image"])


def stall_new_pods(cluster: Cluster, kit: Kit, image: str) -> Callable[[], None]:
    """An honest stall for rollouts: the serving Deployment ``cats-dogs`` (``image``, 5 s progress
    deadline) runs under a quota on its pods' priority class that leaves no room for a surge pod, so
    a new ReplicaSet never gets a pod (FailedCreate) and misses its deadline. Returns the cleanup."""
    priority = f"{kit.ns}-serving"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": priority},
                "value": 1000,
            }
        ),
    )
    kit.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "serving-pods"},
            "spec": {
                "hard": {"pods": "1"},
                "scopeSelector": {
                    "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": [priority]}]
                },
            },
        }
    )
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(image).priority_class(priority).progress_deadline(5).obj())
    kit.until(
        "the serving Deployment",
        lambda: kit.get("deployment", "cats-dogs").get("status", {}).get("availableReplicas") == 1,
    )

    def cleanup() -> None:
        cluster.kubectl("delete", "priorityclass", priority, "--wait=false", check=False)

    return cleanup

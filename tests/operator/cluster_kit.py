"""Helpers for the operator's cluster tests: the operator as a subprocess, manifests, step results.

kwok leaves pods labelled ``modelfreshness.io/step`` Running; ``finish`` plays the step's
container: it writes the result into the pod's termination message and ends the pod, as the
kubelet would, by patching ``pods/status``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import freshness_contract as contract

from testkit.net import free_port
from tests.conftest import Cluster, wait_for

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "modeldeployments.modelfreshness.io.yaml"
SERVING_IMAGE = "registry.example/cats-dogs"
DIGEST = "sha256:" + "5e" * 32


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
            "FRESHNESS_TRAINER_IMAGE": "registry.example/freshness-trainer:test",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "freshness_operator"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        wait_for("the operator's /healthz", self._healthy, 90, self.tail)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, f"operator exited\n{self.tail()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "--- operator log ---\n" + "\n".join(text.splitlines()[-lines:])

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
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    return name


def serving_deployment(
    name: str, image: str, *, priority_class: str | None = None, serving_for: str | None = "cats"
) -> dict[str, Any]:
    """The serving Deployment, opted in for ModelDeployment ``serving_for`` (None: not opted in)."""
    pod_spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "server",
                "image": image,
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    labels = {"modelfreshness.io/serving-for": serving_for} if serving_for else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def mdep(name: str, **spec: Any) -> dict[str, Any]:
    base = {
        "source": {"repo": "https://git.example/acme/cats-dogs.git"},
        "data": {"reference": "data/train", "current": "s3://prod-samples/cats-dogs/"},
        "serving": {
            "deployment": "cats-dogs",
            "container": "server",
            "image": SERVING_IMAGE,
            "modelUri": "s3://models/cats-dogs/0.1/model.pt",
        },
        "drift": {"interval": "2s"},
        "training": {"candidates": [{}], "maxParallel": 1, "backoffLimit": 0},
        "policy": {"cooldown": "0s", "maxRetrainsPerDay": 100},
    }
    return {
        "apiVersion": "modelfreshness.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": merge(base, spec),
    }


def drift_doc(detected: bool, share: float = 0.62) -> dict[str, Any]:
    return {
        "step": "drift",
        "ok": True,
        "drift": {
            "detected": detected,
            "share": share,
            "score": share,
            "threshold": 0.3,
            "method": "evidently-share",
            "samples": 400,
            "topFeatures": ["confidence", "pc1"],
        },
    }


def train_doc(val_acc: float, baseline: float = 0.80, rev: str = "0a1b2c3d4e") -> dict[str, Any]:
    return {
        "step": "train",
        "ok": True,
        "train": {
            "experiment": f"exp-{rev[:4]}",
            "rev": rev,
            "metrics": {"val_acc": val_acc},
            "baselineMetrics": {"val_acc": baseline},
            "model": f"s3://dvc-remote/models/{rev}/model.pt",
        },
    }


def bare_result(step: str) -> str:
    """``ok`` without the step's section: what the old schema let through (issue 10)."""
    return json.dumps({"schemaVersion": contract.SCHEMA_VERSION, "step": step, "ok": True})


def package_doc(tag: str) -> dict[str, Any]:
    pinned = f"{SERVING_IMAGE}:{tag}@{DIGEST}"
    return {"step": "package", "ok": True, "package": {"image": pinned, "digest": DIGEST}}


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
        sel = f"modelfreshness.io/deployment={mdep},modelfreshness.io/step={step}"
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

        def running_pod() -> str | None:
            for pod in self.items("pods", f"job-name={job}"):
                if pod.get("status", {}).get("podIP") and pod["status"].get("phase") == "Running":
                    return str(pod["metadata"]["name"])
            return None

        pod = self.until(f"a Running pod of Job {job}", running_pod, timeout)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "startedAt": now,
            "finishedAt": now,
        }
        if message is not None:
            terminated["message"] = message
        patch = {
            "status": {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "containerStatuses": [
                    {
                        "name": "main",
                        "image": "registry.example/freshness-trainer:test",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"terminated": terminated},
                    }
                ],
            }
        }
        self.kubectl("patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(patch))

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
    dep = serving_deployment("cats-dogs", image, priority_class=priority)
    dep["spec"]["progressDeadlineSeconds"] = 5
    kit.apply(dep)
    kit.until(
        "the serving Deployment",
        lambda: kit.get("deployment", "cats-dogs").get("status", {}).get("availableReplicas") == 1,
    )

    def cleanup() -> None:
        cluster.kubectl("delete", "priorityclass", priority, "--wait=false", check=False)

    return cleanup

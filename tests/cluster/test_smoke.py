"""Smoke tests: the local control plane is a real Kubernetes that behaves like one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from testkit.wait import wait_for
from tests.conftest import Cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"smoke-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    wait_for(
        "the default service account",
        lambda: cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0,
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_version_is_stamped(cluster: Cluster) -> None:
    info = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert info["gitVersion"].startswith("v1.34."), info
    assert (info["major"], info["minor"]) == ("1", "34")


def test_deployment_becomes_available(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", "-n", namespace)
    cluster.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s", timeout=120)
    dep = json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json").stdout)
    assert dep["status"]["availableReplicas"] == 2
    conditions = {c["type"]: c["status"] for c in dep["status"]["conditions"]}
    assert conditions["Available"] == "True"


def test_job_completes(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "job", "once", "--image=busybox:1.36", "-n", namespace, "--", "true")
    cluster.kubectl("wait", "--for=condition=Complete", "job/once", "-n", namespace, "--timeout=90s", timeout=120)
    job = json.loads(cluster.kubectl("get", "job", "once", "-n", namespace, "-o", "json").stdout)
    assert job["status"]["succeeded"] == 1


def test_rbac_refuses_then_allows_after_rolebinding(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    who = f"--as=system:serviceaccount:{namespace}:reader"

    def can_list() -> str:
        out = cluster.kubectl("auth", "can-i", "list", "pods", "-n", namespace, who, check=False)
        return out.stdout.strip()

    assert can_list() == "no"
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "reader", "--role=pod-reader", f"--serviceaccount={namespace}:reader", "-n", namespace
    )
    wait_for("RBAC to allow the service account", lambda: can_list() == "yes", timeout=30)
    denied = cluster.kubectl("auth", "can-i", "delete", "pods", "-n", namespace, who, check=False)
    assert denied.stdout.strip() == "no"


def test_restricted_pod_security_rejects_privileged_pod(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-pod", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
    }
    refused = cluster.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted' in refused.stderr, refused.stderr
    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "good-pod", "namespace": namespace},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "busybox:1.36",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(good))

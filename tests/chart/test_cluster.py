"""The chart on the real local control plane (kwok simulates the pods): install, least-privilege RBAC,
restricted Pod Security for the operator and its Jobs, upgrade, and an uninstall that keeps the CRD
and the users' ModelDeployments."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from freshness_operator.core.owner import Owner

from testkit.wait import wait_for
from tests.chart.contract import rbac_table
from tests.chart.step_jobs import sample_spec, step_jobs
from tests.chart.tools import CHART, REPO, Helm, helm_candidates, require_tool
from tests.conftest import Cluster

pytestmark = pytest.mark.cluster

CRD = "modeldeployments.modelfreshness.io"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def create_namespace(cluster: Cluster, name: str, labels: dict[str, str] | None = None) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(ns))


def get_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *args, "-o", "json").stdout))


def deployment_available(cluster: Cluster, namespace: str, name: str) -> bool:
    dep = get_json(cluster, "deployment", name, "-n", namespace)
    conditions = {c["type"]: c["status"] for c in dep.get("status", {}).get("conditions", [])}
    return conditions.get("Available") == "True" and dep["status"].get("availableReplicas") == 1


@dataclass
class Release:
    name: str
    namespace: str
    helm: Helm

    @property
    def fullname(self) -> str:
        return f"{self.name}-model-freshness-operator"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def install(self, values: dict[str, Any] | None = None, command: str = "install") -> None:
        self.helm.with_values(
            [command, self.name, str(CHART), "-n", self.namespace, "--wait", "--timeout", "3m"],
            values,
            timeout=240,
        )

    def uninstall(self, check: bool = True) -> None:
        self.helm.run("uninstall", self.name, "-n", self.namespace, "--wait", "--timeout", "2m", check=check)


@pytest.fixture(scope="module")
def cluster_helm(cluster: Cluster) -> Helm:
    own = cluster.bin_dir / "helm"
    path = own if own.exists() else require_tool("helm", "run `bash hack/build-binaries.sh`", helm_candidates())
    return Helm(path, cluster.env)


@pytest.fixture(scope="module")
def suffix() -> str:
    return uuid.uuid4().hex[:5]


@pytest.fixture(scope="module")
def watched(cluster: Cluster, suffix: str) -> Iterator[str]:
    """A namespace users put ModelDeployments in."""
    name = f"mf-apps-{suffix}"
    create_namespace(cluster, name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def cluster_wide(cluster: Cluster, cluster_helm: Helm, suffix: str) -> Iterator[Release]:
    """The chart with default values, in a namespace that enforces the restricted Pod Security level."""
    release = Release(f"mf{suffix}", f"mf-system-{suffix}", cluster_helm)
    create_namespace(cluster, release.namespace, RESTRICTED)
    release.install()
    yield release
    release.uninstall(check=False)
    cluster.kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)


def can_i(cluster: Cluster, who: str, verb: str, resource: str, namespace: str | None) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={who}"]
    args += ["-n", namespace] if namespace else []
    proc = cluster.kubectl(*args, check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stdout + proc.stderr
    return proc.stdout.strip() == "yes"


def qualified(group: str, resource: str) -> list[str]:
    """`kubectl auth can-i` arguments for a resource: group-qualified, subresource split off."""
    base, _, sub = resource.partition("/")
    name = f"{base}.{group}" if group else base
    return [name, f"--subresource={sub}"] if sub else [name]


# Verbs the operator must NOT have, beyond every verb the contract table leaves out of its rows.
DENIED_EXTRA = [
    ("", "secrets"), ("", "configmaps"), ("", "serviceaccounts"), ("", "nodes"), ("", "pods/exec"),
    ("", "pods/status"), ("apps", "replicasets"), ("apps", "statefulsets"),
    ("batch", "cronjobs"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
]  # fmt: skip
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def permission_table(cluster_mode: bool) -> list[tuple[str, str, str, bool]]:
    """(group, resource, verb, allowed) for every verb on every contract row and on DENIED_EXTRA."""
    rows = []
    for row in rbac_table():
        granted = row.verbs if (cluster_mode or not row.cluster_wide_only) else frozenset()
        granted = frozenset() if row.own_namespace_only else granted  # the Lease: only in its own namespace
        rows += [(row.group, row.resource, verb, verb in granted) for verb in VERBS]
    rows += [(group, resource, verb, False) for group, resource in DENIED_EXTRA for verb in VERBS]
    rows += [
        ("", "serviceaccounts", "impersonate", False),
        ("rbac.authorization.k8s.io", "roles", "escalate", False),
    ]
    return rows


def own_namespace_table() -> list[tuple[str, str, str, bool]]:
    """The leader Lease rows, for the operator's own namespace (leader election is on by default)."""
    return [
        (r.group, r.resource, verb, verb in r.verbs) for r in rbac_table() if r.own_namespace_only for verb in VERBS
    ]


def assert_permissions(
    cluster: Cluster, who: str, table: list[tuple[str, str, str, bool]], namespace: str | None
) -> None:
    """`kubectl auth can-i --as=<who>` for every row; a few at a time (each is one kubectl process)."""
    cluster_scoped = {"namespaces", "nodes", "customresourcedefinitions", "clusterroles"}

    def check(row: tuple[str, str, str, bool]) -> str | None:
        group, resource, verb, allowed = row
        ns = None if resource.split("/")[0] in cluster_scoped else namespace
        args = ["auth", "can-i", verb, *qualified(group, resource), f"--as={who}"]
        answer = cluster.kubectl(*args, *(["-n", ns] if ns else []), check=False).stdout.strip()
        assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {answer!r}"
        if (answer == "yes") != allowed:
            return f"{verb} {group or 'core'}/{resource} in {ns or 'cluster'}: {answer}, want {allowed}"
        return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        wrong = [w for w in pool.map(check, table) if w]
    assert not wrong, "RBAC differs from docs/contracts.md:\n" + "\n".join(wrong)


def test_operator_deployment_becomes_available(cluster: Cluster, cluster_wide: Release) -> None:
    assert deployment_available(cluster, cluster_wide.namespace, cluster_wide.fullname)
    pods = get_json(
        cluster, "pods", "-n", cluster_wide.namespace, "-l", f"app.kubernetes.io/instance={cluster_wide.name}"
    )
    [pod] = pods["items"]
    assert pod["status"]["phase"] == "Running"
    # Admitted under enforce=restricted: the chart's defaults satisfy the restricted level.
    labels = get_json(cluster, "namespace", cluster_wide.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    service = get_json(cluster, "service", f"{cluster_wide.fullname}-metrics", "-n", cluster_wide.namespace)
    assert service["spec"]["ports"][0]["port"] == 9090


def test_crd_is_installed_and_serves_modeldeployments(cluster: Cluster, cluster_wide: Release) -> None:
    crd = get_json(cluster, "crd", CRD)
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    cluster.kubectl("get", "mdep", "-A")


def test_cluster_wide_rbac_is_exactly_the_contract(cluster: Cluster, cluster_wide: Release, watched: str) -> None:
    assert_permissions(cluster, cluster_wide.service_account, permission_table(cluster_mode=True), watched)
    assert_permissions(cluster, cluster_wide.service_account, own_namespace_table(), cluster_wide.namespace)
    assert can_i(cluster, cluster_wide.service_account, "list", "namespaces", None)


def test_users_bound_to_view_or_edit_get_modeldeployment_access(
    cluster: Cluster, cluster_wide: Release, watched: str, suffix: str
) -> None:
    """The chart's aggregated ClusterRoles: `view` reads ModelDeployments, `edit` also writes them."""
    viewer, editor, nobody = f"viewer-{suffix}", f"editor-{suffix}", f"nobody-{suffix}"
    for user, role in ((viewer, "view"), (editor, "edit")):
        binding = f"{user}-{role}"
        cluster.kubectl("create", "rolebinding", binding, f"--clusterrole={role}", f"--user={user}", "-n", watched)
    mdeps = "modeldeployments.modelfreshness.io"
    # The controller-manager aggregates the chart's rules into view/edit/admin asynchronously.
    wait_for("edit to include ModelDeployments", lambda: can_i(cluster, editor, "create", mdeps, watched), 60)
    wait_for("view to include ModelDeployments", lambda: can_i(cluster, viewer, "list", mdeps, watched), 60)
    table = [
        (who, verb, allowed)
        for who, allowed_verbs in (
            (viewer, {"get", "list", "watch"}),
            (editor, {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}),
            (nobody, set()),
        )
        for verb in VERBS
        for allowed in [verb in allowed_verbs]
    ]
    wrong = [f"{who} {verb}" for who, verb, allowed in table if can_i(cluster, who, verb, mdeps, watched) != allowed]
    assert not wrong, f"unexpected answers: {wrong}"
    # The status is the operator's record: no user role may write it.
    for who in (viewer, editor):
        status = cluster.kubectl(
            "auth", "can-i", "update", mdeps, "--subresource=status", f"--as={who}", "-n", watched, check=False
        )
        assert status.stdout.strip() == "no", f"{who} may update modeldeployments/status"


def test_namespaced_rbac_is_exactly_the_contract(
    cluster: Cluster, cluster_helm: Helm, suffix: str, watched: str
) -> None:
    release = Release(f"mfns{suffix}", f"mf-ns-system-{suffix}", cluster_helm)
    create_namespace(cluster, release.namespace, RESTRICTED)
    other = f"mf-unwatched-{suffix}"
    create_namespace(cluster, other)
    try:
        release.install({"watch": {"mode": "namespaces", "namespaces": [watched]}})
        assert deployment_available(cluster, release.namespace, release.fullname)
        assert_permissions(cluster, release.service_account, permission_table(cluster_mode=False), watched)
        assert_permissions(cluster, release.service_account, own_namespace_table(), release.namespace)
        # Nothing at all in a namespace it does not watch.
        unwatched = [
            (group, resource, verb, False)
            for group, resource, verb, _ in permission_table(cluster_mode=False)
            if group != "apiextensions.k8s.io" and resource != "namespaces"
        ]
        assert_permissions(cluster, release.service_account, unwatched, other)
        # Issue 19: an upgrade naming a namespace that does not exist failed half-way and left the
        # Roles it had made in the namespaces before it. Now it fails before creating anything.
        missing = f"mf-missing-{suffix}"
        proc = cluster_helm.with_values(
            ["upgrade", release.name, str(CHART), "-n", release.namespace, "--timeout", "2m"],
            {"watch": {"mode": "namespaces", "namespaces": [watched, other, missing]}},
            check=False,
        )
        assert proc.returncode != 0
        assert f'watch.namespaces: namespace "{missing}" does not exist' in proc.stderr, proc.stderr
        stray = cluster.kubectl("get", "role", release.fullname, "-n", other, check=False)
        assert stray.returncode != 0 and "NotFound" in stray.stderr, "the failed upgrade left a Role behind"
    finally:
        release.uninstall(check=False)
        cluster.kubectl("delete", "namespace", release.namespace, other, "--wait=false", check=False)


def test_operator_jobs_are_admitted_under_restricted(cluster: Cluster, suffix: str) -> None:
    """The drift/train/package Jobs built by freshness_operator.builders run under enforce=restricted."""
    namespace = f"mf-restricted-{suffix}"
    create_namespace(cluster, namespace, RESTRICTED)
    try:
        # A real (paused) owner, so the garbage collector keeps the Jobs it owns.
        if cluster.kubectl("get", "crd", CRD, check=False).returncode != 0:
            cluster.kubectl("create", "-f", str(REPO / "crds"))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
        mdep = model_deployment("cats-dogs", namespace)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(mdep))
        uid = get_json(cluster, "mdep", "cats-dogs", "-n", namespace)["metadata"]["uid"]
        jobs = step_jobs(Owner("cats-dogs", namespace, uid), mdep["spec"])
        assert {j["metadata"]["labels"]["modelfreshness.io/step"] for j in jobs} == {
            "drift",
            "train",
            "package",
        }
        for job in jobs:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": job["metadata"]["name"], "namespace": namespace},
                "spec": job["spec"]["template"]["spec"],
            }
            # The pod the Job controller will create, through admission without being stored.
            dry = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
            assert dry.returncode == 0, f"{job['metadata']['name']}: {dry.stderr}"
            created = cluster.kubectl("create", "-f", "-", input=json.dumps(job))
            assert "would violate PodSecurity" not in created.stderr, created.stderr

        def has_pod(job_name: str) -> bool:
            return bool(get_json(cluster, "pods", "-n", namespace, "-l", f"job-name={job_name}")["items"])

        for job in jobs:
            name = job["metadata"]["name"]
            wait_for(f"a pod of job {name}", functools.partial(has_pod, name), timeout=90)
        # The namespace really enforces: a pod that may run as root is refused.
        rootable = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "rootable", "namespace": namespace},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        }
        refused = cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(rootable), check=False)
        assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def model_deployment(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelfreshness.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": sample_spec(),
    }


def test_upgrade_then_uninstall_keeps_crd_and_model_deployments(
    cluster: Cluster, cluster_helm: Helm, suffix: str, watched: str
) -> None:
    release = Release(f"mflife{suffix}", f"mf-life-{suffix}", cluster_helm)
    create_namespace(cluster, release.namespace, RESTRICTED)
    try:
        release.install()
        mdep = f"cats-dogs-{suffix}"
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(model_deployment(mdep, watched)))

        release.install({"trainerImage": {"tag": "0.2.0"}}, command="upgrade")
        status = json.loads(release.helm.run("status", release.name, "-n", release.namespace, "-o", "json").stdout)
        assert status["version"] == 2 and status["info"]["status"] == "deployed"
        dep = get_json(cluster, "deployment", release.fullname, "-n", release.namespace)
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["FRESHNESS_TRAINER_IMAGE"].endswith(":0.2.0")
        wait_for(
            "the upgraded operator",
            lambda: deployment_available(cluster, release.namespace, release.fullname),
            timeout=90,
        )

        release.uninstall()
        gone = cluster.kubectl("get", "deployment", release.fullname, "-n", release.namespace, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr
        role = cluster.kubectl("get", "clusterrole", release.fullname, check=False)
        assert role.returncode != 0 and "NotFound" in role.stderr
        # Helm never deletes CRDs from crds/, so the users' objects survive.
        cluster.kubectl("get", "crd", CRD)
        kept = get_json(cluster, "mdep", mdep, "-n", watched)
        assert kept["spec"]["serving"]["deployment"] == "cats-dogs"
    finally:
        release.uninstall(check=False)
        cluster.kubectl("delete", "mdep", f"cats-dogs-{suffix}", "-n", watched, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "namespace", release.namespace, "--wait=false", check=False)

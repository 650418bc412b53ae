"""The chart renders, lints and refuses bad values; its objects follow the contracts. No cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chart.contract import as_triples, rbac_table, row_triples
from tests.chart.tools import CHART, MONITORING_API, Helm, by_kind, load_yaml, one
from tests.chart.variants import VARIANTS


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lint(helm: Helm, variant: str) -> None:
    # helm lint takes no --api-versions: the monitoring CRD check is covered by the test below.
    proc = helm.with_values(["lint", "--strict", str(CHART)], {**VARIANTS[variant], "requireMonitoringCRDs": False})
    assert "0 chart(s) failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_object_is_labelled_and_namespaced(helm: Helm, variant: str) -> None:
    docs = helm.template(VARIANTS[variant])
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for doc in docs:
        meta = doc["metadata"]
        assert meta["labels"]["app.kubernetes.io/instance"] == "mf", meta
        assert meta["labels"]["helm.sh/chart"].startswith("model-freshness-operator-")
        if doc["kind"] not in cluster_scoped:
            assert meta.get("namespace"), f"{doc['kind']} {meta['name']} has no namespace"


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def operator_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered objects without the users' aggregated ClusterRoles (user-roles.yaml)."""
    return [d for d in docs if not any(k.startswith(AGGREGATE) for k in d["metadata"]["labels"])]


@pytest.mark.parametrize("enabled", ["prometheusRule.enabled", "serviceMonitor.enabled"])
def test_monitoring_objects_without_the_prometheus_operator_fail_early(helm: Helm, enabled: str) -> None:
    # Issue 19: without the CRDs the install failed late with Helm's generic "no matches for kind".
    proc = helm.run("template", "mf", str(CHART), "--set", f"{enabled}=true", check=False)
    assert proc.returncode != 0
    assert f"{enabled}=true needs the Prometheus Operator's CRDs (API monitoring.coreos.com/v1)" in proc.stderr
    helm.run("template", "mf", str(CHART), "--set", f"{enabled}=true", *MONITORING_API)  # a cluster that has them


def test_default_objects(helm: Helm) -> None:
    kinds = sorted(d["kind"] for d in operator_docs(helm.template()))
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]


def test_user_roles_aggregate_into_view_edit_and_admin(helm: Helm) -> None:
    docs = helm.template()
    users = [d for d in by_kind(docs, "ClusterRole") if d not in operator_docs(docs)]
    roles = {d["metadata"]["name"].rsplit("-", 1)[1]: d for d in users}
    assert sorted(roles) == ["edit", "view"]
    aggregated = {k.removeprefix(AGGREGATE) for k, v in roles["view"]["metadata"]["labels"].items() if v == "true"}
    assert {"view", "edit", "admin"} <= aggregated
    assert {k for k in roles["edit"]["metadata"]["labels"] if k.startswith(AGGREGATE)} == {
        f"{AGGREGATE}edit",
        f"{AGGREGATE}admin",
    }
    assert as_triples(roles["view"]["rules"]) == {
        ("modelfreshness.io", "modeldeployments", v) for v in ("get", "list", "watch")
    }
    writes = ("create", "update", "patch", "delete", "deletecollection")
    # never modeldeployments/status: that is the operator's record
    assert as_triples(roles["edit"]["rules"]) == {("modelfreshness.io", "modeldeployments", v) for v in writes}
    off = helm.template({"rbac": {"aggregateClusterRoles": False}})
    assert operator_docs(off) == off


def test_monitoring_objects_only_when_enabled(helm: Helm) -> None:
    assert not by_kind(helm.template(), "ServiceMonitor")
    assert not by_kind(helm.template(), "PrometheusRule")
    docs = helm.template(VARIANTS["monitoring"])
    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kps"
    [endpoint] = sm["spec"]["endpoints"]
    # honorLabels keeps the metrics' own namespace/name labels (the ModelDeployment's).
    assert endpoint == endpoint | {"port": "metrics", "path": "/metrics", "honorLabels": True}
    service = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"


def test_grafana_dashboard_only_when_enabled(helm: Helm) -> None:
    assert not [d for d in by_kind(helm.template(), "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]
    cm = one(helm.template(VARIANTS["monitoring"]), "ConfigMap")
    meta = cm["metadata"]
    assert meta["labels"]["grafana_dashboard"] == "1" and meta["labels"]["release"] == "kps"  # the sidecar's label
    assert meta["annotations"] == {"grafana_folder": "Models"} and meta["namespace"] == "mf-system"
    dashboard = json.loads(cm["data"]["model-freshness.json"])
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource", "namespace", "name"]
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:  # every query is scoped to the chosen ModelDeployment's namespace
            assert 'namespace="$namespace"' in target["expr"], (panel["title"], target["expr"])
    elsewhere = helm.template({"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}})
    assert one(elsewhere, "ConfigMap")["metadata"]["namespace"] == "monitoring"


def test_deployment_security_and_ports(helm: Helm) -> None:
    dep = one(helm.template(), "Deployment")
    spec = dep["spec"]
    assert spec["replicas"] == 1
    # Leader election (on by default): a new pod stands by until the old one releases the Lease.
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pod = spec["template"]["spec"]
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["command"] == ["freshness-operator"]
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090, "health": 8080}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"


def test_deployment_env_follows_the_contract(helm: Helm) -> None:
    def env_of(values: dict[str, Any]) -> dict[str, str]:
        [c] = one(helm.template(values), "Deployment")["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value") for e in c["env"]}

    assert env_of({}) == {
        "FRESHNESS_NAMESPACES": "",
        "FRESHNESS_METRICS_PORT": "9090",
        "FRESHNESS_HEALTH_PORT": "8080",
        "FRESHNESS_TRAINER_IMAGE": "ghcr.io/model-freshness/freshness-trainer:0.1.0",
        "FRESHNESS_STANDALONE": "true",
        "FRESHNESS_LEADER_ELECTION": "true",
        "FRESHNESS_LEASE_NAME": "mf-model-freshness-operator",
        "FRESHNESS_LEASE_NAMESPACE": "mf-system",
        "FRESHNESS_LEADER_IDENTITY": None,  # the pod's name, from the downward API
        "FRESHNESS_LEASE_DURATION": "15",
        "FRESHNESS_RENEW_DEADLINE": "10",
        "FRESHNESS_RETRY_PERIOD": "2",
    }
    env = env_of(VARIANTS["namespaced"])
    assert env["FRESHNESS_NAMESPACES"] == "team-a,team-b"
    env = env_of(VARIANTS["custom"])
    assert env["FRESHNESS_METRICS_PORT"] == "9100" and env["FRESHNESS_HEALTH_PORT"] == "8081"
    assert env["FRESHNESS_TRAINER_IMAGE"] == "registry.example.com/trainer:1.2.3"
    assert env["LOG_LEVEL"] == "debug"


def test_image_reference(helm: Helm) -> None:
    def image_of(values: dict[str, Any]) -> str:
        [c] = one(helm.template(values), "Deployment")["spec"]["template"]["spec"]["containers"]
        return str(c["image"])

    app_version = load_yaml(CHART / "Chart.yaml")["appVersion"]
    assert image_of({}) == f"ghcr.io/model-freshness/freshness-operator:{app_version}"
    assert image_of({"image": {"tag": "dev"}}) == "ghcr.io/model-freshness/freshness-operator:dev"
    assert image_of(VARIANTS["custom"]) == "registry.example.com/op@sha256:" + "a" * 64


def test_selector_labels_are_minimal_and_shared(helm: Helm) -> None:
    docs = helm.template()
    selector = one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "model-freshness-operator",
        "app.kubernetes.io/instance": "mf",
    }
    assert one(docs, "Service")["spec"]["selector"] == selector
    service_port = one(docs, "Service")["spec"]["ports"][0]
    assert service_port == service_port | {"name": "metrics", "port": 9090, "targetPort": "metrics"}


def test_service_account_binding(helm: Helm) -> None:
    docs = helm.template(VARIANTS["custom"])
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["name"] == "freshness-sa"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "freshness-sa"
    for binding in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "freshness-sa", "namespace": "mf-system"}]
    existing = helm.template({"serviceAccount": {"create": False, "name": "byo"}})
    assert not by_kind(existing, "ServiceAccount")
    assert one(existing, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "byo"


LEASE_ROLE = "mf-model-freshness-operator-leader-election"


def lease_role_is_the_contract(docs: list[dict[str, Any]]) -> None:
    """The leader Lease: a Role and RoleBinding in the release namespace only, exactly the contract's row."""
    [role] = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == LEASE_ROLE]
    assert role["metadata"]["namespace"] == "mf-system"
    assert as_triples(role["rules"]) == row_triples([r for r in rbac_table() if r.own_namespace_only])
    [binding] = [b for b in by_kind(docs, "RoleBinding") if b["metadata"]["name"] == LEASE_ROLE]
    assert binding["metadata"]["namespace"] == "mf-system"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE}


def test_cluster_mode_rbac_is_exactly_the_contract(helm: Helm) -> None:
    docs = helm.template()
    lease_role_is_the_contract(docs)
    assert [r["metadata"]["name"] for r in by_kind(docs, "Role")] == [LEASE_ROLE]
    role = one(operator_docs(docs), "ClusterRole")
    assert as_triples(role["rules"]) == row_triples([r for r in rbac_table() if not r.own_namespace_only])
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }


def test_namespaced_mode_rbac_is_exactly_the_contract(helm: Helm) -> None:
    rows = rbac_table()
    docs = helm.template(VARIANTS["namespaced"])
    lease_role_is_the_contract(docs)
    roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] != LEASE_ROLE]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    namespaced = row_triples([r for r in rows if not r.cluster_scoped and not r.own_namespace_only])
    for role in roles:
        assert as_triples(role["rules"]) == namespaced
    bindings = [b for b in by_kind(docs, "RoleBinding") if b["metadata"]["name"] != LEASE_ROLE]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    # Cluster-scoped: only the CRD read; no namespaces permission outside cluster-wide mode.
    crd_reader = one(operator_docs(docs), "ClusterRole")
    assert as_triples(crd_reader["rules"]) == row_triples(
        [r for r in rows if r.cluster_scoped and not r.cluster_wide_only]
    )
    assert one(docs, "ClusterRoleBinding")["roleRef"]["name"] == crd_reader["metadata"]["name"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"imagee": {"tag": "x"}}, "imagee"),
        ({"image": {"tagg": "x"}}, "tagg"),
        ({"securityContext": {"readOnlyRootFs": True}}, "readOnlyRootFs"),
        ({"serviceMonitor": {"enable": True}}, "enable"),
        ({"grafanaDashboard": {"enabled": "yes"}}, "enabled"),
        ({"prometheusRule": {"alerts": {"ModelStal": {"for": "1h"}}}}, "ModelStal"),
        ({"prometheusRule": {"alerts": {"ModelStale": {"severity": "page"}}}}, "severity"),
        ({"prometheusRule": {"alerts": {"ModelStale": {"for": "an hour"}}}}, "for"),
        ({"prometheusRule": {"modelMaxAgeSeconds": "7d"}}, "modelMaxAgeSeconds"),
        ({"replicas": 2, "leaderElection": {"enabled": False}}, "replicas: Must be less than or equal to 1"),
        ({"leaderElection": {"enabled": True, "leaseDuration": "15s"}}, "leaseDuration"),
        ({"leaderElection": {"enable": True}}, "enable"),
        ({"watch": {"mode": "namespaced"}}, "mode"),
        ({"watch": {"mode": "namespaces"}}, "namespaces"),
        ({"watch": {"mode": "namespaces", "namespaces": ["Not_A_Namespace"]}}, "namespaces"),
        ({"metricsPort": "9090"}, "metricsPort"),
        ({"rbac": {"aggregateClusterRoles": "yes"}}, "aggregateClusterRoles"),
        ({"extraEnv": [{"name": "FRESHNESS_NAMESPACES", "value": "x"}]}, "extraEnv"),
    ],
)
def test_schema_refuses_typos_and_bad_values(helm: Helm, values: dict[str, Any], complaint: str) -> None:
    proc = helm.with_values(["template", "mf", str(CHART)], values, check=False)
    assert proc.returncode != 0, f"{values} was accepted"
    assert "schema" in proc.stderr and complaint in proc.stderr, proc.stderr


def test_two_replicas_with_leader_election(helm: Helm) -> None:
    """replicas > 1: a PodDisruptionBudget keeps one, a preferred anti-affinity spreads them by node."""
    docs = helm.template(VARIANTS["ha"])
    dep = one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    selector = dep["spec"]["selector"]["matchLabels"]
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    [term] = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term == {
        "weight": 100,
        "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": selector}},
    }
    [c] = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert (env["FRESHNESS_LEASE_DURATION"], env["FRESHNESS_RENEW_DEADLINE"], env["FRESHNESS_RETRY_PERIOD"]) == (
        "20",
        "12",
        "3",
    )
    assert not by_kind(helm.template(), "PodDisruptionBudget"), "one replica cannot keep one through a drain"
    # The values' own podAntiAffinity wins; their nodeAffinity is kept beside the default spread.
    own: dict[str, Any] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}
    assert one(helm.template({"affinity": own}), "Deployment")["spec"]["template"]["spec"]["affinity"] == own
    node: dict[str, Any] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    affinity = one(helm.template({"affinity": node}), "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert set(affinity) == {"nodeAffinity", "podAntiAffinity"}


def test_without_leader_election_one_replica_and_no_overlap(helm: Helm) -> None:
    docs = helm.template({"leaderElection": {"enabled": False}})
    dep = one(docs, "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}, "two operators without election must never overlap"
    [c] = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["FRESHNESS_LEADER_ELECTION"] == "false" and "FRESHNESS_LEASE_NAME" not in env
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")


@pytest.mark.parametrize(
    ("election", "complaint"),
    [
        ({"leaseDuration": 10, "renewDeadline": 10}, "leaderElection.renewDeadline (10) must be less than"),
        ({"renewDeadline": 10, "retryPeriod": 9}, "leaderElection.retryPeriod (9) must be less than"),
    ],
)
def test_lease_timings_that_cannot_fence_are_refused(helm: Helm, election: dict[str, int], complaint: str) -> None:
    values = {"leaderElection": {"enabled": True, **election}}
    proc = helm.with_values(["template", "mf", str(CHART)], values, check=False)
    assert proc.returncode != 0 and complaint in proc.stderr, proc.stderr


def test_service_account_name_required_when_not_created(helm: Helm) -> None:
    proc = helm.with_values(["template", "mf", str(CHART)], {"serviceAccount": {"create": False}}, check=False)
    assert proc.returncode != 0 and "serviceAccount.name is required" in proc.stderr


def test_kube_version_constraint(helm: Helm) -> None:
    assert load_yaml(CHART / "Chart.yaml")["kubeVersion"] == ">=1.30.0-0"
    too_old = helm.run("template", "mf", str(CHART), "--kube-version", "1.29.9", check=False)
    assert too_old.returncode != 0 and "kubeVersion" in too_old.stderr
    helm.run("template", "mf", str(CHART), "--kube-version", "1.30.0")
    helm.run("template", "mf", str(CHART), "--kube-version", "1.34.4")


# Kubernetes structures passed through as they are: documented once at their top, as in `helm create`.
PASS_THROUGH = {"resources", "podSecurityContext", "securityContext"}


def test_values_file_is_documented_value_by_value() -> None:
    """Every key in values.yaml has a comment right above it, except inside pass-through structures."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing blocks
    undocumented = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        key = stripped.split(":", 1)[0]
        parents = [(n, k) for n, k in parents if n < indent]
        inside_pass_through = any(k in PASS_THROUGH for _, k in parents)
        if not inside_pass_through and not lines[i - 1].strip().startswith("#"):
            undocumented.append(".".join([k for _, k in parents] + [key]))
        parents.append((indent, key))
    assert not undocumented, f"values without a comment above them: {undocumented}"

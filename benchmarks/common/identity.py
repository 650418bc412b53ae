"""Count an operator's API requests by verb: a ServiceAccount per operator under test plus one
FlowSchema per verb, so that the API server's own ``apiserver_flowcontrol_dispatched_requests_total``
counts that operator's requests (priority level ``exempt``: same treatment as the admin user)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testkit.api import Api
from testkit.wait import wait_for

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Identity:
    """A ServiceAccount an operator under test runs as; its requests are counted per verb."""

    name: str
    namespace: str
    kubeconfig: Path

    @property
    def prefix(self) -> str:
        return f"bench-{self.namespace}-{self.name}"

    def flow_schema(self, verb: str) -> str:
        return f"{self.prefix}-{verb}"

    def requests(self, counts: dict[str, float]) -> dict[str, float]:
        """This identity's requests by verb (plus ``other``) from a ``request_counts`` snapshot. Pure."""
        return {verb: counts.get(self.flow_schema(verb), 0.0) for verb in (*VERBS, "other")}


def make_identity(api: Api, namespace: str, name: str, workdir: Path) -> Identity:
    """ServiceAccount with cluster-admin, a token kubeconfig and one FlowSchema per verb."""
    ident = Identity(name, namespace, workdir / f"{name}.kubeconfig")
    api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}, allow=(409,))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": ident.prefix},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    api.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding, allow=(409,))
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": name, "namespace": namespace}}
    for verb in (*VERBS, "other"):
        rule: dict[str, Any] = {
            "subjects": [subject],
            "resourceRules": [
                {
                    "verbs": [verb if verb != "other" else "*"],
                    "apiGroups": ["*"],
                    "resources": ["*"],
                    "namespaces": ["*"],
                    "clusterScope": True,
                }
            ],
        }
        if verb == "other":
            rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
        schema = {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": ident.flow_schema(verb)},
            "spec": {
                "priorityLevelConfiguration": {"name": "exempt"},
                "matchingPrecedence": 60 if verb == "other" else 50,
                "rules": [rule],
            },
        }
        api.request("POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", schema, allow=(409,))
    token = api.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 6 * 3600}},
    )["status"]["token"]
    cluster: dict[str, Any] = {"server": api.host}
    if api.ca_file:
        cluster["certificate-authority"] = api.ca_file
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": name, "namespace": namespace}}],
        "current-context": "bench",
    }
    ident.kubeconfig.write_text(json.dumps(config))
    ident.kubeconfig.chmod(0o600)
    # The API server picks FlowSchemas up asynchronously; wait until requests land in ours.
    probe = Api(ident.kubeconfig)

    def counted() -> bool:
        probe.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        return ident.requests(request_counts(api))["get"] > 0

    wait_for(f"FlowSchemas of {ident.prefix} in effect", counted, 60, every=1)
    return ident


def delete_identity(api: Api, ident: Identity) -> None:
    for verb in (*VERBS, "other"):
        api.request(
            "DELETE", f"/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/{ident.flow_schema(verb)}", allow=(404,)
        )
    api.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{ident.prefix}", allow=(404,))


def request_counts(api: Api) -> dict[str, float]:
    """Requests dispatched per FlowSchema, and ``apiserver_total`` over all clients, from /metrics."""
    counts: dict[str, float] = {"apiserver_total": 0.0}
    for line in api.text("/metrics").splitlines():
        if line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
            labels, _, value = line.rpartition(" ")
            schema = labels.split('flow_schema="', 1)[1].split('"', 1)[0]
            counts[schema] = counts.get(schema, 0.0) + float(value)
        elif line.startswith("apiserver_request_total{"):
            counts["apiserver_total"] += float(line.rpartition(" ")[2])
    return counts


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Counter deltas. Pure."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}

"""The cluster a benchmark runs on: the local control plane (hack/localcluster) or an existing
one, with the CRD applied; and benchmark namespaces."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from testkit.api import Api
from testkit.manifests import CRD, REPO, mdeps_path
from testkit.wait import wait_for

__all__ = ["CRD", "REPO", "Cluster", "apply_crd", "cluster", "create_namespace", "delete_namespace"]


@dataclass
class Cluster:
    kubeconfig: Path
    api: Api
    log_dir: Path | None
    own: bool


@contextmanager
def cluster(kubeconfig: Path | None, *, nodes: int = 2, api_qps: int | None = None) -> Iterator[Cluster]:
    """An existing cluster (``kubeconfig``), or a fresh local control plane stopped at the end."""
    if kubeconfig is not None:
        c = Cluster(kubeconfig, Api(kubeconfig, pool=32), None, own=False)
        apply_crd(c.api)
        yield c
        return
    from hack import localcluster

    state = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    started = time.monotonic()
    info = localcluster.up(state, nodes=nodes, api_qps=api_qps)
    try:
        print(
            f"# local control plane with {nodes} kwok nodes up in {time.monotonic() - started:.0f}s; "
            f"logs in {info.log_dir}",
            flush=True,
        )
        c = Cluster(info.kubeconfig, Api(info.kubeconfig, pool=32), info.log_dir, own=True)
        apply_crd(c.api)
        yield c
    finally:
        localcluster.down(state, info)


def apply_crd(api: Api) -> None:
    crd = yaml.safe_load(CRD.read_text())
    name = crd["metadata"]["name"]
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    api.request(
        "PATCH",
        path,
        crd,
        params={"fieldManager": "benchmarks", "force": "true"},
        content_type="application/apply-patch+yaml",
    )

    def established() -> bool:
        conds = api.request("GET", path).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    wait_for("the CRD to be established", established, 60)


def create_namespace(api: Api, name: str) -> None:
    api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, allow=(409,))

    def default_sa() -> bool:
        return bool(api.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default", allow=(404,)))

    wait_for(f"the default ServiceAccount of {name}", default_sa, 60)


def delete_namespace(api: Api, name: str) -> None:
    """Delete a benchmark namespace; kopf's finalizers (the baseline's timers) are removed first."""
    for mdep in api.items(mdeps_path(name)):
        if mdep["metadata"].get("finalizers"):
            api.request(
                "PATCH",
                f"{mdeps_path(name)}/{mdep['metadata']['name']}",
                {"metadata": {"finalizers": None}},
                content_type="application/merge-patch+json",
                allow=(404,),
            )
    api.request("DELETE", f"/api/v1/namespaces/{name}", allow=(404,))

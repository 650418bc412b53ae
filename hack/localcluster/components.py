"""The control plane's components as data: how each is started and how it shows it is healthy.

``CONTROL_PLANE`` is started in waves: every component of a wave is launched, then each is awaited
before the next wave starts. A new component (a registry, Kueue) lives in its own module that
builds a ``Component`` and is passed to ``up(..., extra=[...])``, or appended as a wave here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hack.localcluster.kwok import KWOK_NODE_ANNOTATION, kwok_stages
from hack.localcluster.processes import admin_ctx, http_ok, insecure
from hack.localcluster.state import ClusterInfo


@dataclass(frozen=True)
class Timeouts:
    """Seconds each wait of the launcher may take before it fails naming the component and its log."""

    etcd: float = 60
    apiserver: float = 120
    controllers: float = 90  # kube-controller-manager, kube-scheduler, and the `default` ServiceAccount
    kwok: float = 60
    nodes: float = 90  # kwok nodes Ready
    stop_grace: float = 10  # SIGTERM to SIGKILL
    kubectl: float = 120


@dataclass(frozen=True)
class Component:
    """One process of the local cluster. ``ports`` are allocated into ``info.ports`` before any start."""

    name: str
    argv: Callable[[ClusterInfo], list[str]]
    healthy: Callable[[ClusterInfo], bool]
    timeout: Callable[[Timeouts], float]
    ports: tuple[str, ...] = ()


def _etcd_url(info: ClusterInfo) -> str:
    return f"http://127.0.0.1:{info.ports['etcd']}"


def _etcd_argv(info: ClusterInfo) -> list[str]:
    url, peer = _etcd_url(info), f"http://127.0.0.1:{info.ports['etcd-peer']}"
    return [
        str(info.bin_dir / "etcd"),
        f"--data-dir={info.state_dir / 'etcd'}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def _apiserver_argv(info: ClusterInfo) -> list[str]:
    pki = info.pki
    return [
        str(info.bin_dir / "kube-apiserver"),
        f"--etcd-servers={_etcd_url(info)}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={info.ports['apiserver']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction,PodSecurity",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ]


def _client_flags(info: ClusterInfo, user: str) -> list[str]:
    """The kubeconfig flags and the shared flags of the controller-manager and the scheduler."""
    kcfg = info.kubeconfigs / f"{user}.kubeconfig"
    rate = [f"--kube-api-qps={info.client_qps}", f"--kube-api-burst={2 * info.client_qps}"] if info.client_qps else []
    return [
        f"--kubeconfig={kcfg}",
        f"--authentication-kubeconfig={kcfg}",
        f"--authorization-kubeconfig={kcfg}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--v=1",
        *rate,
    ]


def _kcm_argv(info: ClusterInfo) -> list[str]:
    return [
        str(info.bin_dir / "kube-controller-manager"),
        f"--secure-port={info.ports['kcm']}",
        f"--service-account-private-key-file={info.pki / 'sa.key'}",
        f"--root-ca-file={info.pki / 'ca.crt'}",
        "--use-service-account-credentials=true",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
        *_client_flags(info, "controller-manager"),
    ]


def _scheduler_argv(info: ClusterInfo) -> list[str]:
    return [
        str(info.bin_dir / "kube-scheduler"),
        f"--secure-port={info.ports['scheduler']}",
        *_client_flags(info, "scheduler"),
    ]


def _kwok_argv(info: ClusterInfo) -> list[str]:
    stages = info.state_dir / "kwok-stages.yaml"
    stages.write_text(kwok_stages())
    return [
        str(info.bin_dir / "kwok"),
        f"--kubeconfig={info.kubeconfigs / 'kwok.kubeconfig'}",
        f"--config={stages}",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        f"--server-address=127.0.0.1:{info.ports['kwok']}",
        "--node-lease-duration-seconds=40",
    ]


def _healthz(port: str) -> Callable[[ClusterInfo], bool]:
    return lambda info: http_ok(f"https://127.0.0.1:{info.ports[port]}/healthz", insecure())


ETCD = Component(
    "etcd", _etcd_argv, lambda i: http_ok(f"{_etcd_url(i)}/health"), lambda t: t.etcd, ("etcd", "etcd-peer")
)
APISERVER = Component(
    "kube-apiserver",
    _apiserver_argv,
    lambda i: http_ok(f"{i.server}/readyz", admin_ctx(i.pki)),
    lambda t: t.apiserver,
    ("apiserver",),
)
CONTROLLER_MANAGER = Component("kube-controller-manager", _kcm_argv, _healthz("kcm"), lambda t: t.controllers, ("kcm",))
SCHEDULER = Component("kube-scheduler", _scheduler_argv, _healthz("scheduler"), lambda t: t.controllers, ("scheduler",))
KWOK = Component(
    "kwok",
    _kwok_argv,
    lambda i: http_ok(f"http://127.0.0.1:{i.ports['kwok']}/healthz"),
    lambda t: t.kwok,
    ("kwok",),
)

# Started wave by wave; the components of one wave start together.
CONTROL_PLANE: tuple[tuple[Component, ...], ...] = (
    (ETCD,),
    (APISERVER,),
    (CONTROLLER_MANAGER, SCHEDULER, KWOK),
)
COMPONENTS = tuple(c.name for wave in CONTROL_PLANE for c in wave)
BY_NAME = {c.name: c for wave in CONTROL_PLANE for c in wave}

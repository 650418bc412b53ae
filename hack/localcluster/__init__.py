"""A real local Kubernetes control plane on 127.0.0.1, for tests and the demo (docs/architecture.md §5).

etcd, kube-apiserver (secure port, RBAC, PodSecurity admission), kube-controller-manager,
kube-scheduler and kwok (simulated nodes and pod lifecycles), all built from Go modules by
``hack/build-binaries.sh``. No Docker needed.

    python -m hack.localcluster up      # start; prints `export KUBECONFIG=...`
    python -m hack.localcluster env     # print the environment of a running cluster
    python -m hack.localcluster down    # stop every process it started (by PID)

State, certificates, the admin kubeconfig and one log per component live in the state directory
(default ``.localcluster/`` at the repository root, or ``$MODELFRESHNESS_CLUSTER_DIR``).

Modules: ``state`` (ClusterInfo, ClusterError), ``certificates``, ``kwok`` (stages, nodes),
``processes`` (start, wait, stop by PID), ``components`` (each component as data, ``Timeouts``),
``cluster`` (up, down, restart, kubectl), ``cli``. A new component (e.g. a registry) goes in its
own module as a ``components.Component`` and is started with ``up(..., extra=[[component]])``.
"""

from __future__ import annotations

from hack.localcluster.certificates import make_pki, write_kubeconfig
from hack.localcluster.cli import main
from hack.localcluster.cluster import build_binaries, down, kubectl, restart, start_wave, up
from hack.localcluster.components import COMPONENTS, CONTROL_PLANE, Component, Timeouts
from hack.localcluster.kwok import KWOK_NODE_ANNOTATION, STEP_LABEL, kwok_node, kwok_stages
from hack.localcluster.processes import alive
from hack.localcluster.state import DEFAULT_STATE_DIR, REPO, ClusterError, ClusterInfo
from testkit.net import free_port

__all__ = [
    "COMPONENTS",
    "CONTROL_PLANE",
    "DEFAULT_STATE_DIR",
    "KWOK_NODE_ANNOTATION",
    "REPO",
    "STEP_LABEL",
    "ClusterError",
    "ClusterInfo",
    "Component",
    "Timeouts",
    "alive",
    "build_binaries",
    "down",
    "free_port",
    "kubectl",
    "kwok_node",
    "kwok_stages",
    "main",
    "make_pki",
    "restart",
    "start_wave",
    "up",
    "write_kubeconfig",
]

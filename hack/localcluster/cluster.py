"""Bring the local cluster up and down: certificates, ports and kubeconfigs, the components wave
by wave, kwok nodes; stop everything by PID on failure, on ``down`` and for ``restart``."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from hack.localcluster.certificates import make_pki, write_kubeconfig
from hack.localcluster.components import BY_NAME, CONTROL_PLANE, Component, Timeouts
from hack.localcluster.kwok import kwok_node
from hack.localcluster.processes import alive, reap, start, stop, wait_healthy
from hack.localcluster.state import DEFAULT_STATE_DIR, REPO, ClusterError, ClusterInfo
from testkit.net import free_port

CLIENTS = ("admin", "controller-manager", "scheduler", "kwok")


def kubectl(
    info: ClusterInfo, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(info.bin_dir / "kubectl"), *args],
        env=info.env(),
        input=input,
        text=True,
        capture_output=True,
        check=check,
        timeout=timeout,
    )


def build_binaries() -> Path:
    """Run hack/build-binaries.sh (cached; seconds when warm) and return its bin directory."""
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-binaries.sh")], check=True, text=True, stdout=subprocess.PIPE
    )
    return Path(out.stdout.strip().splitlines()[-1])


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    bin_dir: Path | None = None,
    nodes: int = 2,
    *,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, never mutated
    extra: Sequence[Sequence[Component]] = (),
    api_qps: int | None = None,
) -> ClusterInfo:
    """Start the control plane, then the ``extra`` waves of components; on failure stop what was
    started and raise ClusterError. ``api_qps``: the controller-manager's and scheduler's client
    rate (their defaults, 20 and 50 per second, make 10,000 Deployments' pods take most of an hour)."""
    existing = ClusterInfo.load(state_dir)
    if existing and any(alive(p) for p in existing.pids.values()):
        raise ClusterError(f"a local cluster is already running from {state_dir}; run `down` first")
    bin_dir = bin_dir or build_binaries()
    for sub in ("pki", "logs", "etcd", "kubeconfigs"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    for old in (state_dir / "logs").glob("*.log"):
        old.unlink()
    waves: list[Sequence[Component]] = [*CONTROL_PLANE, *extra]
    ports = {p: free_port() for wave in waves for c in wave for p in c.ports}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kubeconfig = state_dir / "kubeconfigs" / "admin.kubeconfig"
    info = ClusterInfo(state_dir, bin_dir, kubeconfig, server, ports=ports, client_qps=api_qps)
    make_pki(info.pki)
    for user in CLIENTS:
        write_kubeconfig(info.kubeconfigs / f"{user}.kubeconfig", server, info.pki, user)
    try:
        for core in CONTROL_PLANE:
            start_wave(info, core, timeouts)
        _wait_for_nodes(info, nodes, timeouts)
        for wave in extra:
            start_wave(info, wave, timeouts)
    except BaseException:
        down(state_dir, info, timeouts=timeouts)
        raise
    return info


def start_wave(info: ClusterInfo, wave: Sequence[Component], timeouts: Timeouts) -> None:
    """Launch every component of ``wave`` (recorded in state.json at once), then wait for each."""
    for c in wave:
        info.argv[c.name] = c.argv(info)
        info.pids[c.name] = start(c.name, info.argv[c.name], info.log_dir)
        info.save()
    for c in wave:
        _await(info, c, timeouts)


def _await(info: ClusterInfo, c: Component, timeouts: Timeouts) -> None:
    wait_healthy(
        c.name, info.log_dir / f"{c.name}.log", info.pids[c.name], lambda: c.healthy(info), c.timeout(timeouts)
    )


def _wait_for_nodes(info: ClusterInfo, nodes: int, timeouts: Timeouts) -> None:
    for i in range(nodes):
        kubectl(info, "apply", "-f", "-", input=json.dumps(kwok_node(f"kwok-node-{i}", gpus=8)))

    def nodes_ready() -> bool:
        out = kubectl(info, "get", "nodes", "-l", "type=kwok", "-o", "json", timeout=timeouts.kubectl).stdout
        items = json.loads(out)["items"]
        ready = [
            n
            for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]
        return len(ready) >= nodes

    wait_healthy("kwok", info.log_dir / "kwok.log", info.pids["kwok"], nodes_ready, timeouts.nodes)
    # Pods are refused until the service-account controller has created `default` in the namespace.
    kcm = "kube-controller-manager"
    wait_healthy(
        kcm,
        info.log_dir / f"{kcm}.log",
        info.pids[kcm],
        lambda: kubectl(info, "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
        timeouts.controllers,
    )


def restart(
    info: ClusterInfo,
    names: Sequence[str],
    down_for: float = 1.0,
    *,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, never mutated
) -> None:
    """Stop the named components (by PID), wait ``down_for`` seconds, start them again with the
    same arguments and data, and wait until etcd and the API server are healthy. For fault tests:
    clients see refused connections, then a fresh API server."""
    unknown = sorted(set(names) - set(info.argv))
    if unknown:
        raise ClusterError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(info.argv)}")
    order = list(info.argv)
    for name in reversed(order):
        if name in names:
            stop(info.pids[name], timeouts.stop_grace)
    time.sleep(down_for)
    for name in order:
        if name in names:
            info.pids[name] = start(name, info.argv[name], info.log_dir)
    info.save()
    for name in ("etcd", "kube-apiserver"):
        _await(info, BY_NAME[name], timeouts)


def down(
    state_dir: Path = DEFAULT_STATE_DIR,
    info: ClusterInfo | None = None,
    *,
    timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, never mutated
) -> list[str]:
    """Stop every process the launcher started (by PID, in reverse start order). Returns what it stopped."""
    info = info or ClusterInfo.load(state_dir)
    if info is None:
        return []
    stopped = []
    for name in reversed(list(info.pids)):
        pid = info.pids[name]
        if alive(pid):
            stop(pid, timeouts.stop_grace)
            stopped.append(name)
        reap(pid)  # a component that died on its own is still our zombie until waited for
    state = state_dir / "state.json"
    if state.exists():
        state.unlink()
    return stopped

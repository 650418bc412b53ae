"""A real local Kubernetes control plane on 127.0.0.1, for tests and the demo (docs/architecture.md §5).

etcd, kube-apiserver (secure port, RBAC, PodSecurity admission), kube-controller-manager,
kube-scheduler and kwok (simulated nodes and pod lifecycles), all built from Go modules by
``hack/build-binaries.sh``. No Docker needed.

    python -m hack.localcluster up      # start; prints `export KUBECONFIG=...`
    python -m hack.localcluster env     # print the environment of a running cluster
    python -m hack.localcluster down    # stop every process it started (by PID)

State, certificates, the admin kubeconfig and one log per component live in the state directory
(default ``.localcluster/`` at the repository root, or ``$MODELFRESHNESS_CLUSTER_DIR``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = Path(os.environ.get("MODELFRESHNESS_CLUSTER_DIR", REPO / ".localcluster"))
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Pods of the operator's steps are left Running by kwok: a test (or the demo's process runner)
# finishes them with the step's real result in the termination message.
STEP_LABEL = "modelfreshness.io/step"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """A component did not come up; the message names it and the path of its log."""


@dataclass
class ClusterInfo:
    """What a running local cluster looks like to its users. Plain data, saved as state.json."""

    state_dir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)  # how each component was started (restart)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def to_json(self) -> str:
        return json.dumps(
            {
                "state_dir": str(self.state_dir),
                "bin_dir": str(self.bin_dir),
                "kubeconfig": str(self.kubeconfig),
                "server": self.server,
                "pids": self.pids,
                "ports": self.ports,
                "argv": self.argv,
            },
            indent=2,
        )

    @classmethod
    def load(cls, state_dir: Path) -> ClusterInfo | None:
        path = state_dir / "state.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(
            state_dir=Path(raw["state_dir"]),
            bin_dir=Path(raw["bin_dir"]),
            kubeconfig=Path(raw["kubeconfig"]),
            server=raw["server"],
            pids={k: int(v) for k, v in raw["pids"].items()},
            ports={k: int(v) for k, v in raw["ports"].items()},
            argv={k: list(v) for k, v in raw.get("argv", {}).items()},
        )


# ---------------------------------------------------------------- certificates


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _cert(
    subject_cn: str,
    key: rsa.RSAPrivateKey,
    *,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    org: str | None = None,
    sans: Sequence[str] = (),
    client: bool = False,
) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    name = x509.Name(attrs)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        import ipaddress

        entries: list[x509.GeneralName] = []
        for s in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                entries.append(x509.DNSName(s))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(pki: Path) -> None:
    """CA, apiserver serving cert, client certs per component, service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("modelfreshness-local-ca", ca_key)
    _write_key(ca_key, pki / "ca.key")
    _write_cert(ca, pki / "ca.crt")
    sans = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "10.0.0.1"]
    srv_key = _key()
    _write_key(srv_key, pki / "apiserver.key")
    _write_cert(_cert("kube-apiserver", srv_key, issuer=(ca, ca_key), sans=sans), pki / "apiserver.crt")
    clients = {
        "admin": ("kubernetes-admin", "system:masters"),
        "controller-manager": ("system:kube-controller-manager", None),
        "scheduler": ("system:kube-scheduler", None),
        "kwok": ("kwok-controller", "system:masters"),
    }
    for name, (cn, org) in clients.items():
        k = _key()
        _write_key(k, pki / f"{name}.key")
        _write_cert(_cert(cn, k, issuer=(ca, ca_key), org=org, client=True), pki / f"{name}.crt")
    sa = _key()
    _write_key(sa, pki / "sa.key")
    (pki / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "local", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
                ],
                "users": [
                    {
                        "name": user,
                        "user": {
                            "client-certificate": str(pki / f"{user}.crt"),
                            "client-key": str(pki / f"{user}.key"),
                        },
                    }
                ],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
                "current-context": "local",
            },
            indent=2,
        )
    )
    path.chmod(0o600)


# ---------------------------------------------------------------- kwok configuration


def kwok_stages() -> str:
    """kwok's 'fast' pod stages, except that pods carrying STEP_LABEL are never completed by kwok."""
    ready = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pod-ready"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.podIP", "operator": "DoesNotExist"},
                ]
            },
            "next": {"statusTemplate": _POD_READY_TEMPLATE},
        },
    }
    complete = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pod-complete"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                    {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
                    {"key": f'.metadata.labels["{STEP_LABEL}"]', "operator": "DoesNotExist"},
                ]
            },
            "next": {"statusTemplate": _POD_COMPLETE_TEMPLATE},
        },
    }
    delete = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": "pod-delete"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}]},
            "next": {"finalizers": {"empty": True}, "delete": True},
        },
    }
    return "\n---\n".join(json.dumps(d) for d in (ready, complete, delete))


_POD_READY_TEMPLATE = """\
{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""

_POD_COMPLETE_TEMPLATE = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Succeeded
"""


def kwok_node(name: str, gpus: int) -> dict[str, object]:
    """A fake node kwok manages: schedulable, with CPU, memory and GPUs to satisfy Job requests."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
            },
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(name: str, argv: list[str], log_dir: Path) -> int:
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except OSError as exc:
        raise ClusterError(f"{name} could not be started ({exc}); see its log: {log_dir / f'{name}.log'}") from exc
    finally:
        log.close()
    return proc.pid


def _launch(info: ClusterInfo, name: str, argv: list[str], log_dir: Path) -> int:
    info.argv[name] = argv
    return _start(name, argv, log_dir)


def restart(info: ClusterInfo, names: Sequence[str], down_for: float = 1.0) -> None:
    """Stop the named components (by PID), wait ``down_for`` seconds, start them again with the
    same arguments and data, and wait until etcd and the API server are healthy. For fault tests:
    clients see refused connections, then a fresh API server."""
    unknown = sorted(set(names) - set(COMPONENTS))
    if unknown:
        raise ClusterError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}")
    for name in reversed(COMPONENTS):
        if name in names:
            _stop(info.pids[name])
    time.sleep(down_for)
    for name in COMPONENTS:
        if name in names:
            info.pids[name] = _start(name, info.argv[name], info.log_dir)
    (info.state_dir / "state.json").write_text(info.to_json())
    logs, etcd = info.log_dir, f"http://127.0.0.1:{info.ports['etcd']}/health"
    _wait("etcd", logs / "etcd.log", info.pids["etcd"], lambda: _http_ok(etcd), 60)
    ctx = _admin_ctx(info.state_dir / "pki")
    ready = f"{info.server}/readyz"
    _wait("kube-apiserver", logs / "kube-apiserver.log", info.pids["kube-apiserver"], lambda: _http_ok(ready, ctx), 120)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own exited child) still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _wait(name: str, log: Path, pid: int, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise ClusterError(f"{name} exited during start-up; see its log: {log}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise ClusterError(f"{name} did not become healthy within {timeout:.0f}s; see its log: {log}")


def _http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
        return bool(resp.status == 200)


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _admin_ctx(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def kubectl(
    info: ClusterInfo, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(info.bin_dir / "kubectl"), *args],
        env=info.env(),
        input=input,
        text=True,
        capture_output=True,
        check=check,
        timeout=120,
    )


def build_binaries() -> Path:
    """Run hack/build-binaries.sh (cached; seconds when warm) and return its bin directory."""
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "build-binaries.sh")], check=True, text=True, stdout=subprocess.PIPE
    )
    return Path(out.stdout.strip().splitlines()[-1])


def up(
    state_dir: Path = DEFAULT_STATE_DIR, bin_dir: Path | None = None, nodes: int = 2, api_qps: int | None = None
) -> ClusterInfo:
    """Start the whole control plane; on failure stop what was started and raise ClusterError.
    ``api_qps``: the controller-manager's and scheduler's client rate (their default, 20 and 50 per
    second, makes creating 10,000 Deployments' pods take most of an hour)."""
    existing = ClusterInfo.load(state_dir)
    if existing and any(_alive(p) for p in existing.pids.values()):
        raise ClusterError(f"a local cluster is already running from {state_dir}; run `down` first")
    bin_dir = bin_dir or build_binaries()
    for sub in ("pki", "logs", "etcd", "kubeconfigs"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    for old in (state_dir / "logs").glob("*.log"):
        old.unlink()
    pki = state_dir / "pki"
    make_pki(pki)
    ports = {n: free_port() for n in ("etcd", "etcd-peer", "apiserver", "kcm", "scheduler", "kwok")}
    server = f"https://127.0.0.1:{ports['apiserver']}"
    kcfg = state_dir / "kubeconfigs"
    for user in ("admin", "controller-manager", "scheduler", "kwok"):
        write_kubeconfig(kcfg / f"{user}.kubeconfig", server, pki, user)
    info = ClusterInfo(state_dir, bin_dir, kcfg / "admin.kubeconfig", server, ports=ports)
    logs = info.log_dir
    try:
        _up_components(info, pki, kcfg, logs, api_qps)
        _wait_for_cluster(info, nodes)
    except BaseException:
        down(state_dir, info)
        raise
    return info


def _up_components(info: ClusterInfo, pki: Path, kcfg: Path, logs: Path, api_qps: int | None = None) -> None:
    b, p, d = info.bin_dir, info.ports, info.state_dir

    def save() -> None:
        (d / "state.json").write_text(info.to_json())

    etcd_url = f"http://127.0.0.1:{p['etcd']}"
    peer_url = f"http://127.0.0.1:{p['etcd-peer']}"
    info.pids["etcd"] = _launch(
        info,
        "etcd",
        [
            str(b / "etcd"),
            f"--data-dir={d / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        logs,
    )
    save()
    _wait("etcd", logs / "etcd.log", info.pids["etcd"], lambda: _http_ok(f"{etcd_url}/health"), 60)

    info.pids["kube-apiserver"] = _launch(
        info,
        "kube-apiserver",
        [
            str(b / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p['apiserver']}",
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
        ],
        logs,
    )
    save()
    ctx = _admin_ctx(pki)
    _wait(
        "kube-apiserver",
        logs / "kube-apiserver.log",
        info.pids["kube-apiserver"],
        lambda: _http_ok(f"{info.server}/readyz", ctx),
        120,
    )

    common = ["--leader-elect=false", "--bind-address=127.0.0.1", "--v=1"]
    if api_qps:
        common += [f"--kube-api-qps={api_qps}", f"--kube-api-burst={2 * api_qps}"]
    cm = kcfg / "controller-manager.kubeconfig"
    info.pids["kube-controller-manager"] = _launch(
        info,
        "kube-controller-manager",
        [
            str(b / "kube-controller-manager"),
            f"--kubeconfig={cm}",
            f"--authentication-kubeconfig={cm}",
            f"--authorization-kubeconfig={cm}",
            f"--secure-port={p['kcm']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
            *common,
        ],
        logs,
    )
    sc = kcfg / "scheduler.kubeconfig"
    info.pids["kube-scheduler"] = _launch(
        info,
        "kube-scheduler",
        [
            str(b / "kube-scheduler"),
            f"--kubeconfig={sc}",
            f"--authentication-kubeconfig={sc}",
            f"--authorization-kubeconfig={sc}",
            f"--secure-port={p['scheduler']}",
            *common,
        ],
        logs,
    )
    stages = d / "kwok-stages.yaml"
    stages.write_text(kwok_stages())
    info.pids["kwok"] = _launch(
        info,
        "kwok",
        [
            str(b / "kwok"),
            f"--kubeconfig={kcfg / 'kwok.kubeconfig'}",
            f"--config={stages}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{p['kwok']}",
            "--node-lease-duration-seconds=40",
        ],
        logs,
    )
    save()
    insecure = _insecure()
    for name, port in (("kube-controller-manager", p["kcm"]), ("kube-scheduler", p["scheduler"])):
        _wait(
            name,
            logs / f"{name}.log",
            info.pids[name],
            lambda port=port: _http_ok(  # type: ignore[misc]
                f"https://127.0.0.1:{port}/healthz", insecure
            ),
            90,
        )
    _wait("kwok", logs / "kwok.log", info.pids["kwok"], lambda: _http_ok(f"http://127.0.0.1:{p['kwok']}/healthz"), 60)


def _wait_for_cluster(info: ClusterInfo, nodes: int) -> None:
    for i in range(nodes):
        kubectl(info, "apply", "-f", "-", input=json.dumps(kwok_node(f"kwok-node-{i}", gpus=8)))
    logs = info.log_dir

    def nodes_ready() -> bool:
        out = kubectl(info, "get", "nodes", "-l", "type=kwok", "-o", "json").stdout
        items = json.loads(out)["items"]
        ready = [
            n
            for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]
        return len(ready) >= nodes

    _wait("kwok", logs / "kwok.log", info.pids["kwok"], nodes_ready, 90)
    # Pods are refused until the service-account controller has created `default` in the namespace.
    _wait(
        "kube-controller-manager",
        logs / "kube-controller-manager.log",
        info.pids["kube-controller-manager"],
        lambda: kubectl(info, "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
        90,
    )


def down(state_dir: Path = DEFAULT_STATE_DIR, info: ClusterInfo | None = None) -> list[str]:
    """Stop every process the launcher started (by PID, in reverse order). Returns what it stopped."""
    info = info or ClusterInfo.load(state_dir)
    if info is None:
        return []
    stopped = []
    for name in reversed(COMPONENTS):
        pid = info.pids.get(name)
        if pid and _alive(pid):
            _stop(pid)
            stopped.append(name)
        if pid:
            _reap(pid)  # a component that died on its own is still our zombie until waited for
    state = state_dir / "state.json"
    if state.exists():
        state.unlink()
    return stopped


def _stop(pid: int, grace: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            _reap(pid)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect a dead child's exit status (blocking is safe: it is already dead or a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _print_env(info: ClusterInfo) -> None:
    print(f"export KUBECONFIG={info.kubeconfig}")
    print(f"export PATH={info.bin_dir}:$PATH")
    print(f"# logs: {info.log_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.localcluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "env"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--nodes", type=int, default=2, help="kwok nodes to create (default 2)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            start = time.monotonic()
            info = up(args.state_dir, nodes=args.nodes)
            print(f"# local control plane up in {time.monotonic() - start:.1f}s at {info.server}", file=sys.stderr)
            _print_env(info)
        elif args.command == "down":
            stopped = down(args.state_dir)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
        else:
            loaded = ClusterInfo.load(args.state_dir)
            if loaded is None:
                print(f"no local cluster state in {args.state_dir}; run `up` first", file=sys.stderr)
                return 1
            _print_env(loaded)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real Kueue (``sigs.k8s.io/kueue``, the version hack/gomod/kueue/go.mod pins) on the local control plane.

The controller manager runs as a local process, like the other components of hack/localcluster.py:
its CRDs (``config/components/crd/bases`` of the same module version, copied into the binary cache
by ``hack/build-binaries.sh kueue``) are applied, its webhook server listens on 127.0.0.1 with a
self-signed certificate, and the Mutating/ValidatingWebhookConfigurations point at
``url: https://127.0.0.1:PORT/...`` with that CA as ``caBundle`` (no Service, no cert-manager). Only
the ``batch/job`` integration is enabled, and only the webhooks it and Kueue's own kinds need are
registered. It uses the admin kubeconfig (the test cluster's; Kueue's own RBAC is not under test).

    python -m hack.kueue up      # against `python -m hack.localcluster up`'s cluster
    python -m hack.kueue down    # stop it and remove its webhook configurations

``stop`` removes the webhook configurations before it stops the process: a registered webhook whose
server is gone (failurePolicy Fail) would refuse every Job in the cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization

from hack import localcluster as lc
from hack.localcluster import certificates as certs_
from hack.localcluster import processes as proc

GO_MOD = lc.REPO / "hack" / "gomod" / "kueue" / "go.mod"
NAMESPACE = "kueue-system"
WEBHOOK_NAMES = ("modelfreshness-kueue-mutating", "modelfreshness-kueue-validating")
# Webhooks kept from Kueue's manifests: the Job integration and Kueue's own kinds.
_KEEP_PATHS = ("-batch-v1-job", "-kueue-x-k8s-io-")
# CRDs that Kueue's kustomization gives a conversion webhook (config/components/crd/kustomization.yaml).
_CONVERTED = frozenset({"localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters"})


def version() -> str:
    for line in GO_MOD.read_text().splitlines():
        parts = line.split()
        if parts[:2] == ["require", "sigs.k8s.io/kueue"]:
            return parts[2]
    raise lc.ClusterError(f"{GO_MOD} does not require sigs.k8s.io/kueue")


BUILD_ARGV = ("bash", str(lc.REPO / "hack" / "build-binaries.sh"), "kueue")  # also run by tests/conftest.py


def build() -> Path:
    """``hack/build-binaries.sh kueue`` (cached by version; a cold build compiles Kueue) -> bin dir."""
    out = subprocess.run(BUILD_ARGV, check=True, text=True, stdout=subprocess.PIPE)
    return Path(out.stdout.strip().splitlines()[-1])


@dataclass
class Kueue:
    """A running Kueue controller manager: where it listens and what it registered."""

    state_dir: Path
    kubeconfig: Path
    bin_dir: Path
    pid: int
    webhook_port: int
    health_port: int

    @property
    def log(self) -> Path:
        return self.state_dir / "kueue.log"


def _kubectl(kubeconfig: Path, bin_dir: Path, *args: str, input: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run(
        [str(bin_dir / "kubectl"), *args], env=env, input=input, text=True, capture_output=True, timeout=180
    )
    if proc.returncode != 0:
        raise lc.ClusterError(f"kubectl {' '.join(args[:3])}... failed: {proc.stderr.strip()[-800:]}")
    return proc.stdout


def _serving_cert(certs: Path) -> bytes:
    """A CA and a serving certificate for 127.0.0.1; returns the CA (PEM) for the caBundle."""
    certs.mkdir(parents=True, exist_ok=True)
    ca_key = certs_._key()
    ca = certs_._cert("modelfreshness-kueue-webhook-ca", ca_key)
    key = certs_._key()
    certs_._write_key(key, certs / "tls.key")
    certs_._write_cert(certs_._cert("kueue-webhook", key, issuer=(ca, ca_key), sans=["127.0.0.1"]), certs / "tls.crt")
    return ca.public_bytes(serialization.Encoding.PEM)


def config(webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2) for a local process."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
        # The on-demand visibility API is an aggregated API server; nothing here needs it.
        "featureGates": {"VisibilityOnDemand": False},
    }


def _crds(manifests: Path, url: str, ca: bytes) -> str:
    import base64

    docs = []
    for path in sorted((manifests / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["plural"] in _CONVERTED:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": f"{url}/convert", "caBundle": base64.b64encode(ca).decode()},
                    "conversionReviewVersions": ["v1"],
                },
            }
        docs.append(json.dumps(crd))
    return "\n---\n".join(docs)


def webhook_configurations(manifests: Path, url: str, ca: bytes) -> list[dict[str, Any]]:
    """Kueue's webhook manifests, kept to the Job integration and Kueue's kinds, pointed at ``url``."""
    import base64

    out = []
    for doc, name in zip(yaml.safe_load_all((manifests / "webhooks.yaml").read_text()), WEBHOOK_NAMES, strict=True):
        kept = []
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            if any(k in path for k in _KEEP_PATHS):
                hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": base64.b64encode(ca).decode()}
                kept.append(hook)
        out.append({**doc, "metadata": {"name": name}, "webhooks": kept})
    return out


# Kueue v0.17 reads its metrics certificate from this fixed path when internal cert management is
# off, and exits without it (even with metrics off). The launcher gives the process a private mount
# namespace in which an overlay on /etc (its writes on a tmpfs) holds our certificate there: the
# host's /etc is left untouched. Needs root and unshare, as the dev kubelet (process_runner) does.
METRICS_CERTS = "/etc/kueue/metrics/certs"
_LAUNCH = """set -e
ovl="$1"; certs="$2"; shift 2
mount -t tmpfs tmpfs "$ovl"
mkdir "$ovl/upper" "$ovl/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$ovl/upper,workdir=$ovl/work" /etc
mkdir -p "$(dirname {target})"
cp -r "$certs" {target}
exec "$@"
""".replace("{target}", METRICS_CERTS)


def _launcher(state_dir: Path) -> list[str]:
    """argv prefix: run the rest in a private mount namespace with the metrics cert at METRICS_CERTS.
    The shell execs the command, so the PID started is Kueue's own."""
    overlay = state_dir / "etc-overlay"
    overlay.mkdir(exist_ok=True)
    launch = ["sh", "-c", _LAUNCH, "kueue-launch", str(overlay), str(state_dir / "certs")]
    return ["unshare", "--mount", "--propagation", "private", *launch]


def start(kubeconfig: Path, bin_dir: Path, state_dir: Path, timeout: float = 180) -> Kueue:
    """Install Kueue's CRDs, start the controller manager, register its webhooks once it is ready."""
    manifests = bin_dir / "kueue-manifests"
    if not (bin_dir / "kueue").exists() or not manifests.exists():
        raise lc.ClusterError(f"no Kueue in {bin_dir}; run `bash hack/build-binaries.sh kueue`")
    state_dir.mkdir(parents=True, exist_ok=True)
    webhook_port, health_port = lc.free_port(), lc.free_port()
    url = f"https://127.0.0.1:{webhook_port}"
    ca = _serving_cert(state_dir / "certs")
    (state_dir / "config.yaml").write_text(json.dumps(config(webhook_port, health_port, state_dir / "certs")))
    kc = (kubeconfig, bin_dir)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    _kubectl(*kc, "apply", "-f", "-", input=json.dumps(namespace))
    # Server-side apply: the Workload CRD is larger than client-side apply's annotation allows.
    _kubectl(*kc, "apply", "--server-side", "--force-conflicts", "-f", "-", input=_crds(manifests, url, ca))
    _wait_established(kubeconfig, bin_dir, manifests)
    config_file = state_dir / "config.yaml"
    argv = [*_launcher(state_dir), str(bin_dir / "kueue"), f"--config={config_file}", f"--kubeconfig={kubeconfig}"]
    pid = proc.start("kueue", argv, state_dir)
    kueue = Kueue(state_dir, kubeconfig, bin_dir, pid, webhook_port, health_port)
    (state_dir / "kueue.json").write_text(json.dumps({k: str(v) for k, v in asdict(kueue).items()}))
    try:
        ready = f"http://127.0.0.1:{health_port}/readyz"
        proc.wait_healthy("kueue", kueue.log, pid, lambda: proc.http_ok(ready), timeout)
        hooks = webhook_configurations(manifests, url, ca)
        _kubectl(*kc, "apply", "-f", "-", input="\n---\n".join(json.dumps(h) for h in hooks))
        _wait_webhook_served(kueue)
    except BaseException:
        stop(kueue)
        raise
    return kueue


def _wait_established(kubeconfig: Path, bin_dir: Path, manifests: Path, timeout: float = 60) -> None:
    """Poll: ``kubectl wait`` errors out on a CRD that has no status.conditions yet."""
    names = {f"{p.stem.split('_', 1)[1]}.kueue.x-k8s.io" for p in (manifests / "crds").glob("*.yaml")}
    deadline = time.monotonic() + timeout
    while True:
        items = json.loads(_kubectl(kubeconfig, bin_dir, "get", "crd", "-o", "json"))["items"]
        done = set()
        for crd in items:
            conditions = (crd.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                done.add(crd["metadata"]["name"])
        if names <= done:
            return
        if time.monotonic() > deadline:
            raise lc.ClusterError(f"Kueue's CRDs not established within {timeout:.0f}s: {sorted(names - done)}")
        time.sleep(0.5)


def _wait_webhook_served(kueue: Kueue, timeout: float = 60) -> None:
    """A dry-run ResourceFlavor goes through Kueue's webhooks: they answer over the registered URL."""
    probe = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "webhook-probe"}}
    deadline = time.monotonic() + timeout
    while True:
        try:
            _kubectl(kueue.kubeconfig, kueue.bin_dir, "create", "--dry-run=server", "-f", "-", input=json.dumps(probe))
            return
        except lc.ClusterError:
            if time.monotonic() > deadline or not proc.alive(kueue.pid):
                raise
            time.sleep(0.5)


def stop(kueue: Kueue) -> None:
    """Unregister the webhooks (so Jobs are admitted without Kueue again), then stop the process."""
    kinds = ("mutatingwebhookconfiguration", "validatingwebhookconfiguration")
    for kind, name in zip(kinds, WEBHOOK_NAMES, strict=True):
        try:
            _kubectl(kueue.kubeconfig, kueue.bin_dir, "delete", kind, name, "--ignore-not-found")
        except lc.ClusterError as exc:
            print(f"warning: {exc}", file=sys.stderr)
    if proc.alive(kueue.pid):
        proc.stop(kueue.pid)
    proc.reap(kueue.pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.kueue", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=lc.DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    info = lc.ClusterInfo.load(args.state_dir)
    if info is None:
        print(f"no local cluster in {args.state_dir}; run `python -m hack.localcluster up` first", file=sys.stderr)
        return 1
    saved = args.state_dir / "kueue" / "kueue.json"
    try:
        if args.command == "up":
            bin_dir = build()
            k = start(info.kubeconfig, bin_dir, args.state_dir / "kueue")
            print(f"# kueue {version()} up (pid {k.pid}), webhooks at https://127.0.0.1:{k.webhook_port}; log {k.log}")
        elif saved.exists():
            raw = json.loads(saved.read_text())
            stop(
                Kueue(
                    Path(raw["state_dir"]),
                    Path(raw["kubeconfig"]),
                    Path(raw["bin_dir"]),
                    int(raw["pid"]),
                    int(raw["webhook_port"]),
                    int(raw["health_port"]),
                )
            )
            saved.unlink()
    except lc.ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

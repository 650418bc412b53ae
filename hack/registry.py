"""A real image registry on loopback for the local cluster, tests and the demo. Touches processes.

``start(workdir)`` runs the distribution project's ``registry`` (built from Go modules by
hack/build-binaries.sh) on ``127.0.0.1:<free port>``: plain HTTP, no auth, filesystem storage under
``workdir/storage``, its log at ``workdir/registry.log``; it returns once ``/v2/`` answers. The
``Registry`` it returns knows its ``host`` (``127.0.0.1:PORT``, the prefix of image references) and
``stop()``s the process (by its PID). With the local cluster instead: ``localcluster.up(...,
extra=[[registry.component()]])`` starts it as one more component (port ``info.ports["registry"]``,
storage under the state folder, stopped by ``down``), and ``registry.of_cluster(info)`` gives the
same ``Registry`` handle. ``publish_server_base`` puts the model server's base image
there (see its docstring) so ``freshness-trainer package --push`` can ``crane append`` onto it
without reaching the internet; ``push_model`` packages a model file as the package step does.
crane speaks plain HTTP to it with ``--insecure``.

    python -m hack.registry up [--workdir DIR]   # start; prints the host, the base image, the PID
    python -m hack.registry down [--workdir DIR]  # stop the one started from DIR
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from hack.localcluster.components import Component
from hack.localcluster.processes import alive, wait_healthy
from hack.localcluster.processes import start as start_process
from hack.localcluster.processes import stop as stop_process
from hack.localcluster.state import REPO, ClusterError, ClusterInfo
from testkit.net import free_port, http_ok

DEFAULT_WORKDIR = REPO / ".localcluster" / "registry"
START_TIMEOUT = 60.0  # seconds; a single Go binary with a local folder, up in well under one
SERVER_BASE_REPO = "freshness-server"
SERVER_BASE_TAG = "dev"
CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
  secret: {secret}
"""


class RegistryError(RuntimeError):
    """The registry (or crane) failed; the message names the log or the command's error."""


@dataclass
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, ``url`` its HTTP base URL."""

    host: str
    pid: int
    workdir: Path
    crane: str
    log_dir: Path | None = None  # where registry.log is (default: workdir)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log(self) -> Path:
        return (self.log_dir or self.workdir) / "registry.log"

    def ref(self, repo: str, tag_or_digest: str = "") -> str:
        """``host/repo``, ``host/repo:tag`` or ``host/repo@sha256:...``."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.host}/{repo}{sep + tag_or_digest if tag_or_digest else ''}"

    def crane_run(self, *args: str, stdin: bytes | None = None) -> str:
        """``crane --insecure ARGS``; its stdout, or RegistryError with its stderr."""
        proc = subprocess.run([self.crane, "--insecure", *args], input=stdin, capture_output=True, check=False,
                              timeout=300)
        if proc.returncode != 0:
            raise RegistryError(f"crane {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()[-600:]}")
        return proc.stdout.decode().strip()

    def digest(self, ref: str) -> str:
        """The manifest digest the registry reports for ``ref`` (``crane digest``)."""
        return self.crane_run("digest", ref)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the storage stays in ``workdir``."""
        stop_process(self.pid, grace)
        (self.workdir / "registry.json").unlink(missing_ok=True)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def find_binary(name: str, bin_dir: Path | None = None) -> str:
    """``bin_dir/name``, else ``name`` on PATH, else the one hack/build-binaries.sh links."""
    cache = Path(os.environ.get("MODELFRESHNESS_CACHE", Path.home() / ".cache" / "modelfreshness"))
    for candidate in (bin_dir / name if bin_dir else None, shutil.which(name), cache / "bin" / "current" / name):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RegistryError(f"no `{name}` binary: run `bash hack/build-binaries.sh` (or `make binaries`)")


def _argv(registry_bin: str, workdir: Path, host: str) -> list[str]:
    """Write the registry's config for ``host`` with storage in ``workdir``; the command that serves it."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config.yml"
    config.write_text(CONFIG.format(root=workdir / "storage", addr=host, secret=secrets.token_hex(16)))
    return [registry_bin, "serve", str(config)]


def start(workdir: Path = DEFAULT_WORKDIR, bin_dir: Path | None = None, port: int = 0,
          timeout: float = START_TIMEOUT) -> Registry:
    """Start the registry on 127.0.0.1 (``port`` 0: a free one) and wait until ``/v2/`` answers."""
    registry_bin, crane = find_binary("registry", bin_dir), find_binary("crane", bin_dir)
    host = f"127.0.0.1:{port or free_port()}"
    argv = _argv(registry_bin, workdir, host)
    reg = Registry(host, start_process("registry", argv, workdir), workdir, crane)
    try:
        wait_healthy("registry", reg.log, reg.pid, lambda: http_ok(f"{reg.url}/v2/"), timeout)
    except ClusterError as exc:
        reg.stop()
        raise RegistryError(str(exc)) from exc
    (workdir / "registry.json").write_text(json.dumps({"host": host, "pid": reg.pid, "crane": crane}))
    return reg


def component() -> Component:
    """The registry as one more component of the local cluster: ``up(..., extra=[[component()]])``."""
    def argv(info: ClusterInfo) -> list[str]:
        return _argv(str(info.bin_dir / "registry"), info.state_dir / "registry", f"127.0.0.1:{info.ports['registry']}")

    return Component("registry", argv, lambda info: http_ok(f"http://127.0.0.1:{info.ports['registry']}/v2/"),
                     lambda _timeouts: START_TIMEOUT, ports=("registry",))


def of_cluster(info: ClusterInfo) -> Registry:
    """The handle of the registry ``component()`` started with ``info``'s cluster."""
    return Registry(f"127.0.0.1:{info.ports['registry']}", info.pids["registry"], info.state_dir / "registry",
                    find_binary("crane", info.bin_dir), info.log_dir)


def _blob(out: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def server_base_layout(out: Path) -> None:
    """An OCI layout of the model server's base image as the dev kubelet runs it: the config of
    Dockerfile.server (entrypoint ``freshness-serve``, MODEL_PATH, ports, UID 65532) and one tiny
    layer with the empty ``/model`` folder and ``/models -> model``. Its programs are not in it:
    the dev kubelet runs commands from its own Python (hack/kubelet/image.py). Deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("model")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        link = tarfile.TarInfo("models")
        link.type, link.linkname = tarfile.SYMTYPE, "model"
        tar.addfile(folder)
        tar.addfile(link)
    raw = buf.getvalue()
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layer = _blob(out, gzip.compress(raw, compresslevel=9, mtime=0))
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["freshness-serve"], "User": "65532:65532",
                   "Env": ["MODEL_PATH=/model/model.pt", "HTTP_PORT=8080", "GRPC_PORT=8081", "PYTHONUNBUFFERED=1"],
                   "ExposedPorts": {"8080/tcp": {}, "8081/tcp": {}},
                   "Labels": {"org.opencontainers.image.title": "freshness-server"}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }
    cfg = _blob(out, json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}
    desc = _blob(out, json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "manifests": [{"mediaType": manifest["mediaType"], **desc}]}
    (out / "index.json").write_text(json.dumps(index))
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')


def publish_server_base(reg: Registry) -> str:
    """Push the server base image as ``host/freshness-server:dev``; returns it pinned by digest.
    ``package --push --base-image <that>`` then runs offline (FRESHNESS_SERVER_IMAGE)."""
    ref = reg.ref(SERVER_BASE_REPO, SERVER_BASE_TAG)
    with tempfile.TemporaryDirectory(prefix="server-base-") as tmp:
        server_base_layout(Path(tmp))
        reg.crane_run("push", tmp, ref)
    return reg.ref(SERVER_BASE_REPO, reg.digest(ref))


def push_model(reg: Registry, model_file: Path, repo: str, tag: str, base: str) -> str:
    """What the package step does (freshness_trainer.oci: build, then crane append onto ``base``) for
    ``model_file`` as ``host/repo:tag``; returns it pinned by the digest the registry reports."""
    from freshness_trainer import oci

    image = reg.ref(repo, tag)
    with tempfile.TemporaryDirectory(prefix="package-") as tmp:
        layout = oci.build(str(model_file), image, Path(tmp) / "layout", base)
        return f"{image}@{oci.push(layout, image, base, crane=reg.crane)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.registry", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    state = args.workdir / "registry.json"
    saved = json.loads(state.read_text()) if state.exists() else None
    running = Registry(saved["host"], int(saved["pid"]), args.workdir, saved["crane"]) if saved else None
    try:
        if args.command == "up":
            if running and alive(running.pid):
                raise RegistryError(f"a registry from {args.workdir} is already running at {running.host}; "
                                    "run `down` first")
            reg = start(args.workdir)
            print(f"registry {reg.host} (pid {reg.pid}); server base image {publish_server_base(reg)}")
        elif running:
            running.stop()
            print(f"stopped registry {running.host}")
        else:
            print(f"no registry state in {args.workdir}: nothing to stop")
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

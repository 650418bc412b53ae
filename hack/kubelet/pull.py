"""Pulling a pod's image from the local registry (hack/registry.py) with crane. Touches the registry and disk.

An image whose registry is the runner's ``--registry`` is pulled as a kubelet would: a tag is
resolved to its digest (``crane digest``), the image is fetched by digest (crane verifies every
blob against it) and its layers are flattened (``crane export``, whiteouts applied) into a
per-digest cache folder, ``<cache>/sha256-<hex>/rootfs``, once per digest. The container then sees
the image's own folders read-only (``mounts``: /model for a packaged model), starts from the
image's Env, runs as its numeric User where the securityContext sets none (podspec.identity) and,
when the pod gives no ``command``, runs the image's Entrypoint/Cmd — still from
the runner's Python (hack/kubelet/image.py). ``imageID`` is ``repo@sha256:...``. As for a
mountPath, the mount point (``/model``) is made on this machine's root as an empty folder if
missing; the image's content is only ever visible inside the container's mount namespace.

A failed pull (unknown digest or tag, registry down) never runs the container: the pod stays
Pending, its container waiting with reason ``ErrImagePull`` (crane's error, naming the image) after
the first failure and ``ImagePullBackOff`` after later ones; retries back off from 10 s doubling
to 300 s as the kubelet's do, until a pull succeeds or the pod is deleted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hack.kubelet.podspec import Refused

# Folders of an image's filesystem that stay this machine's: commands run from the runner's Python,
# whose interpreter and libraries live there. Every other top-level folder of the image is shown.
SYSTEM_DIRS = frozenset({"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt",
                         "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"})
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


@dataclass(frozen=True)
class Pulled:
    image_id: str  # repo@sha256:..., the containerStatuses imageID
    rootfs: Path
    config: dict[str, Any]  # the image config's "config": Env, Entrypoint, Cmd, WorkingDir, ...

    def mounts(self) -> list[dict[str, Any]]:
        """Bind mounts (read-only) of the image's own top-level folders, e.g. /model."""
        return [{"kind": "bind", "source": str(p), "target": f"/{p.name}", "ro": True}
                for p in sorted(self.rootfs.iterdir())
                if p.is_dir() and not p.is_symlink() and p.name not in SYSTEM_DIRS]

    def env(self) -> dict[str, str]:
        """The image's Env, but PATH: programs come from the runner's environment."""
        pairs = (e.split("=", 1) for e in self.config.get("Env") or [] if "=" in e)
        return {k: v for k, v in pairs if k != "PATH"}

    def argv(self, command: list[str], args: list[str]) -> list[str]:
        """The kubelet's rule: command replaces Entrypoint; args replace Cmd (Cmd is dropped with command)."""
        if command:
            return command + args
        return list(self.config.get("Entrypoint") or []) + (args or list(self.config.get("Cmd") or []))


def split(image: str) -> tuple[str, str, str]:
    """``host/repo[:tag][@sha256:...]`` -> (host, repo with host, the digest, else the tag). The first
    part is a host only if it has a dot or a port, or is localhost (the Docker rule)."""
    name, _, digest = image.partition("@")
    first = name.split("/", 1)[0]
    host = first if "/" in name and ("." in first or ":" in first or first == "localhost") else ""
    tag = "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return host, name, digest or tag


@dataclass
class Puller:
    """Pulls images of ``registry`` (``127.0.0.1:PORT``) with ``crane`` into ``cache``."""

    registry: str
    crane: str
    cache: Path
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def wants(self, image: str) -> bool:
        return split(image)[0] == self.registry

    def _crane(self, image: str, *args: str, stdout: Any = subprocess.PIPE) -> str:
        proc = subprocess.run([self.crane, "--insecure", *args], stdout=stdout, stderr=subprocess.PIPE,
                              check=False, timeout=600)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            raise Refused("ErrImagePull", f'Failed to pull image "{image}": {(err or ["crane failed"])[-1][-500:]}')
        return proc.stdout.decode().strip() if stdout == subprocess.PIPE else ""

    def pull(self, image: str) -> Pulled:
        """Resolve, fetch by digest and unpack (once per digest); raises Refused(ErrImagePull)."""
        _, repo, ref = split(image)
        digest = ref if ref.startswith("sha256:") else self._crane(image, "digest", f"{repo}:{ref}")
        pinned = f"{repo}@{digest}"
        folder = self.cache / digest.replace(":", "-")
        with self.guard:
            lock = self.locks.setdefault(digest, threading.Lock())
        with lock:
            if not (folder / "rootfs").is_dir():
                self._unpack(image, pinned, folder)
        config = json.loads((folder / "config.json").read_text()).get("config") or {}
        return Pulled(pinned, folder / "rootfs", config)

    def _unpack(self, image: str, pinned: str, folder: Path) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pull-", dir=self.cache))
        try:
            (tmp / "config.json").write_text(self._crane(image, "config", pinned))
            with (tmp / "image.tar").open("wb") as out:
                self._crane(image, "export", pinned, "-", stdout=out)
            rootfs = tmp / "rootfs"
            rootfs.mkdir(mode=0o755)
            with tarfile.open(tmp / "image.tar") as tar:
                tar.extractall(rootfs, filter="tar")  # owners kept; no path leaves rootfs
            (tmp / "image.tar").unlink()
            tmp.chmod(0o755)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def pull_until_done(
    puller: Puller, image: str, report: Callable[[dict[str, Any]], None], cancelled: threading.Event
) -> Pulled | None:
    """Pull, reporting each failure as the container's waiting state and backing off; None if cancelled."""
    backoff, failures = BACKOFF_START, 0
    while not cancelled.is_set():
        try:
            return puller.pull(image)
        except Refused as exc:
            failures += 1
            reason = "ErrImagePull" if failures == 1 else "ImagePullBackOff"
            message = exc.message if failures == 1 else f'Back-off pulling image "{image}": {exc.message}'
            report({"waiting": {"reason": reason, "message": message}})
        if cancelled.wait(backoff):
            break
        backoff = min(backoff * 2, BACKOFF_MAX)
    return None

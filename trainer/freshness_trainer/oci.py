"""The serving image as an OCI image layout: the model file as one layer, no daemon, no root.

``build`` writes ``oci-layout``, ``index.json`` and ``blobs/sha256/*`` (a gzipped layer tar holding
``/model/model.pt``, the image config, the manifest) and returns the manifest digest, which is the
image digest a registry reports once the layout is pushed. ``push`` hands the layout to ``crane``
(with ``--base-image``, ``crane append`` puts the model layer on top of the base image, so the
pushed digest is the registry's, not the layout's) and returns the digest the registry reports
(``crane digest``). A registry on loopback (the local cluster's, hack/registry.py) is spoken to
over plain HTTP (``crane --insecure``). Both are deterministic: same model bytes, same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec

from freshness_trainer.errors import TrainerError

MODEL_PATH_IN_IMAGE = "model/model.pt"
DEFAULT_BASE_IMAGE = "ghcr.io/model-freshness/freshness-server:0.1.0"
"""``package``'s default ``--base-image`` (env FRESHNESS_SERVER_IMAGE): Dockerfile.server, whose
entrypoint serves /model/model.pt, so the pushed image serves the model as it is."""
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Layout:
    """A built layout: where it is, the manifest digest and the layer tarball (for crane append)."""

    path: Path
    digest: str
    layer: Path


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(model_bytes: bytes) -> bytes:
    """An uncompressed tar with ``model/`` and ``model/model.pt``, fixed owners and times. Pure."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folder = tarfile.TarInfo("model")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo(MODEL_PATH_IN_IMAGE)
        info.size, info.mode = len(model_bytes), 0o644
        tar.addfile(info, io.BytesIO(model_bytes))
    return buf.getvalue()


def _write_blob(root: Path, data: bytes) -> str:
    digest = _sha(data)
    (root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    return digest


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def build(model_uri: str, image: str, out: Path, base_image: str = "") -> Layout:
    """Write the OCI layout for ``image`` (``repo:tag``) with the model at ``/model/model.pt``."""
    if ":" not in image.rsplit("/", 1)[-1]:
        raise TrainerError("InvalidImage", f"--image {image!r}: expected REPO:TAG")
    try:
        with fsspec.open(model_uri, "rb") as fh:
            model_bytes = fh.read()
    except FileNotFoundError as exc:
        raise TrainerError("ModelNotFound", f"model file {model_uri} not found") from exc
    if out.exists():
        shutil.rmtree(out)
    (out / "blobs" / "sha256").mkdir(parents=True)
    tar = layer_tar(model_bytes)
    layer = gzip.compress(tar, compresslevel=1, mtime=0)
    layer_digest = _write_blob(out, layer)
    labels = {"io.modelfreshness.model.path": "/" + MODEL_PATH_IN_IMAGE}
    if base_image:
        labels["org.opencontainers.image.base.name"] = base_image
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["MODEL_PATH=/" + MODEL_PATH_IN_IMAGE], "Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [_sha(tar)]},
        "history": [{"created_by": "freshness-trainer package"}],
    }
    config_bytes = _json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _write_blob(out, config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": len(layer)}],
        "annotations": labels,
    }
    manifest_bytes = _json(manifest)
    digest = _write_blob(out, manifest_bytes)
    tag = image.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MEDIA_MANIFEST, "digest": digest, "size": len(manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (out / "index.json").write_bytes(_json(index))
    (out / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    return Layout(out, digest, out / "blobs" / "sha256" / layer_digest.split(":", 1)[1])


def _loopback(ref: str) -> bool:
    host = ref.split("/", 1)[0].rsplit(":", 1)[0] if "/" in ref else ""
    return host == "localhost" or host.startswith("127.") or host == "[::1]"


def push(layout: Layout, image: str, base_image: str = "", crane: str = "crane") -> str:
    """Push with ``crane``; returns the digest the registry reports. Needs crane on PATH."""
    if shutil.which(crane) is None:
        raise TrainerError("CraneNotFound", f"--push needs the `{crane}` binary on PATH; layout left at {layout.path}")
    flags = ["--insecure"] if _loopback(image) else []  # plain HTTP on loopback only
    if base_image:
        args = [crane, *flags, "append", "--base", base_image, "--new_layer", str(layout.layer), "--new_tag", image]
    else:
        args = [crane, *flags, "push", str(layout.path), image]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TrainerError("PushFailed", f"crane failed to push {image}: {proc.stderr.strip()[-400:]}")
    digest = subprocess.run([crane, *flags, "digest", image], capture_output=True, text=True,
                            check=False).stdout.strip()
    if not digest.startswith("sha256:"):
        raise TrainerError("PushFailed", f"crane pushed {image} but reported no digest")
    return digest

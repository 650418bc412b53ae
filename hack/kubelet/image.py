"""What stands in for a pod's image: the runner's own Python. Reads the runner's environment.

The image is not pulled: a container's command runs from this machine, with the runner's virtual
environment and interpreter (bound read-only into the container's namespace), the ``--image-path``
folders, the PYTHONPATH entries it passes on, and the variables named by ``--image-env``.

With ``--image-store DIR``, an image pinned by digest (``REPO[:TAG]@sha256:HEX``) also brings its
files: ``DIR/sha256/HEX/`` holds them (its layers, unpacked), and each top-level entry is bound
read-only at the same path in the container (e.g. the model layer's ``/model``). A pinned image
missing from the store fails the pod with ``ErrImagePull`` naming the image. Who fills the store is
not the runner's business (``make demo`` puts the packaged model layer there).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hack.kubelet.podspec import Refused

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PINNED = re.compile(r"@(sha256):([0-9a-f]{64})$")


@dataclass
class Image:
    """Read-only host paths, the environment pods start from, and the runner's home (hidden)."""

    paths: list[str]
    env: dict[str, str]
    home: str | None
    store: Path | None = None


def from_runner(paths: Sequence[str], env_names: Sequence[str], store: Path | None = None) -> Image:
    env = {n: os.environ[n] for n in env_names if n in os.environ}
    found = [sys.prefix, os.path.realpath(sys.base_prefix), *paths]
    found += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/")]
    env["PATH"] = f"{Path(sys.executable).parent}:{BASE_PATH}"
    return Image(sorted({os.path.realpath(p) for p in found} | set(found)), env, os.environ.get("HOME"), store)


def pinned_files(store: Path | None, image: str, where: str) -> list[dict[str, Any]]:
    """The read-only binds of a pinned image's files from ``store`` (module docstring); none for an
    image without a digest or without a store. Raises Refused(ErrImagePull) for a pinned image the
    store lacks. Reads the store."""
    m = _PINNED.search(image)
    if store is None or m is None:
        return []
    root = store / m.group(1) / m.group(2)
    if not root.is_dir():
        raise Refused("ErrImagePull", f"{where}.image: {image} is not in the image store {store}")
    return [{"kind": "bind", "source": str(p), "target": "/" + p.name, "ro": True} for p in sorted(root.iterdir())]

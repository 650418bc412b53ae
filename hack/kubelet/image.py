"""What stands in for a pod's programs: the runner's own Python. Reads the runner's environment.

Commands always run from this machine, with the runner's virtual environment and interpreter
(bound read-only into the container's namespace), the ``--image-path`` folders, the PYTHONPATH
entries it passes on, the variables named by ``--image-env``, and ``bin_dirs`` on PATH (crane's
folder: the trainer image ships crane). No image's programs are ever executed. An image of the
local registry is still pulled by digest (hack/kubelet/pull.py) and supplies the container's
files outside the system folders (the model at /model), its Env and its entrypoint; any other
image name stands for this environment alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Image:
    """Read-only host paths, the environment pods start from, and the runner's home (hidden)."""

    paths: list[str]
    env: dict[str, str]
    home: str | None


def from_runner(paths: Sequence[str], env_names: Sequence[str], bin_dirs: Sequence[str] = ()) -> Image:
    env = {n: os.environ[n] for n in env_names if n in os.environ}
    found = [sys.prefix, os.path.realpath(sys.base_prefix), *paths, *bin_dirs]
    found += [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/")]
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *bin_dirs, BASE_PATH])
    return Image(sorted({os.path.realpath(p) for p in found} | set(found)), env, os.environ.get("HOME"))

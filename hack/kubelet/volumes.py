"""A pod's emptyDirs and one container's mount plan (executed by sandbox.py). Touches the filesystem.

Every emptyDir is a fresh folder of this pod only (mode 0777 as the kubelet makes it; group
``fsGroup`` with the setgid bit when the pod sets one). In the container's mount namespace each is mounted at its
mountPath, a tmpfs covers the runner's home, and host paths the container must still see are
bound back on top at their own paths: the image's paths (read-only) and the paths shared with
every pod (read-write, the dev stand-in for the storage a ModelDeployment names). Only paths that
a mount covers are bound back; the rest of this machine stays visible as it is. Last, single files
at their container paths (the termination-message file; /etc/passwd and /etc/group with the
pod's user added when this machine has none, as Podman does).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def prepare(pod: Mapping[str, Any], workdir: Path) -> dict[str, dict[str, Any]]:
    """Create the pod's emptyDir folders; return volume name -> mount (without target)."""
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    out: dict[str, dict[str, Any]] = {}
    for vol in pod["spec"].get("volumes") or []:
        # emptyDir on disk: the only kind podspec.check_fields lets through
        folder = workdir / "volumes" / vol["name"]
        folder.mkdir(parents=True)
        mode = 0o777
        if fs_group is not None:
            os.chown(folder, -1, int(fs_group))
            mode |= 0o2000
        folder.chmod(mode)
        out[vol["name"]] = {"kind": "bind", "source": str(folder)}
    return out


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def plan(
    container: Mapping[str, Any],
    volumes: Mapping[str, Mapping[str, Any]],
    *,
    home: str | None,
    image_paths: Sequence[str],
    shared: Sequence[str],
    files: Sequence[tuple[str, str, bool]],
) -> list[dict[str, Any]]:
    """The container's mounts in the order sandbox.py makes them. Pure."""
    mounts = [
        {**volumes[m["name"]], "target": m["mountPath"].rstrip("/") or "/", "ro": bool(m.get("readOnly"))}
        for m in sorted(container.get("volumeMounts") or [], key=lambda m: len(m["mountPath"]))
    ]
    covered = [m["target"] for m in mounts]
    if home and home != "/" and not _under(home, covered):
        mounts.append({"kind": "tmpfs", "target": home, "ro": False, "options": "mode=0755"})
        covered.append(home)
    binds = [(p, True) for p in image_paths] + [(p, False) for p in shared]
    for path, ro in sorted(binds, key=lambda b: len(b[0])):
        if _under(path, covered) and os.path.exists(path):
            mounts.append({"kind": "bind", "source": path, "target": path, "ro": ro})
    mounts += [{"kind": "bind", "source": source, "target": target, "ro": ro} for target, source, ro in files]
    return mounts


def with_user(uid: int, gid: int, home: str, folder: Path) -> list[tuple[str, str, bool]]:
    """Copies of /etc/passwd and /etc/group naming ``uid``/``gid`` when this machine lacks them
    (programs such as DVC ask getpwuid for the current user); nothing when it has them."""
    import grp
    import pwd

    out = []
    try:
        pwd.getpwuid(uid)
    except KeyError:
        passwd = folder / "passwd"
        passwd.write_text(Path("/etc/passwd").read_text() + f"u{uid}:x:{uid}:{gid}::{home}:/usr/sbin/nologin\n")
        out.append(("/etc/passwd", str(passwd), True))
    try:
        grp.getgrgid(gid)
    except KeyError:
        group = folder / "group"
        group.write_text(Path("/etc/group").read_text() + f"g{gid}:x:{gid}:\n")
        out.append(("/etc/group", str(group), True))
    return out

"""What the pods' processes really were, read from /proc while `make demo` runs. Reads /proc only.

For every process of a step pod (``freshness-trainer <step>``) or a serving pod (``freshness-serve``)
it records, once per process: its user, and where its ``/tmp``, ``/work`` and ``/model`` come from
(the mount's root in ``/proc/<pid>/mountinfo``: the pod's own emptyDir folder, the image's files).
The demo test asserts on these facts (UID 65532, one private /tmp and /work per pod, the serving
pods' /model from the dev kubelet's pull of the digest their Deployment names), not on the pod spec.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STEPS = ("drift", "train", "package")
MOUNTS = ("/tmp", "/work", "/model")


@dataclass(frozen=True)
class Seen:
    pid: int
    kind: str  # drift | train | package | serve
    uid: int
    mounts: dict[str, str]  # mount point -> the folder bound there (its root in mountinfo)


def _kind(argv: list[str]) -> str | None:
    names = [Path(a).name for a in argv[:3]]
    if "freshness-serve" in names:
        return "serve"
    if "freshness-trainer" in names:
        i = names.index("freshness-trainer")
        return argv[i + 1] if i + 1 < len(argv) and argv[i + 1] in STEPS else None
    return None


def mounts_of(mountinfo: str) -> dict[str, str]:
    """Mount point -> root of the mounted folder, for the points in MOUNTS (last mount wins). Pure."""
    out: dict[str, str] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in MOUNTS:
            out[fields[4]] = fields[3].encode().decode("unicode_escape")
    return out


class Evidence:
    """Processes of pods of the runner whose pod folders are under ``pods`` (other runners on this
    machine, a parallel test session's, are not this demo's)."""

    def __init__(self, pods: Path) -> None:
        self.pods = str(pods).rstrip("/") + "/"
        self.seen: dict[int, Seen] = {}

    def scan(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in self.seen:
                continue
            try:
                argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
                kind = _kind([a.decode(errors="replace") for a in argv if a])
                if kind is None:
                    continue
                status = Path(entry.path, "status").read_text()
                mounts = mounts_of(Path(entry.path, "mountinfo").read_text())
            except OSError:  # gone meanwhile
                continue
            uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
            if not mounts.get("/tmp", "").startswith(self.pods):  # not yet sandboxed, or another runner's pod
                continue
            self.seen[int(entry.name)] = Seen(int(entry.name), kind, uid, mounts)

    def json(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.seen.values()]

"""The time-partitioned capture layout the model server writes and the drift step reads.

A captured sample is ``<root>/YYYY/MM/DD/HH/<stamp>-<id>.<ext>`` (UTC) with a JSON sidecar of the
same stem; ``<stamp>`` is ``YYYYMMDDTHHMMSSffffffZ``, so a file name alone says when the sample was
taken and names sort by time. ``sample_path`` and ``parse_stamp`` are pure; ``list_window`` reads
the folder through fsspec and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fsspec

from freshness_trainer.errors import TrainerError

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_STAMP = re.compile(r"^(\d{8}T\d{12}Z)-")
_YEAR = re.compile(r"^\d{4}$")
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def sample_path(root: str, when: datetime, sample_id: str, suffix: str) -> str:
    """Where a sample taken at ``when`` (aware) goes: ``root/YYYY/MM/DD/HH/<stamp>-<id><suffix>``. Pure."""
    t = when.astimezone(UTC)
    return f"{root.rstrip('/')}/{t:%Y/%m/%d/%H}/{t.strftime(STAMP_FORMAT)}-{sample_id}{suffix}"


def parse_stamp(name: str) -> datetime | None:
    """The capture time in a sample's file name, or None for a name not written by the server. Pure."""
    m = _STAMP.match(name.rsplit("/", 1)[-1])
    return datetime.strptime(m.group(1), STAMP_FORMAT).replace(tzinfo=UTC) if m else None


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d`` -> timedelta; ValueError names the allowed form. Pure."""
    m = _DURATION.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration: expected a positive number and s, m, h or d (e.g. 24h)")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class Window:
    """The samples a drift check uses: files in time order and the times of the first and last."""

    files: list[str]
    start: datetime | None
    end: datetime | None

    def describe(self) -> dict[str, object]:
        """The drift result's ``window`` section."""
        out: dict[str, object] = {"samples": len(self.files)}
        if self.start and self.end:
            out["start"] = self.start.isoformat().replace("+00:00", "Z")
            out["end"] = self.end.isoformat().replace("+00:00", "Z")
        return out


def is_partitioned(uri: str) -> bool:
    """True when the folder's top level holds only year folders (``2026/``), as the server writes."""
    fs, root = fsspec.core.url_to_fs(uri)
    if not fs.isdir(root):
        return False
    names = [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(root, detail=True) if e["type"] == "directory"]
    return bool(names) and all(_YEAR.match(n) for n in names)


def list_window(uri: str, *, now: datetime, window: timedelta | None = None, newest: int | None = None) -> Window:
    """The captured images under ``uri`` taken within ``window`` before ``now``, at most the ``newest``.

    Only hour folders that can overlap the window are listed, so an old capture costs nothing to
    skip. Touches the filesystem (listing only).
    """
    fs, root = fsspec.core.url_to_fs(uri)
    since = now - window if window is not None else None
    found: list[tuple[datetime, str]] = []
    for hour_dir in _hour_dirs(fs, root, since):
        for path in fs.ls(hour_dir, detail=False):
            when = parse_stamp(path)
            if when is None or not path.lower().endswith(IMAGE_SUFFIXES) or when > now:
                continue
            if since is None or when >= since:
                found.append((when, path))
    found.sort()
    if newest is not None:
        found = found[-newest:] if newest > 0 else []
    if not found:
        what = f"in the last {window}" if window is not None else ""
        raise TrainerError("EmptyDataset", f"capture {uri} has no samples {what}".rstrip())
    return Window([p for _, p in found], found[0][0], found[-1][0])


def _hour_dirs(fs: fsspec.AbstractFileSystem, root: str, since: datetime | None) -> list[str]:
    """``root/YYYY/MM/DD/HH`` folders, pruned at each level when entirely before ``since``."""
    level_formats = ("%Y", "%Y/%m", "%Y/%m/%d", "%Y/%m/%d/%H")
    dirs = [root.rstrip("/")]
    for depth, fmt in enumerate(level_formats):
        nxt = []
        for d in dirs:
            for e in fs.ls(d, detail=True):
                if e["type"] != "directory":
                    continue
                name = e["name"].rstrip("/")
                rel = "/".join(name.rsplit("/", depth + 1)[1:])
                try:
                    start = datetime.strptime(rel, fmt).replace(tzinfo=UTC)
                except ValueError:
                    continue
                if since is None or _period_end(start, depth) > since:
                    nxt.append(name)
        dirs = nxt
    return sorted(dirs)


def _period_end(start: datetime, depth: int) -> datetime:
    if depth == 0:
        return start.replace(year=start.year + 1)
    if depth == 1:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + (timedelta(days=1) if depth == 2 else timedelta(hours=1))

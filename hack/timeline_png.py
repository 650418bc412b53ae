"""A run of `make demo` as one PNG (matplotlib's Agg renderer, no display needed).

Three rows over minutes since the operator started, with the ModelDeployment's phases as
background bands and the loop's milestone Events (drift detected, training started, rolled out...)
as vertical lines: the drift score of each check against its threshold (detected checks in red),
the accuracy of each check where the production data is labelled, and each alert's pending and
firing spans as Prometheus evaluated them. The image is WIDTH x HEIGHT pixels. Writes one file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

WIDTH, HEIGHT, DPI = 1400, 900, 100
PHASE_COLOURS = {
    "Pending": "#eeeeee",
    "Monitoring": "#e3f2e1",
    "DriftDetected": "#f8dada",
    "Training": "#fde7c3",
    "Packaging": "#e6dcf6",
    "RollingOut": "#d4e8f8",
    "RollingBack": "#f9d9c6",
    "Paused": "#dddddd",
    "Failed": "#f6c9c9",
}
ALERT_COLOURS = {"pending": "#f0b429", "firing": "#d64545"}


@dataclass(frozen=True)
class Check:
    """One drift check as the status reported it (time in unix seconds)."""

    time: float
    score: float
    threshold: float | None
    detected: bool
    accuracy: float | None = None


@dataclass
class Picture:
    """Everything drawn; times are unix seconds, each list in time order."""

    start: float
    end: float
    checks: Sequence[Check]
    phases: Sequence[tuple[float, str]]
    """(first seen, phase): each phase lasts until the next one starts."""
    markers: Sequence[tuple[float, str]] = ()
    """(time, Event reason)."""
    alerts: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """alert name -> (time, state) transitions: inactive, pending or firing."""


def spans(changes: Sequence[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    """(start, end, value) for each value in a list of (time, value) changes. Pure."""
    return [(t, changes[i + 1][0] if i + 1 < len(changes) else end, v) for i, (t, v) in enumerate(changes)]


def grouped(markers: Sequence[tuple[float, str]], within: float) -> list[tuple[float, str]]:
    """Markers closer than ``within`` to the previous one share its label (one line, not a smudge). Pure."""
    out: list[tuple[float, str]] = []
    for t, label in markers:
        if out and t - out[-1][0] < within:
            out[-1] = (out[-1][0], f"{out[-1][1]}, {label}")
        else:
            out.append((t, label))
    return out


def draw(picture: Picture, path: Path) -> Path:
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    drift, accuracy, alerts = fig.subplots(3, 1, sharex=True, height_ratios=[4, 2, 1.4])

    def minutes(t: float) -> float:
        return (t - picture.start) / 60

    phases = spans(picture.phases, picture.end)
    for ax in (drift, accuracy, alerts):
        for t0, t1, phase in phases:
            ax.axvspan(minutes(t0), minutes(t1), color=PHASE_COLOURS.get(phase, "#f4f4f4"), lw=0, zorder=0)
        for t, _ in picture.markers:
            ax.axvline(minutes(t), color="#555555", lw=0.8, ls=":", zorder=1)
    _drift_row(drift, picture, minutes)
    for t, reason in grouped(picture.markers, (picture.end - picture.start) / 80):
        drift.annotate(
            reason,
            (minutes(t), 1),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=8,
            va="top",
            ha="right",
            color="#333333",
        )
    _accuracy_row(accuracy, picture, minutes)
    _alert_row(alerts, picture, minutes)
    alerts.set_xlabel("minutes since the operator started")
    alerts.set_xlim(0, max(minutes(picture.end), 0.1))
    seen = list(dict.fromkeys(p for _, _, p in phases))
    fig.legend(
        handles=[Patch(color=PHASE_COLOURS.get(p, "#f4f4f4"), label=p) for p in seen],
        loc="outside lower center",
        ncols=max(1, len(seen)),
        title="phase",
        fontsize=9,
    )
    fig.suptitle("make demo: drift, retrain and rollout of one ModelDeployment")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _drift_row(ax: Axes, picture: Picture, to_x: Callable[[float], float]) -> None:
    xs = [to_x(c.time) for c in picture.checks]
    if xs:  # each verdict stands until the next check
        ax.step(
            [*xs, to_x(picture.end)],
            [*(c.score for c in picture.checks), picture.checks[-1].score],
            where="post",
            color="#9a9a9a",
            lw=1,
            zorder=2,
        )
    for detected, colour, label in ((False, "#2e8b57", "no drift"), (True, "#d64545", "drift detected")):
        pts = [(x, c.score) for x, c in zip(xs, picture.checks, strict=True) if c.detected is detected]
        if pts:
            ax.scatter([x for x, _ in pts], [y for _, y in pts], color=colour, s=36, zorder=3, label=f"check: {label}")
    with_threshold = [(x, c.threshold) for x, c in zip(xs, picture.checks, strict=True) if c.threshold is not None]
    if with_threshold:
        ax.step(*zip(*with_threshold, strict=True), where="post", color="#d64545", ls="--", lw=1.2, label="threshold")
    ax.set_ylabel("drift score")
    ax.set_ylim(-0.02, 1.05)
    if picture.checks:
        ax.legend(loc="center left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no drift check yet", transform=ax.transAxes, ha="center", color="#777777")


def _accuracy_row(ax: Axes, picture: Picture, to_x: Callable[[float], float]) -> None:
    known = [(to_x(c.time), c.accuracy) for c in picture.checks if c.accuracy is not None]
    if known:
        ax.plot(*zip(*known, strict=True), marker="o", color="#1f5f99", lw=1, zorder=3, label="serving model")
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no labelled checks", transform=ax.transAxes, ha="center", color="#777777")
    ax.set_ylabel("accuracy on the\nproduction batch")
    ax.set_ylim(0, 1.05)


def _alert_row(ax: Axes, picture: Picture, to_x: Callable[[float], float]) -> None:
    names = sorted(picture.alerts)
    for row, name in enumerate(names):
        for t0, t1, state in spans(picture.alerts[name], picture.end):
            if state in ALERT_COLOURS:
                ax.broken_barh([(to_x(t0), (t1 - t0) / 60)], (row - 0.35, 0.7), color=ALERT_COLOURS[state], zorder=2)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.6, max(len(names), 1) - 0.4)
    ax.set_ylabel("alerts")
    ax.legend(handles=[Patch(color=c, label=s) for s, c in ALERT_COLOURS.items()], loc="upper left", fontsize=8)

"""What `make demo` has seen of its ModelDeployment: printed once per new fact, kept with times.

``Timeline`` reads the status and Events the demo polls; besides the lines it prints it keeps the
facts the timeline picture needs (hack/timeline_png.py): each drift check (its time, score,
threshold, verdict and accuracy), each phase with the time it was first seen, and the loop's
milestone Events. Pure apart from printing and the clock.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from hack.timeline_png import Check, Picture

# Events drawn as vertical markers on the picture.
MILESTONES = ("DriftDetected", "TrainingStarted", "CandidateAccepted", "Packaged", "RolloutStarted", "RolledOut")


class DemoError(RuntimeError):
    """The demo's story cannot go on; the message says why."""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def unix(stamp: str | None, default: float) -> float:
    """An API timestamp (RFC 3339, ``Z``) as unix seconds; ``default`` when absent or unreadable."""
    if not stamp:
        return default
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def _revision(resource_version: str | None) -> int:
    """etcd revisions are integers; an API server that says otherwise sorts first."""
    return int(resource_version) if resource_version and resource_version.isdigit() else 0


class Timeline:
    """The ModelDeployment's story as the demo polls it."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.phase_times: list[tuple[float, str]] = []
        self.last_check: str | None = None
        self.checks: list[Check] = []
        self.seen_runs: set[str] = set()
        self.gate: dict[str, Any] | None = None
        self.version: str | None = None
        self.best_overrides: dict[str, Any] = {}
        self.bees_sent = False
        self.rolled_out = False
        self.accuracy_before: float | None = None
        self.accuracy_after: float | None = None
        self.seen_events: set[str] = set()
        self.reasons: list[str] = []
        self.markers: list[tuple[float, str]] = []
        self.event_times: list[tuple[float, str]] = []  # every Event: (unix time, reason), in order

    def phase(self, phase: str | None) -> None:
        if phase and (not self.phases or self.phases[-1] != phase):
            self.phases.append(phase)
            self.phase_times.append((time.time(), phase))
            say(f"phase -> {phase}")

    def events(self, items: list[dict[str, Any]]) -> None:
        """Print the ModelDeployment's new Events (one per transition) in the order they happened."""
        # Timestamps have one-second resolution; the resourceVersion keeps the order they were posted in.
        items = sorted(items, key=lambda e: _revision(e["metadata"].get("resourceVersion")))
        for ev in items:
            key = f"{ev['metadata']['uid']}:{ev.get('count', 1)}"
            if key in self.seen_events:
                continue
            self.seen_events.add(key)
            self.reasons.append(ev["reason"])
            at = unix(ev.get("lastTimestamp") or ev.get("eventTime"), time.time())
            self.event_times.append((at, ev["reason"]))
            if ev["reason"] in MILESTONES:
                self.markers.append((at, ev["reason"]))
            say(f"event {ev.get('type')} {ev['reason']}: {ev.get('message')}")

    def new_check(self, drift: dict[str, Any]) -> bool:
        check_time = drift.get("lastCheckTime")
        if not check_time or check_time == self.last_check:
            return False
        self.last_check = check_time
        acc = drift.get("accuracy") or {}
        say(
            f"drift check: detected={drift.get('detected')} score={drift.get('score')} "
            f"(threshold {drift.get('threshold')}) share={drift.get('share')} samples={drift.get('samples')} "
            f"accuracy={acc.get('current')} (reference {acc.get('reference')}) top={drift.get('topFeatures')}"
        )
        est, novelty = drift.get("estimatedAccuracy") or {}, drift.get("novelty") or {}
        say(
            f"  signals: distribution changed={drift.get('distributionDetected')} estimated accuracy="
            f"{est.get('value')} [{est.get('low')}, {est.get('high')}] (held out {est.get('reference')}) "
            f"novelty={novelty.get('share')} (reference {novelty.get('referenceRate')}, detected "
            f"{novelty.get('detected')}); trigger {drift.get('trigger')}: {drift.get('reasons') or 'no retrain'}"
        )
        say(f"  HTML drift report: {drift.get('report')}")
        if drift.get("score") is not None:
            self.checks.append(
                Check(
                    time=unix(check_time, time.time()),
                    score=float(drift["score"]),
                    threshold=float(drift["threshold"]) if drift.get("threshold") is not None else None,
                    detected=bool(drift.get("detected")),
                    accuracy=float(acc["current"]) if acc.get("current") is not None else None,
                )
            )
        return True

    def candidate(self, candidate: dict[str, Any]) -> None:
        for run in candidate.get("runs") or []:
            key = f"{run.get('job')}:{run.get('state')}"
            if key in self.seen_runs:
                continue
            self.seen_runs.add(key)
            metrics = {k: v for k, v in (run.get("metrics") or {}).items() if k.startswith("val_acc")}
            line = f"candidate {run.get('index')} {run.get('overrides')}: {run.get('state')}"
            if metrics:
                baseline = (run.get("baselineMetrics") or {}).get("val_acc")
                line += f" {metrics}; serving model on the same data: val_acc={baseline}"
            if run.get("reason"):
                line += f" ({run.get('reason')}: {run.get('message')})"
            say(line)
        gate = candidate.get("gate")
        if gate and gate != self.gate:
            self.gate = gate
            say(f"gate: {gate.get('reason')}: {gate.get('message')}")
            if not gate.get("passed"):
                raise DemoError("the best candidate did not pass the gate; the serving model stays")
            best = candidate.get("best")
            for run in candidate.get("runs") or []:
                if run.get("index") == best:
                    self.best_overrides = dict(run.get("overrides") or {})
        if candidate.get("version") and candidate.get("version") != self.version:
            self.version = candidate["version"]
            say(f"chosen version {self.version}: packaging it, then rolling the Deployment")

    def outcome(self, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "phases": self.phases,
            "status": status,
            "gate": self.gate or {},
            "bestOverrides": self.best_overrides,
            "accuracyBefore": self.accuracy_before,
            "accuracyAfter": self.accuracy_after,
            "events": self.reasons,
        }

    def picture(self, start: float, end: float, alerts: dict[str, list[tuple[float, str]]]) -> Picture:
        """What hack/timeline_png.py draws: this timeline from ``start`` to ``end``, with the alert states."""
        return Picture(start, end, self.checks, self.phase_times, sorted(self.markers), alerts)

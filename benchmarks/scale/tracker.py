"""benchmarks.scale: the drift Jobs and ModelDeployments as this benchmark's own watches see them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.baseline_operator import FINALIZER
from benchmarks.common import (
    CHECK_LABEL,
    DEPLOYMENT_LABEL,
    STEP_LABEL,
    Api,
    Watch,
    mdeps_path,
    parse_time,
)
from testkit.api import Watches


class Tracker:
    """Drift Jobs and ModelDeployments of one namespace as this benchmark's watches see them."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.lock = threading.Lock()
        self.job_seen: dict[str, float] = {}
        self.job_created: dict[str, float] = {}
        self.job_done: dict[str, float] = {}
        self.job_of: dict[str, tuple[str, int]] = {}
        self.next_check: dict[tuple[str, int], float] = {}
        self.reconciled: set[str] = set()
        self.finalized: set[str] = set()
        self.drift_of: dict[str, dict[str, Any]] = {}  # the latest status.drift seen, per object
        self.since = 0.0  # Jobs created before this are a previous window's
        self._watches = Watches(
            Watch(api, f"/apis/batch/v1/namespaces/{namespace}/jobs", self._on_job, selector=f"{STEP_LABEL}=drift"),
            Watch(api, mdeps_path(namespace), self._on_mdep),
        )

    def start(self) -> Tracker:
        self._watches.start()
        return self

    def stop(self) -> None:
        self._watches.stop()

    def reset(self, next_check: dict[str, float]) -> None:
        """Forget everything seen so far; the objects' first checks fall due at ``next_check``."""
        with self.lock:
            for seen in (self.job_seen, self.job_created, self.job_done, self.job_of, self.next_check):
                seen.clear()
            self.reconciled.clear()
            self.finalized.clear()
            self.next_check.update({(name, 0): due for name, due in next_check.items()})
            self.since = time.time()

    def _on_job(self, type_: str, job: dict[str, Any], seen: float) -> None:
        if type_ == "DELETED":
            return
        meta = job["metadata"]
        name, labels = meta["name"], meta.get("labels") or {}
        done = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (job.get("status") or {}).get("conditions") or []
        )
        with self.lock:
            if parse_time(meta["creationTimestamp"]) < int(self.since):
                return
            self.job_seen.setdefault(name, seen)
            self.job_created.setdefault(name, parse_time(meta["creationTimestamp"]))
            self.job_of.setdefault(name, (labels.get(DEPLOYMENT_LABEL, ""), int(labels.get(CHECK_LABEL, "0"))))
            if done:
                self.job_done.setdefault(name, seen)

    def _on_mdep(self, type_: str, mdep: dict[str, Any], _: float) -> None:
        if type_ == "DELETED":
            return
        name = mdep["metadata"]["name"]
        status = mdep.get("status") or {}
        drift = status.get("drift") or {}
        with self.lock:
            self.drift_of[name] = drift
            if drift.get("nextCheckTime"):
                self.next_check[(name, int(drift.get("sequence") or 0))] = parse_time(drift["nextCheckTime"])
            if status.get("phase"):
                self.reconciled.add(name)
            if FINALIZER in (mdep["metadata"].get("finalizers") or []):
                self.finalized.add(name)

    def running(self) -> int:
        with self.lock:
            return len(set(self.job_seen) - set(self.job_done))

    def window(
        self, start: float, end: float, rule: str, interval: int, first_due: Callable[[str], float]
    ) -> tuple[list[float], int, int, int, list[float]]:
        """What the drift Jobs first seen in [start, end) say, pure over the recorded times:
        latencies, checks, objects checked, checks without a known due time, and for every check
        that was ready before ``end`` but not started by then, how overdue it is at ``end``.

        ``rule``, whose due time applies: "status" (ours: the nextCheckTime it published while the
        previous check was the latest) or "created" (the baseline: the previous Job's
        creationTimestamp + interval; ``first_due(name)`` for an object's first check). A check is
        ready at max(due, the previous Job seen finished)."""

        def ready(mdep: str, number: int, before: float) -> float | None:
            prev = f"{mdep}-drift-{number - 1}"
            if rule == "status":
                due = self.next_check.get((mdep, number - 1))
            elif number == 1:
                due = first_due(mdep)
            else:
                created = self.job_created.get(prev)
                due = created + interval if created is not None else None
            if due is None or number == 1:
                return due
            done = self.job_done.get(prev)
            return max(due, done) if done is not None and done < before else None

        latencies, unmatched, objects = [], 0, set()
        latest: dict[str, int] = {}
        with self.lock:
            for job, seen in self.job_seen.items():
                mdep, number = self.job_of[job]
                if seen < end:
                    latest[mdep] = max(latest.get(mdep, 0), number)
                if not start <= seen < end:
                    continue
                objects.add(mdep)
                at = ready(mdep, number, seen + 1e-3)
                if at is None:
                    unmatched += 1
                else:
                    latencies.append(seen - at)
            overdue = []
            for mdep in {m for m, _ in self.next_check} | set(latest):
                at = ready(mdep, latest.get(mdep, 0) + 1, end)
                if at is not None and at < end:
                    overdue.append(end - at)
        checks = sum(start <= t < end for t in self.job_seen.values())
        return latencies, checks, len(objects), unmatched, overdue

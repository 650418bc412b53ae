"""Prometheus metrics of docs/contracts.md (prefix modelfreshness_, labels namespace and name).

Gauges are set from the status after each reconcile; counters and the step histogram from the
core's Count/ObserveDuration actions. Model age is computed at scrape time. Touches no API; the
scrape runs in prometheus_client's HTTP thread.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from freshness_operator.core.actions import Action, Count, Metric, ObserveDuration, ObserveQueued
from freshness_operator.core.spec import Spec
from freshness_operator.core.status import Phase, Status

_LABELS = ("namespace", "name")
_STEP_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)


class _ModelAge(Collector):
    def __init__(self) -> None:
        self.deployed: dict[tuple[str, str], float] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "modelfreshness_model_age_seconds",
            "Seconds since the serving model was rolled out",
            labels=_LABELS,
        )
        now = time.time()
        # A copy: the event loop adds and drops keys while the HTTP thread scrapes.
        for key, deployed in list(self.deployed.items()):
            family.add_metric(list(key), max(0.0, now - deployed))
        yield family


class Metrics:
    """All operator metrics in one registry (a fresh one per instance, so tests can make many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.drift_share = Gauge("modelfreshness_drift_share", "Share of drifted features", _LABELS, registry=r)
        self.drift_score = Gauge("modelfreshness_drift_score", "Drift decision statistic", _LABELS, registry=r)
        self.drift_detected = Gauge("modelfreshness_drift_detected", "1 when drift was detected", _LABELS, registry=r)
        self.drift_threshold = Gauge(
            "modelfreshness_drift_threshold", "Threshold the drift score was compared with", _LABELS, registry=r
        )
        self.distribution_drift = Gauge(
            "modelfreshness_distribution_drift",
            "1 when the last check's distribution test fired, whether or not the trigger policy retrains for it",
            _LABELS,
            registry=r,
        )
        self.estimated_accuracy = Gauge(
            "modelfreshness_estimated_accuracy",
            "Serving accuracy on the last window estimated without labels (calibrated confidence)",
            _LABELS,
            registry=r,
        )
        self.reference_accuracy = Gauge(
            "modelfreshness_reference_accuracy",
            "Serving model's accuracy on its held-out split, the estimate's reference",
            _LABELS,
            registry=r,
        )
        self.novelty_share = Gauge(
            "modelfreshness_novelty_share",
            "Share of the last window far from the reference in the model's embedding space",
            _LABELS,
            registry=r,
        )
        self.last_check = Gauge(
            "modelfreshness_drift_last_check_timestamp_seconds",
            "Unix time of the last successful check",
            _LABELS,
            registry=r,
        )
        self.interval = Gauge(
            "modelfreshness_drift_interval_seconds",
            "Seconds between drift checks (0: a cron schedule)",
            _LABELS,
            registry=r,
        )
        self.deployed = Gauge(
            "modelfreshness_model_deployed_timestamp_seconds",
            "Unix time the serving model was rolled out",
            _LABELS,
            registry=r,
        )
        self.phase = Gauge("modelfreshness_phase", "1 for the current phase", (*_LABELS, "phase"), registry=r)
        self.stuck = Gauge(
            "modelfreshness_step_stuck",
            "1 while a step pod cannot progress, labelled with the pod's reason (StepProgressing=False)",
            (*_LABELS, "reason"),
            registry=r,
        )
        self.checks = Counter("modelfreshness_drift_checks", "Drift checks by result", (*_LABELS, "result"), registry=r)
        self.retrains = Counter("modelfreshness_retrains", "Retrains by result", (*_LABELS, "result"), registry=r)
        self.rollouts = Counter("modelfreshness_rollouts", "Rollouts by result", (*_LABELS, "result"), registry=r)
        self.rollbacks = Counter("modelfreshness_rollbacks", "Automatic rollbacks", _LABELS, registry=r)
        self._counters = {
            Metric.DRIFT_CHECKS: self.checks,
            Metric.RETRAINS: self.retrains,
            Metric.ROLLOUTS: self.rollouts,
        }
        self.steps = Histogram(
            "modelfreshness_step_duration_seconds",
            "Duration of step Jobs",
            (*_LABELS, "step"),
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.queued = Histogram(
            "modelfreshness_candidate_queued_seconds",
            "Time a training Job waited for admission by Kueue (spec.training.queue), observed on admission",
            _LABELS,
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "modelfreshness_leader",
            "1 while this replica acts: it holds the leader Lease, or runs without leader election",
            registry=r,
        )
        self._age = _ModelAge()
        r.register(self._age)
        self._known: set[tuple[str, str]] = set()

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)

    def record(self, namespace: str, name: str, actions: Iterable[Action]) -> None:
        """Apply the core's Count and ObserveDuration actions."""
        self._ensure_series(namespace, name)
        for a in actions:
            match a:
                case Count(metric=Metric.ROLLBACKS):
                    self.rollbacks.labels(namespace, name).inc()
                case Count(metric=metric, result=result):
                    self._counters[metric].labels(namespace, name, result or "").inc()
                case ObserveDuration(kind=kind, seconds=seconds):
                    self.steps.labels(namespace, name, kind.value).observe(seconds)
                case ObserveQueued(seconds=seconds):
                    self.queued.labels(namespace, name).observe(seconds)
                case _:
                    pass  # the wiring executes the others

    def update(self, namespace: str, name: str, spec: Spec | None, status: Status) -> None:
        """Set the gauges from the status just written."""
        key = (namespace, name)
        self._ensure_series(namespace, name)
        d = status.drift
        if d.verdict_check:
            self.drift_share.labels(*key).set(d.share or 0.0)
            self.drift_score.labels(*key).set(d.score or 0.0)
            self.drift_detected.labels(*key).set(1.0 if d.detected else 0.0)
            if d.threshold is not None:
                self.drift_threshold.labels(*key).set(d.threshold)
            if d.distribution_detected is not None:
                self.distribution_drift.labels(*key).set(1.0 if d.distribution_detected else 0.0)
            e, n = d.estimated_accuracy, d.novelty
            _set_or_drop(self.estimated_accuracy, key, e.value if e is not None else None)
            _set_or_drop(self.reference_accuracy, key, e.reference if e is not None else None)
            _set_or_drop(self.novelty_share, key, n.share if n is not None else None)
        if d.last_check_time is not None:
            self.last_check.labels(*key).set(d.last_check_time.timestamp())
        if spec is not None:
            self.interval.labels(*key).set(_interval_seconds(spec))
        if status.model is not None and status.model.deployed_at is not None:
            self.deployed.labels(*key).set(status.model.deployed_at.timestamp())
            self._age.deployed[key] = status.model.deployed_at.timestamp()
        for phase in Phase:
            self.phase.labels(namespace, name, phase.value).set(1.0 if phase is status.phase else 0.0)
        self._update_stuck(key, status)

    def _update_stuck(self, key: tuple[str, str], status: Status) -> None:
        cond = status.condition("StepProgressing")
        reason = cond.reason if cond is not None and cond.status == "False" else None
        for labelvalues in _labelsets(self.stuck):
            if labelvalues[:2] == key and labelvalues[2] != reason:
                self.stuck.remove(*labelvalues)
        if reason is not None:
            self.stuck.labels(*key, reason).set(1.0)

    def _ensure_series(self, namespace: str, name: str) -> None:
        """On first sight of a ModelDeployment, create its counter series at 0, before any increment.

        increase() over a series that appears at 1 sees no increase, so an alert on the first
        failure would never fire.
        """
        key = (namespace, name)
        if key in self._known:
            return
        self._known.add(key)
        for result in ("succeeded", "failed"):
            self.checks.labels(namespace, name, result)
            self.rollouts.labels(namespace, name, result)
        for result in ("succeeded", "failed", "rejected"):
            self.retrains.labels(namespace, name, result)
        self.rollbacks.labels(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deleted ModelDeployment."""
        key = (namespace, name)
        self._known.discard(key)
        self._age.deployed.pop(key, None)
        gauges: tuple[Gauge | Counter, ...] = (
            self.drift_share,
            self.drift_score,
            self.drift_detected,
            self.drift_threshold,
            self.distribution_drift,
            self.estimated_accuracy,
            self.reference_accuracy,
            self.novelty_share,
            self.last_check,
            self.interval,
            self.deployed,
            self.rollbacks,
        )
        for gauge in gauges:
            _remove(gauge, key)
        labelled: tuple[Gauge | Counter | Histogram, ...] = (
            self.checks,
            self.retrains,
            self.rollouts,
            self.phase,
            self.steps,
            self.stuck,
            self.queued,
        )
        for metric in labelled:
            for labelvalues in _labelsets(metric):
                if labelvalues[:2] == key:
                    metric.remove(*labelvalues)


def _interval_seconds(spec: Spec) -> float:
    """The spec's drift interval; 0 ("none known", which DriftCheckMissing skips) for a cron schedule.

    A cron schedule has no single interval: its gaps vary (monthly, "29 2", weekdays only), and
    walking the fire times to find the longest one cost seconds per reconcile for "* * * * *".
    """
    if spec.drift.schedule is not None:
        return 0.0
    return float(spec.drift.interval_seconds or 0)


def _labelsets(metric: Gauge | Counter | Histogram) -> list[tuple[str, ...]]:
    return [tuple(k) for k in metric._metrics]  # prometheus_client has no public listing of children


def _remove(metric: Gauge | Counter, key: tuple[str, str]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*key)


def _set_or_drop(gauge: Gauge, key: tuple[str, str], value: float | None) -> None:
    """Set the series, or remove it when the last verdict has no such value (no stale numbers)."""
    if value is not None:
        gauge.labels(*key).set(value)
    else:
        _remove(gauge, key)

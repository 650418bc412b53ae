"""The demo's Prometheus: the chart's own alert rules over the local operator's metrics, and what it saw.

`make demo` starts a real Prometheus (hack/prometheus.py) that scrapes the operator's /metrics and
evaluates the rule groups of the chart's PrometheusRule as `helm template` renders them: the rules
a cluster with the Prometheus Operator would load, not a copy. For the demo only, it scrapes and
evaluates every second and ModelDriftDetected waits DRIFT_FOR instead of its 15m, so pending ->
firing shows within the run. At the end Prometheus's HTTP API gives, over the whole run, each
alert's transitions (``ALERTS`` by query_range, one point a second) and the drift score series.
The demo watches one ModelDeployment, so alerts are told apart by name only.
Runs helm and the prometheus process; the parsing functions are pure.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.prometheus import Prometheus

DRIFT_ALERT = "ModelDriftDetected"
DRIFT_FOR = "5s"
INTERVAL = 1  # seconds between scrapes and between rule evaluations


def rule_groups(helm: Path, chart: Path) -> list[dict[str, Any]]:
    """The rule groups of the chart's PrometheusRule, rendered with the demo's short ``for``."""
    argv = [
        str(helm),
        "template",
        "freshness",
        str(chart),
        "--api-versions",
        "monitoring.coreos.com/v1",
        "--set",
        "prometheusRule.enabled=true",
        "--set",
        f"prometheusRule.alerts.{DRIFT_ALERT}.for={DRIFT_FOR}",
    ]
    out = subprocess.run(argv, text=True, capture_output=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"helm template failed ({out.returncode}): {out.stderr.strip()}")
    [rule] = [d for d in yaml.safe_load_all(out.stdout) if d and d.get("kind") == "PrometheusRule"]
    return list(rule["spec"]["groups"])


def start(workdir: Path, helm: Path, chart: Path, operator_metrics: str) -> Prometheus:
    """A Prometheus scraping ``operator_metrics`` (host:port) with the chart's rules, ready."""
    targets = {"model-freshness-operator": [operator_metrics]}
    return Prometheus(workdir, targets, rule_groups(helm, chart), interval=f"{INTERVAL}s").start()


def alert_changes(series: list[dict[str, Any]], start: int, end: int, step: int) -> dict[str, list[tuple[float, str]]]:
    """Each alert's (time, state) changes from ``ALERTS`` range series, beginning with its state at ``start``.

    A point of the firing series wins over the pending one; no point at a step is "inactive". Pure.
    """
    states: dict[str, dict[int, str]] = {}
    for s in series:
        per = states.setdefault(s["metric"]["alertname"], {})
        for t, _ in s["values"]:
            at = round(float(t))
            if per.get(at) != "firing":
                per[at] = s["metric"]["alertstate"]
    out: dict[str, list[tuple[float, str]]] = {}
    for name, per in sorted(states.items()):
        changes: list[tuple[float, str]] = []
        for at in range(start, end + 1, step):
            state = per.get(at, "inactive")
            if not changes or changes[-1][1] != state:
                changes.append((float(at), state))
        out[name] = changes
    return out


def value_changes(series: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(time, value) where one range series' value changes, its first point included. Pure."""
    out: list[tuple[float, float]] = []
    for t, v in series[0]["values"] if series else []:
        if not out or out[-1][1] != float(v):
            out.append((float(t), float(v)))
    return out


@dataclass
class Observed:
    alerts: dict[str, list[tuple[float, str]]]
    drift_scores: list[tuple[float, float]]

    def json(self) -> dict[str, Any]:
        return {
            "alerts": {
                name: [{"time": t, "at": _clock(t), "state": s} for t, s in changes]
                for name, changes in self.alerts.items()
            },
            "driftScoreSeries": [{"time": t, "at": _clock(t), "score": v} for t, v in self.drift_scores],
        }

    def print(self) -> None:
        print("  alerts, as Prometheus evaluated the chart's rules (ALERTS over the run, one point a second):")
        for name, changes in self.alerts.items():
            steps, before = [], "inactive"
            for t, state in changes:
                shown = "resolved" if state == "inactive" and before != "inactive" else state
                steps.append(f"{shown} {_clock(t)}")
                before = state
            print(f"    {name}: {' -> '.join(steps)}")
        if not self.alerts:
            print("    none was pending or firing")
        scores = ", ".join(f"{_clock(t)} {v:.3f}" for t, v in self.drift_scores)
        print(f"  drift score series (modelfreshness_drift_score, its changes): {scores or 'no samples'}")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def observe(prom: Prometheus, namespace: str, name: str, start: float, last_check: float) -> Observed:
    """What Prometheus saw from ``start`` until now, once it has scraped the check of ``last_check``
    (unix seconds) and evaluated the rules on it (or after 30 s)."""
    selector = f'{{namespace="{namespace}", name="{name}"}}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if prom.query(f"modelfreshness_drift_last_check_timestamp_seconds{selector} >= {last_check - 0.5}"):
            break
        time.sleep(INTERVAL / 2)
    time.sleep(3 * INTERVAL)  # a rule evaluation after that scrape, and the one after it
    lo, hi = math.floor(start), math.ceil(time.time())
    alerts = alert_changes(prom.query_range(f"ALERTS{selector}", lo, hi, INTERVAL), lo, hi, INTERVAL)
    scores = value_changes(prom.query_range(f"modelfreshness_drift_score{selector}", lo, hi, INTERVAL))
    return Observed(alerts, scores)

"""hack/prometheus.py starts a real Prometheus, answers queries, reports bad ones, and stops. No cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hack.prometheus import Prometheus
from testkit.wait import wait_for
from tests.chart.tools import require_tool


@pytest.fixture(autouse=True)
def _prometheus_installed() -> None:
    require_tool("prometheus", "run `bash hack/install-promtool.sh` (Debian package prometheus)")


def test_it_evaluates_rules_answers_queries_and_names_a_bad_one(tmp_path: Path) -> None:
    rules = [{"name": "g", "rules": [{"record": "two", "expr": "vector(2)"}]}]
    prom = Prometheus(tmp_path, {"none": []}, rules).start()
    try:
        assert float(prom.query("vector(1 + 1)")[0]["value"][1]) == 2
        [rule] = prom.api("rules")["groups"][0]["rules"]
        assert rule["name"] == "two" and rule["health"] in ("ok", "unknown")
        with pytest.raises(ValueError, match="bad_data"):
            prom.query("sum by (")
    finally:
        prom.stop()
    assert prom.proc is not None and prom.proc.returncode is not None  # reaped


def test_a_config_prometheus_refuses_fails_with_its_log(tmp_path: Path) -> None:
    bad = Prometheus(tmp_path, {"x": ["127.0.0.1:1"]}, [{"name": "g", "rules": [{"alert": "A", "expr": "sum by ("}]}])
    with pytest.raises(RuntimeError, match="prometheus exited"):
        bad.start(timeout=30)


def test_targets_carry_their_labels_and_range_queries_answer(tmp_path: Path) -> None:
    prom = Prometheus(tmp_path, {"self": []}, labels={"self": {"namespace": "team-a", "pod": "p-0"}})
    prom.targets["self"] = [f"127.0.0.1:{prom.port}"]  # Prometheus scrapes its own /metrics
    prom.start()
    try:
        start = time.time()
        wait_for("a scrape of itself", lambda: prom.query('up{job="self"} == 1'), 30)
        [up] = prom.query('up{job="self"}')
        assert up["metric"]["namespace"] == "team-a" and up["metric"]["pod"] == "p-0"
        [series] = prom.query_range('up{job="self"}', start - 5, time.time() + 1, 1)
        assert series["values"] and all(v == "1" for _, v in series["values"])
    finally:
        prom.stop()

"""A real Prometheus scrapes the operator during a loop and evaluates the chart's own alert rules.

The rules and the dashboard come from ``helm template`` of the chart (one source of truth), with
one value changed for speed: ``prometheusRule.alerts.ModelDriftDetected.for`` is 5s instead of 15m.
Prometheus (hack/prometheus.py) scrapes and evaluates every second. The loop is the operator's
(a subprocess) on the real local control plane; the tests play the step containers (cluster_kit),
and once the kubelet's report of a drift pod that cannot start (so a step is stuck for a while).
Prometheus also scrapes a real model server (``freshness-serve``, an untrained model) that the
run sends v2 inference requests to, with the target labels a pod scrape in the run's namespace
would have, so every dashboard panel has data to show.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hack.prometheus import Prometheus
from testkit.manifests import ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.results import drift_doc, package_doc, train_doc
from testkit.wait import wait_for
from tests.chart.tools import Helm, helm_candidates, one, require_tool
from tests.conftest import Cluster
from tests.operator.cluster_kit import CRD, Kit, Operator, restricted_namespace

pytestmark = pytest.mark.cluster
ALERT = "ModelDriftDetected"
CHART_VALUES = {
    "prometheusRule": {"enabled": True, "alerts": {ALERT: {"for": "5s"}}},
    "grafanaDashboard": {"enabled": True},
}
# Panels are range queries, as Grafana sends them: one point every STEP seconds over the run, with
# Grafana's interval variables for that step and this Prometheus's 1 s scrape interval
# ($__rate_interval = max($__interval + scrape interval, 4 x scrape interval)).
STEP = 2
GRAFANA_VARIABLES = {"$__rate_interval": "4s", "$__interval": f"{STEP}s"}
SERVER_POD = "cats-dogs-7d9f8b6c5-x2x4q"


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    helm = Helm(require_tool("helm", "run `bash hack/build-binaries.sh` (it fetches helm)", helm_candidates()))
    return helm.template(CHART_VALUES)


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"mfp{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def namespace(prefix: str) -> str:
    """The run's namespace, named before Prometheus starts: its model server target carries it."""
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``freshness-serve`` on a free port with an untrained two-class model, capturing every input."""
    from freshness_trainer.serve.local import LocalServer

    from tests.trainer.serve_kit import save_model

    tmp = tmp_path_factory.mktemp("model-server")
    env = {
        "MODEL_PATH": str(save_model(tmp / "model.pt")),
        "MODEL_NAME": "cats-dogs",
        "FRESHNESS_CAPTURE_URI": str(tmp / "capture"),
        "FRESHNESS_CAPTURE_RATE": "1",
        "FRESHNESS_TORCH_THREADS": "1",
    }
    with LocalServer(env, tmp / "server.log") as srv:
        srv.wait_listening()
        wait_for("the model server ready", lambda: srv.get("/v2/health/ready")[0] == 200, 120, srv.log)
        yield srv


def send_inference_requests(server: Any, count: int) -> None:
    """``count`` v2 requests of two PNG images each, and one the server must refuse (bad_request)."""
    from freshness_trainer import sampledata
    from freshness_trainer.serve.local import post_json

    from tests.trainer.serve_kit import encode

    images = sampledata.render({"cats": 1, "dogs": 1}, half="production", seed=count).images
    tensor = {
        "name": "image",
        "shape": [2],
        "datatype": "BYTES",
        "data": [base64.b64encode(encode(img, "PNG")).decode() for img in images],
    }
    for i in range(count):
        status, body = post_json(f"{server.url}/v2/models/cats-dogs/infer", {"id": f"r{i}", "inputs": [tensor]})
        assert status == 200, body
    status, body = post_json(f"{server.url}/v2/models/cats-dogs/infer", {"inputs": [{**tensor, "shape": [3]}]})
    assert status == 400, body


@pytest.fixture(scope="module")
def operator(cluster: Cluster, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    cluster.kubectl("apply", "-f", str(CRD))
    established = ("wait", "--for=condition=Established", "crd/modeldeployments.modelfreshness.io", "--timeout=10s")
    # Right after the create, `kubectl wait` can fail on a status without conditions yet: retry.
    wait_for("the CRD Established", lambda: cluster.kubectl(*established, check=False).returncode == 0, 60)
    op = Operator(cluster, f"{prefix}-*", tmp_path_factory.mktemp("operator") / "operator.log")
    try:
        yield op.start()
    finally:
        op.stop()


@pytest.fixture(scope="module")
def prometheus(
    operator: Operator,
    model_server: Any,
    namespace: str,
    chart: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Prometheus]:
    require_tool("prometheus", "run `bash hack/install-promtool.sh` (Debian package prometheus)")
    groups = one(chart, "PrometheusRule")["spec"]["groups"]
    targets = {
        "model-freshness-operator": [f"127.0.0.1:{operator.metrics_port}"],
        "model-server": [f"127.0.0.1:{model_server.port}"],
    }
    # What Kubernetes service discovery attaches to a scraped serving pod (docs/install.md: scrape
    # its pods' /metrics); the dashboard's serving panels select on `namespace`.
    labels = {"model-server": {"namespace": namespace, "pod": SERVER_POD, "container": "server"}}
    workdir = tmp_path_factory.mktemp("prometheus")
    prom = Prometheus(workdir, targets, groups, labels=labels, interval="1s").start()
    try:
        yield prom
    finally:
        prom.stop()


@dataclass
class Run:
    kit: Kit
    transitions: list[tuple[float, str]]
    """(seconds since the drifted check finished, alert state) each time ModelDriftDetected changed state."""
    start: float


class AlertWatch:
    """Records the state changes of one alert of one ModelDeployment, polling /api/v1/alerts."""

    def __init__(self, prom: Prometheus, namespace: str, t0: float) -> None:
        self.prom, self.namespace, self.t0 = prom, namespace, t0
        self.transitions: list[tuple[float, str]] = []

    def poll(self) -> str:
        states = [
            a["state"]
            for a in self.prom.alerts()
            if a["labels"].get("alertname") == ALERT and a["labels"].get("namespace") == self.namespace
        ]
        state = states[0] if states else "inactive"
        if not self.transitions or self.transitions[-1][1] != state:
            self.transitions.append((round(time.monotonic() - self.t0, 1), state))
        return state

    def until(self, kit: Kit, state: str, timeout: float = 60) -> None:
        kit.until(f"{ALERT} {state} (seen: {self.transitions})", lambda: self.poll() == state, timeout)


def stuck_for_a_while(kit: Kit, prometheus: Prometheus, job: str) -> None:
    """The kubelet's report of a step pod that cannot start (a missing Secret), until Prometheus
    has scraped the stuck step a few times; ``kit.finish`` then ends the pod as usual."""
    pod = kit.until(
        f"a pod of {job} with an IP",
        lambda: next(
            (p["metadata"]["name"] for p in kit.items("pods", f"job-name={job}") if p["status"].get("podIP")), None
        ),
    )
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "git-creds" not found'}
    container = {"name": "main", "image": "x", "imageID": "", "ready": False, "restartCount": 0}
    status = {"status": {"containerStatuses": [{**container, "state": {"waiting": waiting}}]}}
    kit.kubectl("patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    selector = f'modelfreshness_step_stuck{{namespace="{kit.ns}", reason="CreateContainerConfigError"}}'
    # Long enough for a dashboard point STEP seconds apart to fall inside: four scrapes of it.
    stuck = f"count_over_time({selector}[1m]) >= {STEP + 2}"
    kit.until("Prometheus scraped the stuck step four times", lambda: prometheus.query(stuck), timeout=60)


def with_signals(doc: dict[str, Any], harmful: bool) -> dict[str, Any]:
    """The label-free signals a real drift step reports (the dashboard draws them): a drop in the
    estimated accuracy and a novelty share that starts a retrain under the default trigger, or none."""
    estimate = 0.71 if harmful else 0.94
    low, high = round(estimate - 0.03, 2), round(estimate + 0.03, 2)
    doc["drift"]["estimatedAccuracy"] = {"value": estimate, "low": low, "high": high, "reference": 0.95}
    doc["drift"]["novelty"] = {
        "share": 0.3 if harmful else 0.01,
        "referenceRate": 0.01,
        "pValue": 1e-9 if harmful else 0.6,
        "detected": harmful,
    }
    doc["drift"]["referenceKind"] = "heldOut"
    return doc


@pytest.fixture(scope="module")
def run(
    cluster: Cluster, operator: Operator, prometheus: Prometheus, model_server: Any, namespace: str
) -> Iterator[Run]:
    """One loop: a stuck drift pod, no drift, drift (alert pending -> firing), retrain, rollout, no
    drift (resolved); the model server answers requests before the drift and after the rollout."""
    ns = restricted_namespace(cluster, namespace)
    kit = Kit(cluster, ns, operator)
    kit.apply(ServingDeploymentBuilder("cats-dogs").image("registry.example/cats-dogs:0.1").obj())
    kit.apply(ModelDeploymentBuilder("cats").interval("3s").obj())
    start = time.time()
    stuck_for_a_while(kit, prometheus, kit.wait_job("cats", "drift", "cats-drift-1"))
    kit.finish("cats-drift-1", with_signals(drift_doc(False, 0.05), harmful=False))
    kit.wait_phase("cats", "Monitoring")
    send_inference_requests(model_server, 4)
    watch = AlertWatch(prometheus, ns, time.monotonic())
    assert watch.poll() == "inactive"
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), with_signals(drift_doc(True, 0.62), harmful=True))
    watch.until(kit, "pending", timeout=30)
    watch.until(kit, "firing", timeout=30)  # the retrain is held until the alert fired
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.91, rev="aaaaaaaa11"))
    kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-aaaaaaaa"))
    kit.until("the rollout", lambda: kit.status("cats").get("model", {}).get("version") == "v1-aaaaaaaa")
    assert watch.poll() == "firing"  # the verdict still says drift until the next check
    send_inference_requests(model_server, 4)
    # A scrape that times out (1 s under a loaded CI machine) can hide both bursts from every 4 s
    # rate window; keep the server answering until the dashboard's latency query has a point.
    latency = ("histogram_quantile(0.99, sum by (le) (rate(modelfreshness_serving_request_duration_seconds_bucket"
               f'{{namespace="{namespace}"}}[4s])))')

    def latency_seen() -> bool:
        send_inference_requests(model_server, 1)
        result = prometheus.query_range(latency, math.floor(start), math.ceil(time.time()), STEP)
        return any(not math.isnan(float(v)) for series in result for _, v in series["values"])

    wait_for("a serving latency quantile in Prometheus", latency_seen, 60)
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-3"), with_signals(drift_doc(False, 0.04), harmful=False))
    watch.until(kit, "inactive", timeout=30)
    print(f"\n{ALERT} transitions (s since the drifted check finished): {watch.transitions}")
    try:
        yield Run(kit, watch.transitions, start)
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false")


def test_drift_alert_goes_pending_firing_resolved_with_the_loop(run: Run, prometheus: Prometheus) -> None:
    assert [s for _, s in run.transitions] == ["inactive", "pending", "firing", "inactive"]
    # Prometheus's own record of it: ALERTS had both states for this ModelDeployment, and none now.
    selector = f'ALERTS{{alertname="{ALERT}", namespace="{run.kit.ns}", name="cats"}}'
    seen = prometheus.api("query_range", query=selector, start=run.start, end=time.time(), step=1)["result"]
    assert {s["metric"]["alertstate"] for s in seen} == {"pending", "firing"}
    assert prometheus.query(selector) == []
    fired = next(a for a in seen if a["metric"]["alertstate"] == "firing")["metric"]
    assert fired["severity"] == "warning"


def test_drift_score_series_has_the_modeldeployments_labels(run: Run, prometheus: Prometheus) -> None:
    [series] = prometheus.query(f'modelfreshness_drift_score{{namespace="{run.kit.ns}"}}')
    assert series["metric"]["name"] == "cats" and series["metric"]["namespace"] == run.kit.ns
    assert float(series["value"][1]) == pytest.approx(0.04)  # the last verdict
    [peak] = prometheus.query(f'max_over_time(modelfreshness_drift_score{{namespace="{run.kit.ns}"}}[10m])')
    assert float(peak["value"][1]) == pytest.approx(0.62)  # the drifted verdict, scraped while it stood
    [threshold] = prometheus.query(f'modelfreshness_drift_threshold{{namespace="{run.kit.ns}", name="cats"}}')
    assert float(threshold["value"][1]) == pytest.approx(0.3)


def dashboard(chart: list[dict[str, Any]]) -> dict[str, Any]:
    [cm] = [d for d in chart if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    return dict(json.loads(cm["data"]["model-freshness.json"]))


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name in sorted(variables, key=len, reverse=True):  # $__rate_interval before $__range
        expr = expr.replace(name, variables[name])
    assert "$" not in expr, f"an unknown variable in {expr}"
    return expr


def test_every_dashboard_query_runs_and_returns_what_the_run_produced(
    run: Run, prometheus: Prometheus, chart: list[dict[str, Any]]
) -> None:
    board = dashboard(chart)
    start, end = math.floor(run.start), math.ceil(time.time())
    variables = {**GRAFANA_VARIABLES, "$__range": f"{end - start}s", "$namespace": run.kit.ns, "$name": "cats"}
    # The template variables' own queries (label_values) list this ModelDeployment.
    for var in board["templating"]["list"]:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", var["query"]["query"])
        assert match, var["query"]
        selector, label = substitute(match[1], variables), match[2]
        values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
        assert variables[f"${var['name']}"] in values, (var["name"], values)
    checked, empty = 0, []
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = substitute(target["expr"], variables)
            try:
                result = prometheus.query_range(expr, start, end, STEP)
            except ValueError as e:
                pytest.fail(f"panel {panel['title']!r}: {e}")
            checked += 1
            # Data: at least one number (a quantile of no observations is NaN: nothing to draw).
            if not any(not math.isnan(float(v)) for series in result for _, v in series["values"]):
                empty.append(f"{panel['title']!r}: {expr} -> {result}")
    assert not empty, "queries without data over the run:\n" + "\n".join(empty)
    assert checked >= len(board["panels"])

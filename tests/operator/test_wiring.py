"""The wiring without a cluster: settings, metrics, and one reconcile against a fake API."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kopf
import pytest
from freshness_operator import handlers
from freshness_operator.cache import Cache
from freshness_operator.core import actions as act
from freshness_operator.core.owner import Owner
from freshness_operator.core.status import Status
from freshness_operator.kube import ApiError
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile import Deps, reconcile
from freshness_operator.settings import DEFAULT_TRAINER_IMAGE, Settings, SettingsError
from prometheus_client import generate_latest

from tests.operator.sim import BASE_SPEC, Sim, make_spec


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "FRESHNESS_NAMESPACES": "ml, team-*",
            "FRESHNESS_METRICS_PORT": "9100",
            "FRESHNESS_STANDALONE": "false",
            "FRESHNESS_TRAINER_IMAGE": "r/t:1",
        }
    )
    assert s.namespaces == ("ml", "team-*") and not s.clusterwide
    assert (s.metrics_port, s.health_port, s.trainer_image, s.standalone) == (9100, 8080, "r/t:1", False)
    d = Settings.from_env({})
    assert d.clusterwide and d.trainer_image == DEFAULT_TRAINER_IMAGE and d.standalone


@pytest.mark.parametrize(
    "env",
    [
        {"FRESHNESS_METRICS_PORT": "http"},
        {"FRESHNESS_HEALTH_PORT": "70000"},
        {"FRESHNESS_STANDALONE": "maybe"},
        {"FRESHNESS_LOG_LEVEL": "loud"},
    ],
)
def test_settings_refuse_bad_values_naming_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m freshness_operator`` as a user starts it (none of these cases reaches kopf)."""
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    return subprocess.run(
        [sys.executable, "-m", "freshness_operator", *args], env=full, capture_output=True, text=True, timeout=60
    )


def test_cli_help_and_version_exit_0_without_starting_the_operator() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0 and "FRESHNESS_NAMESPACES" in helped.stdout and "usage:" in helped.stdout
    shown = run_cli("--version")
    assert shown.returncode == 0 and shown.stdout.startswith("freshness-operator ")


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--bogus"], {}, "--bogus"),
        ([], {"FRESHNESS_METRICS_PORT": "http"}, "FRESHNESS_METRICS_PORT"),
        ([], {"FRESHNESS_LOG_LEVEL": "loud"}, "FRESHNESS_LOG_LEVEL"),
    ],
)
def test_cli_bad_arguments_and_settings_exit_2_naming_them(args: list[str], env: dict[str, str], named: str) -> None:
    proc = run_cli(*args, **env)
    assert proc.returncode == 2 and named in proc.stderr, proc.stderr


def scrape(m: Metrics) -> str:
    return generate_latest(m.registry).decode()


def test_metrics_follow_status_and_counters() -> None:
    m = Metrics()
    sim = Sim().to_rolling_out().rollout_completes()
    for d in sim.history:
        m.record("ml", "cats", d.actions)
    m.update("ml", "cats", sim.spec, sim.status)
    text = scrape(m)
    labels = 'name="cats",namespace="ml"'
    assert f"modelfreshness_drift_detected{{{labels}}} 1.0" in text
    assert f"modelfreshness_drift_share{{{labels}}} 0.5" in text
    assert f"modelfreshness_drift_threshold{{{labels}}} {sim.status.drift.threshold}" in text
    assert f"modelfreshness_drift_interval_seconds{{{labels}}} 3600.0" in text
    assert f'modelfreshness_retrains_total{{{labels},result="succeeded"}} 1.0' in text
    assert f'modelfreshness_retrains_total{{{labels},result="failed"}} 0.0' in text
    assert f'modelfreshness_rollouts_total{{{labels},result="succeeded"}} 1.0' in text
    assert f'modelfreshness_drift_checks_total{{{labels},result="succeeded"}} 1.0' in text
    assert f'modelfreshness_phase{{{labels},phase="Monitoring"}} 1.0' in text
    assert f'modelfreshness_phase{{{labels},phase="Training"}} 0.0' in text
    assert "modelfreshness_model_age_seconds{" in text
    assert "modelfreshness_model_deployed_timestamp_seconds{" in text
    assert "modelfreshness_drift_last_check_timestamp_seconds{" in text
    assert 'modelfreshness_step_duration_seconds_count{name="cats",namespace="ml",step="train"} 2.0' in text
    m.forget("ml", "cats")
    assert 'name="cats"' not in scrape(m)


def test_the_label_free_signals_are_gauges_and_vanish_when_a_check_lacks_them() -> None:
    m = Metrics()
    labels = 'name="cats",namespace="ml"'
    sim = Sim().check(
        True,
        estimatedAccuracy={"value": 0.91, "low": 0.88, "high": 0.94, "reference": 0.93},
        novelty={"share": 0.02, "referenceRate": 0.016, "pValue": 0.4, "detected": False},
    )
    m.update("ml", "cats", sim.spec, sim.status)
    text = scrape(m)
    assert f"modelfreshness_estimated_accuracy{{{labels}}} 0.91" in text
    assert f"modelfreshness_reference_accuracy{{{labels}}} 0.93" in text
    assert f"modelfreshness_novelty_share{{{labels}}} 0.02" in text
    assert f"modelfreshness_distribution_drift{{{labels}}} 1.0" in text
    assert f"modelfreshness_drift_detected{{{labels}}} 0.0" in text  # impact: no retrain for it
    sim.check(False)  # an older trainer: no estimate, no novelty
    m.update("ml", "cats", sim.spec, sim.status)
    text = scrape(m)
    assert "modelfreshness_estimated_accuracy{" not in text and "modelfreshness_novelty_share{" not in text
    assert f"modelfreshness_distribution_drift{{{labels}}} 0.0" in text
    m.forget("ml", "cats")
    assert 'name="cats"' not in scrape(m)


def test_a_stuck_step_is_a_gauge_with_its_reason_until_it_moves() -> None:
    m = Metrics()
    sim = Sim().check(True).stuck("cats-train-1-0", "Unschedulable").step(1)
    m.update("ml", "cats", sim.spec, sim.status)
    assert 'modelfreshness_step_stuck{name="cats",namespace="ml",reason="Unschedulable"} 1.0' in scrape(m)
    sim.stuck("cats-train-1-0", "ImagePullBackOff").step(1)
    m.update("ml", "cats", sim.spec, sim.status)
    text = scrape(m)
    assert 'reason="ImagePullBackOff"} 1.0' in text and 'reason="Unschedulable"' not in text
    sim.stuck("cats-train-1-0", "").step(1)
    m.update("ml", "cats", sim.spec, sim.status)
    assert "modelfreshness_step_stuck{" not in scrape(m)


COUNTER_RESULTS = (
    ("drift_checks", "succeeded"),
    ("drift_checks", "failed"),
    ("retrains", "succeeded"),
    ("retrains", "failed"),
    ("retrains", "rejected"),
    ("rollouts", "succeeded"),
    ("rollouts", "failed"),
)


def counter_series(namespace: str, name: str) -> list[str]:
    """Every counter series of one ModelDeployment as the exposition format names it."""
    labels = f'name="{name}",namespace="{namespace}"'
    series = [f'modelfreshness_{metric}_total{{{labels},result="{result}"}}' for metric, result in COUNTER_RESULTS]
    return [*series, f"modelfreshness_rollbacks_total{{{labels}}}"]


def missing(text: str, lines: list[str]) -> list[str]:
    return [line for line in lines if line not in text]


def test_every_counter_series_exists_at_zero_when_a_modeldeployment_is_first_seen() -> None:
    m = Metrics()
    m.update("ml", "cats", make_spec(), Status())
    assert missing(scrape(m), [f"{s} 0.0" for s in counter_series("ml", "cats")]) == []


def test_counter_series_are_zeroed_before_the_first_increment() -> None:
    # The first reconcile records its counts before it sets the gauges: the zeros must not wait.
    m = Metrics()
    m.record("ml", "cats", [act.Count(act.Metric.DRIFT_CHECKS, "failed")])
    failed = 'modelfreshness_drift_checks_total{name="cats",namespace="ml",result="failed"}'
    zeros = [f"{s} 0.0" for s in counter_series("ml", "cats") if s != failed]
    assert len(zeros) == 7 and missing(scrape(m), [f"{failed} 1.0", *zeros]) == []


def test_forget_drops_only_that_modeldeployment_and_a_recreated_one_starts_at_zero() -> None:
    m = Metrics()
    sim = Sim().to_rolling_out().rollout_completes()
    for name in ("cats", "dogs"):
        for d in sim.history:
            m.record("ml", name, d.actions)
        m.update("ml", name, sim.spec, sim.status)
    m.forget("ml", "cats")
    text = scrape(m)
    assert 'name="cats"' not in text
    assert 'modelfreshness_retrains_total{name="dogs",namespace="ml",result="succeeded"} 1.0' in text
    m.update("ml", "cats", sim.spec, Status())
    assert missing(scrape(m), [f"{s} 0.0" for s in counter_series("ml", "cats")]) == []


def test_a_cron_schedule_exports_an_interval_of_zero() -> None:
    # DriftCheckMissing skips 0: a schedule has no single interval to compare against.
    m = Metrics()
    line = 'modelfreshness_drift_interval_seconds{name="cats",namespace="ml"}'
    m.update("ml", "cats", make_spec(), Status())
    assert f"{line} 3600.0" in scrape(m)
    for schedule in ("0 6,18 * * *", "* * * * *", "0 0 29 2 *"):
        m.update("ml", "cats", make_spec(drift={"schedule": schedule, "interval": None}), Status())
        assert f"{line} 0.0" in scrape(m), schedule


class Live(Mapping[Any, list[dict[str, Any]]]):
    """Stands in for a kopf index: every lookup reads the fake API's objects as they are now."""

    def __init__(self, objects: Callable[[], list[dict[str, Any]]]) -> None:
        self.objects = objects

    def __getitem__(self, key: Any) -> list[dict[str, Any]]:
        return self.objects()

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0


class FakeKube:
    """The whole ``kube.KubeApi`` in memory (``Deps(kube=FakeKube(...))`` is type-checked).

    Records calls in order; holds one ModelDeployment and its serving Deployment, which the cache
    reads as if the watches had shown them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gone = False  # the ModelDeployment was deleted
        self.jobs: list[dict[str, Any]] = []
        self.refuse: ApiError | None = None  # what create_job raises
        self.body: dict[str, Any] = {
            "apiVersion": "modelfreshness.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "cats", "namespace": "ml", "uid": "u1", "generation": 1, "resourceVersion": "1"},
            "spec": spec,
        }
        self.deployment: dict[str, Any] = {
            "metadata": {"generation": 1},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "server", "image": "r/c:0.1"}]}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
        }

    async def get_mdep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None if self.gone else copy.deepcopy(self.body)

    def cache(self) -> Cache:
        cache = Cache()
        cache.bind(
            {
                "mdep_index": Live(lambda: [] if self.gone else [copy.deepcopy(self.body)]),
                "job_index": Live(lambda: self.jobs),
                "pod_index": Live(lambda: []),
                "deployment_index": Live(lambda: [self.deployment]),
            }
        )
        return cache

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.deployment

    async def create_job(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append(("create_job", manifest["metadata"]["name"]))
        if self.refuse is not None:
            raise self.refuse
        self.jobs.append({**manifest, "metadata": {**manifest["metadata"], "uid": "j1"}, "status": {}})
        return self.jobs[-1]

    async def replace_status(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("replace_status", body["status"]["phase"]))
        version = str(int(self.body["metadata"]["resourceVersion"]) + 1)
        self.body = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
        return self.body

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", name))
        self.jobs = [j for j in self.jobs if j["metadata"]["name"] != name]

    async def create_service(self, manifest: dict[str, Any]) -> bool:
        self.calls.append(("create_service", manifest["metadata"]["name"]))
        return True

    async def delete_service(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_service", name))

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch_deployment", name))
        containers = patch["spec"]["template"]["spec"]["containers"]
        template = self.deployment["spec"]["template"]["spec"]
        for c in template["containers"]:
            c.update(next((p for p in containers if p["name"] == c["name"]), {}))
        self.deployment["metadata"]["generation"] += 1
        return self.deployment

    async def post_event(self, owner: Owner, reason: str, message: str, *, warning: bool) -> None:
        self.calls.append(("event", reason))


def run_once(kube: FakeKube, metrics: Metrics | None = None, failures: int = 0) -> tuple[Any, str | None]:
    deps = Deps(kube=kube, settings=Settings(), metrics=metrics or Metrics(), cache=kube.cache())
    return asyncio.run(reconcile(deps, "ml", "cats", failures=failures))


def test_the_first_reconcile_creates_the_counter_series_and_a_deleted_object_loses_them() -> None:
    kube, m = FakeKube(copy.deepcopy(BASE_SPEC)), Metrics()
    run_once(kube, m)
    assert missing(scrape(m), [f"{s} 0.0" for s in counter_series("ml", "cats")]) == []
    kube.gone = True
    run_once(kube, m)
    assert 'name="cats"' not in scrape(m)


def test_reconcile_acts_then_writes_status_and_is_quiet_when_nothing_changed() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    when, written = run_once(kube)
    assert kube.calls == [("create_job", "cats-drift-1"), ("replace_status", "Pending")]
    assert written == "2" and when is not None  # the heartbeat's; the next step comes from the Job's events
    kube.calls.clear()
    assert run_once(kube) == (when, None)
    assert kube.calls == []


def test_the_check_now_annotation_starts_a_check_through_reconcile() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    run_once(kube)
    kube.jobs[0]["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}
    kube.body["status"]["drift"]["startedAt"] = "2099-01-01T00:00:00Z"  # the next check is far away
    run_once(kube)
    kube.calls.clear()
    kube.body["metadata"]["annotations"] = {"modelfreshness.io/check-now": "now-please"}
    run_once(kube)
    assert ("create_job", "cats-drift-2") in kube.calls and ("event", "CheckRequested") in kube.calls


def test_reconcile_names_the_peers_on_the_same_deployment_but_not_itself() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    deps = Deps(kube=kube, settings=Settings(), metrics=Metrics(), cache=kube.cache())
    index = {("ml", "cats-dogs"): ["cats", "cats-copy"]}
    asyncio.run(reconcile(deps, "ml", "cats", lambda ns, dep: index.get((ns, dep), [])))
    shared = next(c for c in kube.body["status"]["conditions"] if c["type"] == "DeploymentShared")
    assert shared["status"] == "True" and "cats-copy" in shared["message"] and "(s) cats," not in shared["message"]


def test_reconcile_of_an_invalid_spec_reports_it() -> None:
    spec = copy.deepcopy(BASE_SPEC)
    spec["drift"] = {"schedule": "*/0 * * * *"}
    kube = FakeKube(spec)
    run_once(kube)
    assert kube.calls == [("replace_status", "Failed"), ("event", "InvalidSpec")]
    ready = next(c for c in kube.body["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec" and "spec.drift.schedule" in ready["message"]


def test_events_follow_the_status_write() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    kube.body["spec"]["paused"] = True
    kube.body["status"] = {"phase": "Monitoring", "observedGeneration": 1}
    run_once(kube)
    # the Paused phase is written first, then its one Event; nothing is created while paused
    assert kube.calls == [("replace_status", "Paused"), ("event", "Paused")]


def test_a_permanent_refusal_fails_the_step_with_the_api_message_and_is_not_retried() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    kube.refuse = ApiError(403, "Forbidden", 'admission webhook "deny.example" denied the request: no jobs here')
    when, written = run_once(kube)
    assert kube.calls == [("create_job", "cats-drift-1"), ("replace_status", "Pending"), ("event", "DriftCheckFailed")]
    error = kube.body["status"]["drift"]["lastError"]
    assert error["reason"] == "JobRefused"
    assert "Job ml/cats-drift-1: 403 Forbidden: admission webhook" in error["message"]
    assert written == "2" and when is not None  # the next check when due, not a tight retry


@pytest.mark.parametrize(("failures", "reported"), [(0, False), (3, True)])
def test_a_retryable_error_is_raised_for_backoff_and_reported_past_the_bound(failures: int, reported: bool) -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    kube.refuse = ApiError(503, "ServiceUnavailable", "etcdserver: request timed out")
    with pytest.raises(ApiError):
        run_once(kube, failures=failures)
    writes = [c for c in kube.calls if c[0] != "create_job"]
    if not reported:
        assert writes == []
        return
    assert writes == [("replace_status", "Pending"), ("event", "ApiRetrying")]
    ready = next(c for c in kube.body["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ApiRetrying" and "Job ml/cats-drift-1: 503 ServiceUnavailable" in ready["message"]


def test_every_watch_is_bounded_so_a_stalled_one_is_replaced() -> None:
    settings = kopf.OperatorSettings()
    assert settings.watching.client_timeout is None  # kopf's default: a stalled watch waits forever
    handlers.configure(settings)
    w = settings.watching
    assert w.server_timeout is not None and w.client_timeout is not None and w.connect_timeout is not None
    assert w.server_timeout < w.client_timeout  # the server ends a healthy watch before the client gives up


def test_a_status_write_conflicting_only_with_an_annotation_is_put_again() -> None:
    kube = ConflictingKube(copy.deepcopy(BASE_SPEC), annotate=True)
    run_once(kube)
    assert [c[0] for c in kube.calls] == ["create_job", "replace_status", "replace_status"]
    assert kube.body["status"]["phase"] == "Pending"


def test_a_status_write_conflicting_with_a_status_change_goes_back_to_the_runner() -> None:
    kube = ConflictingKube(copy.deepcopy(BASE_SPEC), annotate=False)
    with pytest.raises(ApiError) as refused:
        run_once(kube)
    assert refused.value.status == 409 and [c[0] for c in kube.calls] == ["create_job", "replace_status"]


class ConflictingKube(FakeKube):
    """The first status write meets a 409: someone annotated the object, or changed its status."""

    def __init__(self, spec: dict[str, Any], *, annotate: bool) -> None:
        super().__init__(spec)
        self.annotate, self.conflicts = annotate, 1

    async def replace_status(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            self.calls.append(("replace_status", "409"))
            meta = self.body["metadata"]
            if self.annotate:
                meta["annotations"] = {"example.com/tick": "1"}
            else:
                self.body["status"] = {"phase": "Monitoring"}
            meta["resourceVersion"] = "9"
            raise ApiError(409, "Conflict", "the object has been modified")
        return await super().replace_status(body)

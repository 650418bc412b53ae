"""The operator under a real Kueue (hack/kueue.py: sigs.k8s.io/kueue built from Go modules, its
webhooks on loopback) on the local control plane: GPU quota, Queued candidates, the timeout from
admission (issue 16 part 1).

The ClusterQueue of examples/kueue-queues.yaml has quota for 2 ``nvidia.com/gpu`` (the kwok nodes
advertise 8 each, so the scheduler alone would run all four); a sweep of 4 candidates asking 1 GPU
each -> Kueue admits 2, 2 wait as Queued, all 4 finish, the best is gated.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from hack import kueue as kueue_mod
from testkit.manifests import REPO, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.results import drift_doc, train_doc
from tests.background import Background
from tests.conftest import Cluster
from tests.operator.cluster_kit import Kit, Operator, apply_crd, restricted_namespace

BUILD_WAIT = 1200  # s the first test may wait for the session's Kueue build (cold: ~4 min of 2 free cores)
pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.timeout(900 + BUILD_WAIT)]
TIMEOUT = 60  # spec.training.timeout in seconds: the queued candidate waits about half of it
QUEUES = REPO / "examples" / "kueue-queues.yaml"


@pytest.fixture(scope="module")
def kueue(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory, kueue_build_in_background: Background | None
) -> Iterator[kueue_mod.Kueue]:
    # The session started the build (tests/conftest.py); a cold one compiles Kueue beside the suite.
    assert kueue_build_in_background is not None, "tests/conftest.py builds Kueue when a test uses this fixture"
    rc, _, stderr = kueue_build_in_background.wait(timeout=BUILD_WAIT)
    assert rc == 0, f"hack/build-binaries.sh kueue failed:\n{stderr[-3000:]}"
    bin_dir = kueue_mod.build()  # cached by version now: only checks that the files exist
    k = kueue_mod.start(cluster.kubeconfig, bin_dir, tmp_path_factory.mktemp("kueue"))
    try:
        yield k
    finally:
        kueue_mod.stop(k)
        # The cluster is shared: a webhook left registered without its server would refuse every Job.
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            left = cluster.kubectl("get", kind, "-o", "name").stdout
            assert "modelfreshness-kueue" not in left, left


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"mfq{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def operator(cluster: Cluster, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    apply_crd(cluster)
    op = Operator(cluster, f"{prefix}-*", tmp_path_factory.mktemp("operator") / "operator.log")
    try:
        yield op.start()
    finally:
        op.stop()


def test_a_bad_queue_name_is_refused_naming_the_field(cluster: Cluster) -> None:
    apply_crd(cluster)
    for section in ("training", "package"):
        manifest = ModelDeploymentBuilder("bad").namespace("default").spec(**{section: {"queue": "GPU_queue"}}).obj()
        out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
        assert out.returncode != 0 and f"spec.{section}.queue" in out.stderr, out.stderr
        assert "LocalQueue" in out.stderr, out.stderr


def _queues(ns: str) -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all(QUEUES.read_text()))
    for doc in docs:
        if doc["kind"] == "LocalQueue":
            doc["metadata"]["namespace"] = ns
    return docs


def _runs(kit: Kit) -> list[dict[str, Any]]:
    return list((kit.status("cats").get("candidate") or {}).get("runs") or [])


def _by_state(kit: Kit, state: str) -> list[str]:
    return sorted(r["job"] for r in _runs(kit) if r.get("state") == state)


def _failed_condition(kit: Kit, job: str, reason: str | None = None) -> bool:
    conditions = (kit.get("job", job).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Failed" and c["status"] == "True" and reason in (None, c["reason"]) for c in conditions)


def _control_job(deadline: int) -> dict[str, Any]:
    """A Job without a queue and the sweep's deadline, created with it; its pod runs until the deadline
    (the step label keeps kwok from completing it): shows the deadline is enforced in this cluster."""
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "main", "image": "registry.example/control", "securityContext": security}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "deadline-control"},
        "spec": {
            "activeDeadlineSeconds": deadline,
            "backoffLimit": 0,
            "template": {"metadata": {"labels": {"modelfreshness.io/step": "control"}}, "spec": pod},
        },
    }


def test_quota_for_two_gpus_queues_two_of_four_candidates(
    cluster: Cluster, kueue: kueue_mod.Kueue, operator: Operator, prefix: str
) -> None:
    ns = restricted_namespace(cluster, f"{prefix}-{uuid.uuid4().hex[:5]}")
    kit = Kit(cluster, ns, operator)
    for doc in _queues(ns):
        kit.apply(doc)
    kit.apply(ServingDeploymentBuilder("cats-dogs").obj())
    sweep = [{"train.lr": lr} for lr in (0.1, 0.03, 0.01, 0.003)]
    training = {
        "candidates": sweep,
        "maxParallel": 4,
        "queue": "gpu",
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "timeout": f"{TIMEOUT}s",
    }
    kit.apply(ModelDeploymentBuilder("cats").spec(training=training).obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1", timeout=90), drift_doc(True))
    # 1. Kueue admits two (2 GPUs of quota), two wait suspended: the status shows them Queued.
    two_and_two = lambda: len(_by_state(kit, "Running")) == 2 and len(_by_state(kit, "Queued")) == 2  # noqa: E731
    kit.until("2 Running and 2 Queued", two_and_two, 120)
    created = time.monotonic()
    kit.apply(_control_job(TIMEOUT))  # the same deadline without a queue: it must fail by then
    (a, b), (q1, q2) = _by_state(kit, "Running"), _by_state(kit, "Queued")
    for job in (q1, q2):
        j = kit.get("job", job)
        assert j["spec"]["suspend"] is True and j["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
        assert kit.items("pods", f"job-name={job}") == []
        run = next(r for r in _runs(kit) if r["job"] == job)
        assert run.get("queuedAt") and not run.get("startedAt")
    assert kit.get("job", a)["spec"].get("suspend") is False
    status = kit.status("cats")
    training_cond = next(c for c in status["conditions"] if c["type"] == "Training")
    assert training_cond["reason"] == "CandidatesQueued" and "LocalQueue gpu" in training_cond["message"]
    assert status["step"] == "train 0/4 (2 queued)"
    kit.until("a CandidateQueued event", lambda: "CandidateQueued" in kit.events("cats"))
    # 2. One finishes: Kueue admits one of the two waiting (c); d keeps waiting on b and c.
    kit.finish(a, train_doc(0.84, rev="aaaaaaaa00"))
    c = kit.until("a third admitted", lambda: next(iter(set(_by_state(kit, "Running")) - {a, b}), None), 90)
    d = q2 if c == q1 else q1
    assert _by_state(kit, "Queued") == [d]
    # 3. b runs for a while, then finishes: d is admitted about TIMEOUT/2 after it was created.
    time.sleep(max(0.0, created + TIMEOUT / 2 - time.monotonic()))
    kit.finish(b, train_doc(0.86, rev="bbbbbbbb00"))
    kit.until(f"{d} admitted", lambda: d in _by_state(kit, "Running"), 90)
    kit.finish(c, train_doc(0.91, rev="cccccccc00"))
    # 4. The timeout counts from admission: d outlives TIMEOUT since its creation, and is not failed.
    time.sleep(max(0.0, created + TIMEOUT + 5 - time.monotonic()))
    control_failed = lambda: _failed_condition(kit, "deadline-control", "DeadlineExceeded")  # noqa: E731
    kit.until("the control Job failed on its deadline", control_failed, 30)
    assert not _failed_condition(kit, d), f"{d} failed: its deadline counted from creation"
    run_d = next(r for r in _runs(kit) if r["job"] == d)
    assert run_d["state"] == "Running" and run_d["queuedSeconds"] >= TIMEOUT / 2 - 5, run_d
    kit.finish(d, train_doc(0.83, rev="dddddddd00"))
    # 5. All four finished; the best (c) is gated and packaged.
    status = kit.wait_phase("cats", "Packaging", 90)
    cand = status["candidate"]
    assert [r["state"] for r in cand["runs"]] == ["Succeeded"] * 4
    best = next(r for r in cand["runs"] if r["index"] == cand["best"])
    assert best["job"] == c and cand["gate"]["passed"] is True
    assert all(r.get("queuedSeconds") is not None for r in cand["runs"])
    kit.wait_job("cats", "package", "cats-package-1")
    labels = f'name="cats",namespace="{ns}"'
    metrics = operator.metrics()
    assert f"modelfreshness_candidate_queued_seconds_count{{{labels}}} 4.0" in metrics, metrics
    assert "CandidateAdmitted" in kit.events("cats")
    cluster.kubectl("delete", "namespace", ns, "--wait=false")
    cluster.kubectl("delete", "clusterqueue", "gpu-cluster-queue", "--wait=false", check=False)


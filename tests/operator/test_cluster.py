"""The operator against the real local control plane (hack/localcluster/), end to end.

The operator runs as a subprocess (``python -m freshness_operator``); the tests play the step
containers (see cluster_kit.Kit.finish) and the serving Deployment's users.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from freshness_contract.argv import PackageArgs, TrainArgs

from testkit.manifests import DIGEST, REPO, SERVING_IMAGE, ModelDeploymentBuilder, ServingDeploymentBuilder, merge
from testkit.results import bare_result, drift_doc, package_doc, train_doc
from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.operator.cluster_kit import Kit, Operator, apply_crd, restricted_namespace, stall_new_pods

pytestmark = pytest.mark.cluster
OLD_IMAGE = f"{SERVING_IMAGE}:0.1"


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    apply_crd(cluster)


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"mft{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crd: None, prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster, f"{prefix}-*", tmp_path_factory.mktemp("operator") / "operator.log")
    try:
        yield op.start()
    finally:
        op.stop()


@pytest.fixture
def kit(cluster: Cluster, operator: Operator, prefix: str) -> Iterator[Kit]:
    ns = restricted_namespace(cluster, f"{prefix}-{uuid.uuid4().hex[:5]}")
    kit = Kit(cluster, ns, operator)
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    yield kit
    cluster.kubectl("delete", "namespace", ns, "--wait=false")


def test_invalid_manifests_are_refused_naming_the_field(cluster: Cluster, crd: None) -> None:
    cases: dict[str, dict[str, Any]] = {
        "spec.drift.threshold": {"drift": {"threshold": 2.0}},
        "spec.training.candidates": {"training": {"candidates": []}},
        "spec.drift.interval": {"drift": {"interval": "soon"}},
        "spec.serving.image": {"serving": {"image": "registry.example/cats-dogs:0.1"}},
        "spec.training.maxParallel": {"training": {"maxParallel": 0}},
        "spec.drift.minSamples": {"drift": {"minSamples": 0}},
        "spec.drift.window": {"drift": {"window": "yesterday"}},
        "spec.drift.newest": {"drift": {"newest": 0}},
        "spec.drift.trigger": {"drift": {"trigger": "always"}},
        "spec.training.nodes": {"training": {"nodes": 0}},
        "spec.training.gpusPerNode": {"training": {"gpusPerNode": 0}},
    }
    for field, spec in cases.items():
        manifest = ModelDeploymentBuilder("bad").spec(**spec).obj()
        manifest["metadata"]["namespace"] = "default"
        out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)
        assert out.returncode != 0, f"{field}: accepted"
        assert field in out.stderr, out.stderr
    # Issue 19: 0s passed the CRD and failed in the operator as InvalidSpec.
    zero = ModelDeploymentBuilder("bad").interval("0s").obj()
    zero["metadata"]["namespace"] = "default"
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(zero), check=False)
    assert out.returncode != 0 and "spec.drift.interval" in out.stderr and "at least 1s" in out.stderr, out.stderr
    # Issue 16: gpusPerNode is the pods' nvidia.com/gpu; a different limit beside it is refused (CEL).
    gpus = ModelDeploymentBuilder("bad").spec(
        training={"gpusPerNode": 8, "resources": {"limits": {"nvidia.com/gpu": 4}}}).obj()
    gpus["metadata"]["namespace"] = "default"
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(gpus), check=False)
    assert out.returncode != 0 and "spec.training.gpusPerNode" in out.stderr, out.stderr
    same = ModelDeploymentBuilder("ok").spec(
        training={"gpusPerNode": 8, "nodes": 2, "resources": {"limits": {"nvidia.com/gpu": "8"}}}).obj()
    same["metadata"]["namespace"] = "default"
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(same))
    missing = ModelDeploymentBuilder("bad").obj()
    del missing["spec"]["serving"]["container"]
    missing["metadata"]["namespace"] = "default"
    out = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(missing), check=False)
    assert out.returncode != 0 and "spec.serving.container" in out.stderr, out.stderr


def test_examples_are_accepted(cluster: Cluster, crd: None) -> None:
    for name in ("modeldeployment.yaml", "serving-deployment.yaml", "modeldeployment-multinode.yaml"):
        obj = yaml.safe_load((REPO / "examples" / name).read_text())
        obj["metadata"]["namespace"] = "default"
        cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj))
    for obj in yaml.safe_load_all((REPO / "examples" / "prerequisites.yaml").read_text()):
        if obj["kind"] != "Namespace":
            obj["metadata"]["namespace"] = "default"  # a dry-run Namespace is not there for its Secrets
        cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(obj))


def test_happy_path(kit: Kit) -> None:
    candidates = [{"train.lr": 0.01}, {"train.lr": 0.001}, {"train.lr": 0.0001}]
    kit.apply(
        ModelDeploymentBuilder("cats")
        .spec(
            drift={"interval": "3s"},
            training={"candidates": candidates, "maxParallel": 2, "params": {"train.num_classes": 3}},
        )
        .obj()
    )
    # 1. first check: no drift -> Monitoring
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(False, 0.05))
    status = kit.wait_phase("cats", "Monitoring")
    assert status["model"]["version"] == "0.1" and status["drift"]["detected"] is False
    # 2. next check: drift -> two of three candidates start (maxParallel 2)
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), drift_doc(True, 0.62))
    kit.wait_phase("cats", "Training")
    kit.until("two training Jobs", lambda: len(kit.jobs("cats", "train")) == 2)
    assert kit.jobs("cats", "train") == ["cats-train-1-0", "cats-train-1-1"]
    job = kit.get("job", "cats-train-1-0")
    args = TrainArgs.from_argv(job["spec"]["template"]["spec"]["containers"][0]["args"])
    assert {"train.lr=0.01", "train.num_classes=3"} <= set(args.overrides)
    # 3. a slot frees up -> the third candidate starts
    kit.finish("cats-train-1-0", train_doc(0.91, rev="aaaaaaaa11"))
    kit.wait_job("cats", "train", "cats-train-1-2")
    kit.finish("cats-train-1-1", train_doc(0.95, rev="bbbbbbbb22"))
    kit.finish("cats-train-1-2", train_doc(0.90, rev="cccccccc33"))
    # 4. best chosen (candidate 1) -> package -> image patched by digest -> rolled out
    kit.wait_phase("cats", "Packaging")
    package = kit.get("job", kit.wait_job("cats", "package", "cats-package-1"))
    package_args = PackageArgs.from_argv(package["spec"]["template"]["spec"]["containers"][0]["args"])
    assert package_args.image == "registry.example/cats-dogs:v1-bbbbbbbb"
    kit.finish("cats-package-1", package_doc("v1-bbbbbbbb"))
    kit.until("the image patch", lambda: kit.image() == f"{SERVING_IMAGE}:v1-bbbbbbbb@{DIGEST}")
    status = kit.wait_phase("cats", "Monitoring")
    assert status["model"]["version"] == "v1-bbbbbbbb"
    assert status["model"]["uri"] == "s3://dvc-remote/models/bbbbbbbb22/model.pt"
    assert status["history"][0]["image"] == OLD_IMAGE
    assert status["candidate"]["gate"]["passed"] is True
    dep = kit.get("deployment", "cats-dogs")
    assert dep["status"]["updatedReplicas"] == dep["status"]["availableReplicas"] == 1
    events = kit.until("the loop's events", lambda: (e := kit.events("cats")) and "RolledOut" in e and e)
    for reason in (
        "NoDrift",
        "DriftDetected",
        "TrainingStarted",
        "CandidateAccepted",
        "PackagingStarted",
        "RolloutStarted",
        "RolledOut",
    ):
        assert reason in events
    metrics = kit.operator.metrics()
    labels = f'name="cats",namespace="{kit.ns}"'
    assert f'modelfreshness_retrains_total{{{labels},result="succeeded"}} 1.0' in metrics
    assert f'modelfreshness_rollouts_total{{{labels},result="succeeded"}} 1.0' in metrics
    assert f"modelfreshness_drift_detected{{{labels}}} 1.0" in metrics
    assert f'modelfreshness_phase{{{labels},phase="Monitoring"}} 1.0' in metrics
    # 5. kubectl get mdep shows the printer columns with real values
    out = kit.kubectl("get", "mdep", "cats").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "REASON", "PHASE", "DRIFT", "MODEL", "STEP", "RECONCILED", "AGE"]
    row = out[1].split()
    assert row[:7] == ["cats", "True", "Monitoring", "Monitoring", "0.62/0.30", "drifted", "v1-bbbbbbbb"]
    assert row[7] in ("<none>", "check")  # the next check may have started (interval 3s)
    wide = kit.kubectl("get", "mdep", "cats", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-4:] == ["DEPLOYMENT", "LAST-CHECK", "NEXT-CHECK", "LAST-ERROR"]
    assert wide[1].split()[-4] == "cats-dogs" and wide[1].split()[-2].startswith("20")
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["RolledOut"]["observedGeneration"] == 1 and conditions["RolledOut"]["lastTransitionTime"]


def test_candidate_worse_than_serving_is_rejected(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.70, baseline=0.80))
    status = kit.until(
        "the rejection",
        lambda: (s := kit.status("cats")).get("candidate", {}).get("outcome") == "CandidateRejected" and s,
    )
    assert status["phase"] in ("Monitoring", "DriftDetected")
    assert status["candidate"]["gate"]["reason"] == "NotBetterThanServing"
    assert kit.jobs("cats", "package") == [] and kit.image() == OLD_IMAGE
    kit.until("a CandidateRejected event", lambda: "CandidateRejected" in kit.events("cats"))


def test_failed_training_job_and_bad_results(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").obj())
    # a malformed drift result fails the check, with the reason in status and an Event
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), raw="{this is not json")
    kit.until("Ready=False MalformedResult", lambda: kit.condition("cats", "Ready") == ("False", "MalformedResult"))
    assert kit.status("cats")["drift"]["lastError"]["reason"] == "MalformedResult"
    kit.until("a DriftCheckFailed event", lambda: "DriftCheckFailed" in kit.events("cats"))
    # the next check drifts; the training Job fails with the step's own reason
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), drift_doc(True))
    failed = {"step": "train", "ok": False, "reason": "TrainingDiverged", "message": "loss is NaN at epoch 2"}
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), failed, exit_code=1)
    status = kit.wait_phase("cats", "Failed")
    assert status["candidate"]["reason"] == "TrainingDiverged"
    assert kit.condition("cats", "Ready") == ("False", "TrainingDiverged")
    kit.until("a TrainingFailed event", lambda: "TrainingFailed" in kit.events("cats"))
    # the next retrain's Job ends without writing any result: MissingResult
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-3"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-2-0"), None)
    kit.until("MissingResult", lambda: kit.status("cats").get("candidate", {}).get("reason") == "MissingResult")
    assert kit.status("cats")["phase"] == "Failed"


def test_results_without_their_section_or_with_a_foreign_image_change_nothing(kit: Kit) -> None:
    """Issue 10's faults: ``ok`` without the step's section, or an image that was not asked for,
    fail the step with MalformedResult naming the field; the serving Deployment keeps its image."""
    kit.apply(ModelDeploymentBuilder("cats").obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), raw=bare_result("drift"))
    kit.until("Ready=False MalformedResult", lambda: kit.condition("cats", "Ready") == ("False", "MalformedResult"))
    drift = kit.status("cats")["drift"]
    assert drift["lastError"]["message"] == "result field drift: required when ok is true"
    assert drift.get("detected") is None  # not a NoDrift verdict
    kit.until(
        "a DriftCheckFailed event naming the section",
        lambda: any("result field drift:" in m for m in kit.event_messages("cats", "DriftCheckFailed")),
    )
    assert "NoDrift" not in kit.events("cats")
    # a drifted check, a good candidate, then the package Job reports ok and nothing else
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.95, rev="bbbbbbbb22"))
    kit.finish(kit.wait_job("cats", "package", "cats-package-1"), raw=bare_result("package"))
    status = kit.wait_phase("cats", "Failed")
    assert status["candidate"]["reason"] == "MalformedResult"
    assert status["candidate"]["message"] == "result field package: required when ok is true"
    kit.until(
        "a PackagingFailed event naming the section",
        lambda: any("result field package:" in m for m in kit.event_messages("cats", "PackagingFailed")),
    )
    assert kit.image() == OLD_IMAGE
    # the next retrain's package Job names an image of another repository, pinned and schema-valid
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-3"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-2-0"), train_doc(0.95, rev="cccccccc33"))
    evil = {"step": "package", "ok": True, "package": {"image": f"evil.example/x:1@{DIGEST}", "digest": DIGEST}}
    kit.finish(kit.wait_job("cats", "package", "cats-package-2"), evil)
    kit.until(
        "the retrain's MalformedResult",
        lambda: (
            kit.status("cats")["candidate"].get("retrain") == 2
            and kit.status("cats")["candidate"].get("reason") == "MalformedResult"
        ),
    )
    message = kit.status("cats")["candidate"]["message"]
    assert message.startswith("result field package.image: got 'evil.example/x:1@"), message
    assert kit.image() == OLD_IMAGE and "RolloutStarted" not in kit.events("cats")


def test_new_version_never_ready_is_rolled_back(cluster: Cluster, kit: Kit) -> None:
    cleanup = stall_new_pods(cluster, kit, OLD_IMAGE)
    try:
        kit.apply(ModelDeploymentBuilder("cats").spec(rollout={"progressDeadlineSeconds": 20}).obj())
        kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
        kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev="dddddddd44"))
        kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-dddddddd"))
        kit.until("the image patch", lambda: kit.image().endswith(DIGEST))
        status = kit.wait_phase("cats", "Degraded", timeout=90)
        assert status["candidate"]["outcome"] == "RolledBack"
        assert status["candidate"]["reason"] == "ProgressDeadlineExceeded"
        assert status["model"]["image"] == OLD_IMAGE
        assert kit.image() == OLD_IMAGE
        kit.until(
            "the old version available again",
            lambda: kit.get("deployment", "cats-dogs")["status"].get("availableReplicas") == 1,
        )
        events = kit.until("RolledBack", lambda: (e := kit.events("cats")) and "RolledBack" in e and e)
        assert "RolloutFailed" in events
        assert kit.condition("cats", "RolledOut") == ("False", "RolledBack")
        assert f'modelfreshness_rollbacks_total{{name="cats",namespace="{kit.ns}"}} 1.0' in kit.operator.metrics()
    finally:
        cleanup()


def test_storm_control_consecutive_and_cooldown(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").spec(drift={"consecutive": 2}, policy={"cooldown": "1h"}).obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.until(
        "Suppressed ConsecutiveNotReached",
        lambda: kit.condition("cats", "Suppressed") == ("True", "ConsecutiveNotReached"),
    )
    assert kit.status("cats")["phase"] == "DriftDetected" and kit.jobs("cats", "train") == []
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.5))  # rejected: quick end
    kit.until("the first retrain's end", lambda: kit.status("cats").get("candidate", {}).get("outcome"))
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-3"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-4"), drift_doc(True))
    kit.until("Suppressed Cooldown", lambda: kit.condition("cats", "Suppressed") == ("True", "Cooldown"))
    assert kit.status("cats")["phase"] == "DriftDetected"
    assert kit.jobs("cats", "train") == ["cats-train-1-0"]
    kit.until("a RetrainSuppressed event", lambda: "RetrainSuppressed" in kit.events("cats"))


def test_pause_stops_actions_but_keeps_status(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").paused().candidates({"train.lr": 0.1}, {"train.lr": 0.01}).obj())
    kit.wait_phase("cats", "Paused")
    assert kit.jobs("cats", "drift") == [] and kit.condition("cats", "Ready") == ("False", "Paused")
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", '{"spec": {"paused": false}}')
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.wait_job("cats", "train", "cats-train-1-0")
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", '{"spec": {"paused": true}}')
    kit.wait_phase("cats", "Paused")
    kit.finish("cats-train-1-0", train_doc(0.9))
    # the finished candidate is recorded (status stays fresh) but the next one does not start
    kit.until("the recorded candidate", lambda: kit.status("cats")["candidate"]["runs"][0]["state"] == "Succeeded")
    assert kit.jobs("cats", "train") == ["cats-train-1-0"]
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", '{"spec": {"paused": false}}')
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-1"), train_doc(0.95))
    kit.wait_job("cats", "package", "cats-package-1")
    events = kit.until("the pause events", lambda: (e := kit.events("cats")) and "Resumed" in e and e)
    assert "Paused" in events


def test_delete_collects_jobs_and_leaves_the_deployment(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.wait_job("cats", "train", "cats-train-1-0")
    labels = f'name="cats",namespace="{kit.ns}"'
    # Alert rules use increase(): series without an increment yet must exist at 0.
    assert f'modelfreshness_retrains_total{{{labels},result="failed"}} 0.0' in kit.operator.metrics()
    kit.kubectl("delete", "mdep", "cats", "--wait=true", "--timeout=30s")
    kit.until("the Jobs garbage-collected", lambda: not kit.jobs("cats", "drift") and not kit.jobs("cats", "train"))
    kit.until("the metric series dropped", lambda: labels not in kit.operator.metrics())
    dep = kit.get("deployment", "cats-dogs")
    assert dep and kit.image() == OLD_IMAGE and not dep["metadata"].get("ownerReferences")


def test_a_deployment_without_the_opt_in_label_is_never_patched(kit: Kit) -> None:
    kit.kubectl("label", "deployment", "cats-dogs", "modelfreshness.io/serving-for-")
    generation = kit.get("deployment", "cats-dogs")["metadata"]["generation"]
    kit.apply(ModelDeploymentBuilder("cats").obj())
    # said before any retrain starts
    kit.until("Ready=False ServingNotOptedIn", lambda: kit.condition("cats", "Ready") == ("False", "ServingNotOptedIn"))
    # the whole loop runs up to the rollout, which refuses to patch
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.95))
    kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-0a1b2c3d"))
    status = kit.wait_phase("cats", "Degraded")
    assert status["candidate"]["outcome"] == "RolloutFailed"
    assert status["candidate"]["reason"] == "ServingNotOptedIn"
    assert "add the label modelfreshness.io/serving-for=cats" in status["candidate"]["message"]
    assert kit.condition("cats", "Ready") == ("False", "ServingNotOptedIn")
    dep = kit.get("deployment", "cats-dogs")
    assert kit.image() == OLD_IMAGE and dep["metadata"]["generation"] == generation

    def rollout_failed_messages() -> list[str]:
        out = kit.kubectl(
            "get", "events", "--field-selector", "involvedObject.name=cats,reason=RolloutFailed", "-o", "json"
        )
        return [e["message"] for e in json.loads(out.stdout)["items"]]

    [message] = kit.until("a RolloutFailed event", rollout_failed_messages)
    assert "ServingNotOptedIn" in message and "modelfreshness.io/serving-for=cats" in message
    assert "RolloutStarted" not in kit.events("cats")


def test_the_example_admission_policy_refuses_a_repo_outside_the_allowed_prefix(
    cluster: Cluster, crd: None, prefix: str
) -> None:
    policy, binding = yaml.safe_load_all((REPO / "examples" / "admission-policy.yaml").read_text())
    ns = restricted_namespace(cluster, f"{prefix}-vap-{uuid.uuid4().hex[:5]}")
    # Its own names, bound to this test's namespace only: other tests here use other repositories.
    name = f"{policy['metadata']['name']}-{ns}"
    policy["metadata"]["name"] = binding["metadata"]["name"] = binding["spec"]["policyName"] = name
    binding["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
    example = yaml.safe_load((REPO / "examples" / "modeldeployment.yaml").read_text())
    example["metadata"]["namespace"] = ns

    def dry_run(**spec: Any) -> subprocess.CompletedProcess[str]:
        manifest = {**example, "spec": merge(example["spec"], spec)}
        return cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False)

    try:
        cluster.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})
        )
        evil = {"source": {"repo": "https://git.example.com/acme-evil/cats-dogs.git"}}
        # The API server picks up a new policy within a second or so.
        wait_for("the policy to refuse", lambda: dry_run(**evil).returncode != 0)
        refused = dry_run(**evil)
        assert "ValidatingAdmissionPolicy" in refused.stderr and "spec.source.repo" in refused.stderr, refused.stderr
        image = dry_run(serving={"image": "docker.io/someone/cats-dogs"})
        assert image.returncode != 0 and "spec.serving.image" in image.stderr, image.stderr
        trainer = dry_run(training={"image": "docker.io/someone/trainer:1"})
        assert trainer.returncode != 0 and "spec.training.image" in trainer.stderr, trainer.stderr
        # the example itself is inside the allowed prefixes
        cluster.kubectl("apply", "-f", "-", input=json.dumps(example))
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_restart_in_the_middle_of_training(cluster: Cluster, crd: None, tmp_path: Path) -> None:
    # Its own namespace prefix and operator, so killing it does not disturb the shared one.
    prefix = f"mfr{uuid.uuid4().hex[:4]}"
    ns = restricted_namespace(cluster, f"{prefix}-a")
    op = Operator(cluster, f"{prefix}-*", tmp_path / "operator.log").start()
    kit = Kit(cluster, ns, op)
    try:
        kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
        kit.apply(
            ModelDeploymentBuilder("cats")
            .spec(
                training={"candidates": [{"train.lr": 0.1}, {"train.lr": 0.01}, {"train.lr": 0.001}], "maxParallel": 2}
            )
            .obj()
        )
        kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
        kit.until("two training Jobs", lambda: len(kit.jobs("cats", "train")) == 2)
        op.stop(kill=True)
        kit.finish("cats-train-1-0", train_doc(0.91, rev="eeeeeeee55"))  # finishes while the operator is down
        wait_for(
            "the Job to complete",
            lambda: any(
                c["type"] == "Complete" for c in kit.get("job", "cats-train-1-0")["status"].get("conditions", [])
            ),
        )
        op.start()
        kit.wait_job("cats", "train", "cats-train-1-2")
        assert kit.jobs("cats", "train") == ["cats-train-1-0", "cats-train-1-1", "cats-train-1-2"]
        kit.finish("cats-train-1-1", train_doc(0.92, rev="ffffffff66"))
        op.stop(kill=True)
        op.start()
        kit.finish("cats-train-1-2", train_doc(0.90, rev="1111111177"))
        kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-ffffffff"))
        status = kit.wait_phase("cats", "Monitoring")
        assert status["model"]["version"] == "v1-ffffffff"
        assert kit.jobs("cats", "train") == ["cats-train-1-0", "cats-train-1-1", "cats-train-1-2"]
        assert kit.jobs("cats", "package") == ["cats-package-1"]
    finally:
        op.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_one_loop_at_a_time(kit: Kit) -> None:
    # Issue 19: a cooldown that ends (here: is lowered) while a check runs started a retrain at once;
    # the check, measuring the old model, then drove a second retrain after the first rolled out.
    kit.apply(ModelDeploymentBuilder("cats").spec(policy={"cooldown": "1h"}).obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev="1a1a1a1a11"))
    kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-1a1a1a1a"))
    kit.until("v1 serving", lambda: kit.status("cats").get("model", {}).get("version") == "v1-1a1a1a1a")
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), drift_doc(True))
    kit.until("Suppressed Cooldown", lambda: kit.condition("cats", "Suppressed") == ("True", "Cooldown"))
    kit.wait_job("cats", "drift", "cats-drift-3")
    assert kit.status("cats")["drift"]["jobModel"]["version"] == "v1-1a1a1a1a"
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", '{"spec": {"policy": {"cooldown": "0s"}}}')
    kit.until("Suppressed CheckInFlight", lambda: kit.condition("cats", "Suppressed") == ("True", "CheckInFlight"))
    assert kit.jobs("cats", "train") == ["cats-train-1-0"], "a retrain started while a check ran"
    # the check's verdict decides: one retrain for this episode, measured against the serving model
    kit.finish("cats-drift-3", drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-2-0"), train_doc(0.95, rev="2b2b2b2b22"))
    kit.finish(kit.wait_job("cats", "package", "cats-package-2"), package_doc("v2-2b2b2b2b"))
    kit.until("v2 serving", lambda: kit.status("cats").get("model", {}).get("version") == "v2-2b2b2b2b")
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-4"), drift_doc(False, 0.05))
    status = kit.until("check 4's verdict", lambda: (s := kit.status("cats"))["drift"].get("verdictCheck") == 4 and s)
    assert status["drift"]["model"]["version"] == "v2-2b2b2b2b"
    assert kit.jobs("cats", "train") == ["cats-train-1-0", "cats-train-2-0"]
    # a check whose model is replaced while it runs (here by hand) is discarded, not acted on
    kit.wait_job("cats", "drift", "cats-drift-5")
    kit.kubectl("set", "image", "deployment/cats-dogs", f"server={SERVING_IMAGE}:hotfix")
    kit.until("the outside change", lambda: kit.status("cats").get("model", {}).get("version") == "hotfix")
    kit.finish("cats-drift-5", drift_doc(True, 0.9))
    kit.until("Drifted StaleVerdict", lambda: kit.condition("cats", "Drifted") == ("Unknown", "StaleVerdict"))
    kit.until("a VerdictDiscarded event", lambda: "VerdictDiscarded" in kit.events("cats"))
    assert kit.jobs("cats", "train") == ["cats-train-1-0", "cats-train-2-0"]


def test_a_stuck_step_shows_at_once(kit: Kit) -> None:
    # Issue 19: a training pod Pending on FailedScheduling showed Ready=True Training until the
    # 2h training.timeout. The kwok nodes have 8 GPUs each: 100 can never be scheduled.
    kit.apply(ModelDeploymentBuilder("cats").spec(training={"resources": {"limits": {"nvidia.com/gpu": 100}}}).obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.wait_job("cats", "train", "cats-train-1-0")
    kit.until(
        "StepProgressing=False Unschedulable",
        lambda: kit.condition("cats", "StepProgressing") == ("False", "Unschedulable"),
        timeout=60,
    )
    assert kit.condition("cats", "Ready") == ("False", "Unschedulable")
    ready = next(c for c in kit.status("cats")["conditions"] if c["type"] == "Ready")
    assert "nvidia.com/gpu" in ready["message"] and "spec.training.resources" in ready["message"]
    kit.until("a StepStuck event", lambda: "StepStuck" in kit.events("cats"))
    labels = f'name="cats",namespace="{kit.ns}",reason="Unschedulable"'
    assert f"modelfreshness_step_stuck{{{labels}}} 1.0" in kit.operator.metrics()


def test_setup_problems_hold_the_loop_and_ready_follows_the_world(kit: Kit) -> None:
    # Issue 19: a missing Deployment showed phase Pending with no Event while drift Jobs still
    # started, and Ready kept ServingDeploymentNotFound after the Deployment came back.
    kit.kubectl("delete", "deployment", "cats-dogs")
    kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
    kit.until(
        "Ready=False ServingDeploymentNotFound",
        lambda: kit.condition("cats", "Ready") == ("False", "ServingDeploymentNotFound"),
    )
    kit.until("a ServingDeploymentNotFound event", lambda: "ServingDeploymentNotFound" in kit.events("cats"))
    assert "ServingDeploymentNotFound" in kit.operator.tail(400)
    assert kit.jobs("cats", "drift") == []
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(False, 0.05))
    kit.until("Ready=True", lambda: kit.condition("cats", "Ready") == ("True", "Monitoring"))
    # check-now: a new annotation value asks for a check long before the 1h interval
    kit.kubectl("annotate", "mdep", "cats", "modelfreshness.io/check-now=1", "--overwrite")
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2", timeout=20), drift_doc(True))
    # the serving Deployment vanishes while a retrain packages: the rollout waits for it
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev="3c3c3c3c33"))
    kit.wait_job("cats", "package", "cats-package-1")
    kit.kubectl("delete", "deployment", "cats-dogs")
    kit.finish("cats-package-1", package_doc("v1-3c3c3c3c"))
    kit.until(
        "RollingOut, held by the missing Deployment",
        lambda: (
            kit.status("cats").get("phase") == "RollingOut"
            and kit.condition("cats", "Ready") == ("False", "ServingDeploymentNotFound")
        ),
    )
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    kit.until("the held rollout", lambda: kit.image() == f"{SERVING_IMAGE}:v1-3c3c3c3c@{DIGEST}")
    kit.until("v1 serving", lambda: kit.status("cats").get("model", {}).get("version") == "v1-3c3c3c3c")
    assert kit.condition("cats", "Ready") == ("True", "Monitoring")
    # a wrong container name lists the containers there are
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", '{"spec": {"serving": {"container": "srv"}}}')
    kit.until("ContainerNotFound", lambda: kit.condition("cats", "Ready") == ("False", "ContainerNotFound"))
    ready = next(c for c in kit.status("cats")["conditions"] if c["type"] == "Ready")
    assert "its containers: server" in ready["message"]


def test_two_modeldeployments_on_one_deployment_warn(kit: Kit) -> None:
    kit.apply(ModelDeploymentBuilder("cats").obj())
    kit.until("cats reconciled", lambda: kit.condition("cats", "DeploymentShared") == ("False", "Exclusive"))
    kit.apply(ModelDeploymentBuilder("cats-copy").obj())
    shared = ("True", "SharedServingDeployment")
    kit.until("cats: DeploymentShared", lambda: kit.condition("cats", "DeploymentShared") == shared)
    kit.until("cats-copy: DeploymentShared", lambda: kit.condition("cats-copy", "DeploymentShared") == shared)
    kit.until("a SharedServingDeployment event", lambda: "SharedServingDeployment" in kit.events("cats"))
    kit.kubectl("delete", "mdep", "cats-copy")
    kit.until("the warning cleared", lambda: kit.condition("cats", "DeploymentShared") == ("False", "Exclusive"))


def test_a_step_pod_waiting_on_a_missing_secret_shows_at_once(kit: Kit) -> None:
    # As the kubelet reports it: the container waits with CreateContainerConfigError.
    kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
    kit.wait_job("cats", "drift", "cats-drift-1")
    pod = kit.until(
        "the drift pod running",
        lambda: next(
            (p["metadata"]["name"] for p in kit.items("pods", "job-name=cats-drift-1") if p["status"].get("podIP")),
            None,
        ),
    )
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "git-creds" not found'}
    container = {"name": "main", "image": "x", "imageID": "", "ready": False, "restartCount": 0}
    status = {"status": {"containerStatuses": [{**container, "state": {"waiting": waiting}}]}}
    kit.kubectl("patch", "pod", pod, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    kit.until(
        "StepProgressing=False CreateContainerConfigError",
        lambda: kit.condition("cats", "StepProgressing") == ("False", "CreateContainerConfigError"),
        timeout=60,
    )
    message = next(c for c in kit.status("cats")["conditions"] if c["type"] == "StepProgressing")["message"]
    assert 'secret "git-creds" not found' in message and "credentialsSecret" in message


def test_a_harmless_input_change_is_reported_and_a_costly_one_retrains(kit: Kit) -> None:
    """spec.drift.trigger impact (the default) through the real API server: the signals survive the
    status schema, a distribution change without an accuracy cost is reported, an estimated drop retrains."""
    kit.apply(ModelDeploymentBuilder("cats").obj())
    harmless = drift_doc(True)
    harmless["drift"].update(
        estimatedAccuracy={"value": 0.925, "low": 0.9, "high": 0.95, "reference": 0.933},
        novelty={"share": 0.02, "referenceRate": 0.016, "pValue": 0.4, "detected": False},
        referenceKind="heldOut",
    )
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), harmless)
    kit.until("DistributionDrift True", lambda: kit.condition("cats", "DistributionDrift") == ("True", "InputsChanged"))
    d = kit.status("cats")["drift"]
    assert d["detected"] is False and d["distributionDetected"] is True and d["trigger"] == "impact"
    assert d["estimatedAccuracy"] == {"value": 0.925, "low": 0.9, "high": 0.95, "reference": 0.933, "drop": 0.008}
    assert d["novelty"] == {"share": 0.02, "referenceRate": 0.016, "pValue": 0.4, "detected": False}
    assert d["referenceKind"] == "heldOut" and kit.jobs("cats", "train") == []
    kit.until("a DistributionDrift event", lambda: "DistributionDrift" in kit.events("cats"))
    costly = drift_doc(False)
    costly["drift"]["estimatedAccuracy"] = {"value": 0.8, "low": 0.77, "high": 0.83, "reference": 0.933}
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-2"), costly)
    kit.wait_job("cats", "train", "cats-train-1-0")
    assert kit.status("cats")["drift"]["reasons"] == ["estimated-accuracy"]

"""Faults on the real local control plane (issue 15): the operator killed right after its own
writes, a status write lost after the image patch, and a patch the API refuses for good.

Each test runs its own operator on its own namespace prefix, so killing it disturbs no other test.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from testkit.manifests import DIGEST, SERVING_IMAGE, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.results import drift_doc, package_doc, train_doc
from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.operator.cluster_kit import Kit, Operator, apply_crd, restricted_namespace, stall_new_pods

pytestmark = pytest.mark.cluster
OLD_IMAGE = f"{SERVING_IMAGE}:0.1"


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    apply_crd(cluster)


@pytest.fixture
def own(cluster: Cluster, crd: None, tmp_path: Path) -> Iterator[Kit]:
    """A namespace with its own operator (killed and restarted by the test) and the serving Deployment."""
    prefix = f"mfc{uuid.uuid4().hex[:4]}"
    ns = restricted_namespace(cluster, f"{prefix}-a")
    op = Operator(cluster, f"{prefix}-*", tmp_path / "operator.log").start()
    kit = Kit(cluster, ns, op)
    try:
        yield kit
    finally:
        op.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


class KillOn:
    """SIGKILL the operator on the first watch event that ``hit`` accepts.

    ``kubectl get -w`` prints one line per event (``-o jsonpath``); the operator dies within
    milliseconds of the event, before it can do much more than the write that caused it.
    """

    def __init__(self, kit: Kit, hit: Callable[[str], bool], *watch: str) -> None:
        self.kit, self.hit, self.fired = kit, hit, threading.Event()
        argv = [str(kit.cluster.bin_dir / "kubectl"), *watch, "-w", "-n", kit.ns]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=kit.cluster.env)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if not self.fired.is_set() and self.hit(line.strip()):
                op = self.kit.operator.proc
                if op is not None and op.poll() is None:
                    op.kill()
                self.fired.set()

    def wait(self, what: str, timeout: float = 60) -> None:
        """Wait for the kill, then restart the operator."""
        try:
            wait_for(what, self.fired.is_set, timeout, lambda: "\n".join(self.lines[-10:]) + self.kit.operator.tail())
        finally:
            self.proc.kill()
            self.proc.wait(timeout=10)
        op = self.kit.operator
        assert op.proc is not None
        op.proc.wait(timeout=20)
        op.start()


def image_watch() -> tuple[str, ...]:
    return ("get", "deployment", "cats-dogs", "-o", "jsonpath={.spec.template.spec.containers[0].image}{'\\n'}")


@contextmanager
def policy(cluster: Cluster, ns: str, resource: str, group: str, expression: str, message: str) -> Iterator[str]:
    """A ValidatingAdmissionPolicy (reason Invalid: a 422) on UPDATEs of ``resource`` in ``ns`` only."""
    name = f"chaos-{ns}-{uuid.uuid4().hex[:4]}"
    items = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [group],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": [resource],
                        }
                    ]
                },
                "validations": [{"expression": expression, "message": message, "reason": "Invalid"}],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
            },
        },
    ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    try:
        yield name
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name, check=False)


def to_packaging(kit: Kit, rev: str = "dddddddd44") -> None:
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev=rev))
    kit.wait_job("cats", "package", "cats-package-1")


def status_write_refused(kit: Kit) -> bool:
    """True once the policy refuses a status carrying rolloutStartedAt (server-side dry run)."""
    patch = {"status": {"candidate": {"retrain": 9, "rolloutStartedAt": "2020-01-01T00:00:00Z"}}}
    out = kit.kubectl(
        "patch",
        "mdep",
        "cats",
        "--subresource=status",
        "--type=merge",
        "--dry-run=server",
        "-p",
        json.dumps(patch),
        check=False,
    )
    return out.returncode != 0 and "chaos" in out.stderr


def test_status_lost_after_the_patch_then_a_kill_rolls_back_to_the_original_image(cluster: Cluster, own: Kit) -> None:
    """Issue 15, fault 1: the status write after the image patch is lost (refused here, so it is
    lost every time), the operator is killed when the new image reaches the Deployment and
    restarted; the rollout then stalls. The rollback must restore the original image, and the
    operator's own patch must not read as ServingImageChanged."""
    kit = own
    cleanup = stall_new_pods(cluster, kit, OLD_IMAGE)
    try:
        kit.apply(ModelDeploymentBuilder("cats").spec(rollout={"progressDeadlineSeconds": 20}).obj())
        to_packaging(kit)
        expression = "!has(object.status.candidate) || !has(object.status.candidate.rolloutStartedAt)"
        with policy(cluster, kit.ns, "modeldeployments/status", "modelfreshness.io", expression, "chaos: write lost"):
            wait_for("the policy to refuse", lambda: status_write_refused(kit))
            killer = KillOn(kit, lambda line: line.endswith(DIGEST), *image_watch())
            kit.finish("cats-package-1", package_doc("v1-dddddddd"))
            wait_for("the operator killed on the new image", killer.fired.is_set, 60, kit.operator.tail)
        killer.wait("the restart")
        status = kit.wait_phase("cats", "Degraded", timeout=120)
        assert status["candidate"]["outcome"] == "RolledBack", status["candidate"]
        assert status["candidate"]["previousImage"] == OLD_IMAGE
        assert kit.image() == OLD_IMAGE
        assert status["model"]["image"] == OLD_IMAGE
        assert "ServingImageChanged" not in kit.events("cats")
        assert kit.jobs("cats", "package") == ["cats-package-1"]
    finally:
        cleanup()


def test_a_patch_the_api_refuses_fails_the_rollout_visibly_and_is_not_retried(cluster: Cluster, own: Kit) -> None:
    """Issue 15, fault 2: the Deployment patch gets a 422 (an admission policy here). The rollout
    fails with the API's message in status, condition and Event; no endless retry in Packaging."""
    kit = own
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    kit.apply(ModelDeploymentBuilder("cats").obj())
    to_packaging(kit, rev="abababab12")
    expression = "object.spec.template.spec.containers.all(c, !c.image.contains('@sha256:'))"
    message = "spec.template.spec.containers[0].image: images pinned by digest are not allowed here"
    with policy(cluster, kit.ns, "deployments", "apps", expression, message):
        probe = ServingDeploymentBuilder("cats-dogs").image(f"{OLD_IMAGE}@{DIGEST}").obj()
        wait_for(
            "the policy to refuse",
            lambda: (
                kit.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False).returncode
            ),
        )
        kit.finish("cats-package-1", package_doc("v1-abababab"))
        status = kit.wait_phase("cats", "Degraded", timeout=60)
        candidate = status["candidate"]
        assert (candidate["outcome"], candidate["reason"]) == ("RolloutFailed", "PatchRefused")
        assert f"Deployment {kit.ns}/cats-dogs: 422 Invalid" in candidate["message"], candidate["message"]
        assert "spec.template.spec.containers[0].image" in candidate["message"]
        assert kit.image() == OLD_IMAGE
        assert kit.condition("cats", "RolledOut") == ("False", "RolloutFailed")
        assert kit.condition("cats", "Ready")[0] == "False"
        failed = kit.until("the RolloutFailed Event", lambda: kit.event_messages("cats", "RolloutFailed"))
        assert any("spec.template.spec.containers[0].image" in m for m in failed), failed
        # Refused once, not retried: the log has one refusal and no backoff for it.
        log = kit.operator.log.read_text()
        assert log.count("refused for good") == 1, kit.operator.tail()
        assert "reconcile failed" not in log, kit.operator.tail()
    # Every condition carries the generation the operator last saw, RolledOut included.
    kit.kubectl("patch", "mdep", "cats", "--type=merge", "-p", json.dumps({"spec": {"drift": {"interval": "3s"}}}))

    def stamped() -> bool:
        body = kit.get("mdep", "cats")
        generation = body["metadata"]["generation"]
        conditions = body.get("status", {}).get("conditions") or []
        return body["status"].get("observedGeneration") == generation and all(
            c.get("observedGeneration") == generation for c in conditions
        )

    kit.until("every condition at the new generation", stamped)


def test_killed_on_the_watch_event_of_each_of_its_own_writes(cluster: Cluster, own: Kit) -> None:
    """Issue 15, part 5: SIGKILL on the event of a Job created, a status written, the image patched
    and the rollback patched, a restart each time; the loop ends rolled back to the original image,
    with no duplicate Job and no ServingImageChanged."""
    kit = own
    cleanup = stall_new_pods(cluster, kit, OLD_IMAGE)
    try:
        jobs = ("get", "jobs", "-o", "jsonpath={.metadata.name}{'\\n'}")
        killer = KillOn(kit, lambda line: line == "cats-drift-1", *jobs)
        kit.apply(ModelDeploymentBuilder("cats").interval("1h").spec(rollout={"progressDeadlineSeconds": 20}).obj())
        killer.wait("a kill on the drift Job's creation")
        phases = ("get", "mdep", "cats", "-o", "jsonpath={.status.phase}{'\\n'}")
        killer = KillOn(kit, lambda line: line == "Training", *phases)
        kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
        killer.wait("a kill on the status write that starts training")
        kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev="cccccccc33"))
        kit.wait_job("cats", "package", "cats-package-1")
        killer = KillOn(kit, lambda line: line.endswith(DIGEST), *image_watch())
        kit.finish("cats-package-1", package_doc("v1-cccccccc"))
        killer.wait("a kill on the image patch")
        killer = KillOn(kit, lambda line: line == OLD_IMAGE, *image_watch())
        killer.wait("a kill on the rollback patch", timeout=90)
        status = kit.wait_phase("cats", "Degraded", timeout=60)
        assert (status["candidate"]["outcome"], status["candidate"]["reason"]) == (
            "RolledBack",
            "ProgressDeadlineExceeded",
        )
        assert kit.image() == OLD_IMAGE and status["model"]["image"] == OLD_IMAGE
        assert kit.jobs("cats", "drift") == ["cats-drift-1"]
        assert kit.jobs("cats", "train") == ["cats-train-1-0"]
        assert kit.jobs("cats", "package") == ["cats-package-1"]
        events = kit.events("cats")
        assert "ServingImageChanged" not in events, events
        assert events.count("RolledBack") <= 1 and events.count("RolloutStarted") <= 1, events
    finally:
        cleanup()


class Annotator:
    """Annotates the ModelDeployment back to back (a few ms apart): each status write of the operator
    races a new resourceVersion and may get a 409 Conflict (the issue's second way to lose it)."""

    def __init__(self, kit: Kit, name: str, every: float = 0.005) -> None:
        api = k8s_client.CustomObjectsApi(k8s_config.new_client_from_config(config_file=str(kit.cluster.kubeconfig)))
        self.api, self.kit, self.name, self.every = api, kit, name, every
        self.stop, self.count = threading.Event(), 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            body = {"metadata": {"annotations": {"chaos.example/tick": str(self.count)}}}
            self.api.patch_namespaced_custom_object(
                "modelfreshness.io", "v1alpha1", self.kit.ns, "modeldeployments", self.name, body
            )
            self.count += 1

    def close(self) -> int:
        self.stop.set()
        self.thread.join(timeout=10)
        return self.count


def test_a_loop_under_a_stream_of_conflicting_annotations(cluster: Cluster, own: Kit) -> None:
    """Issue 15, part 5: conflicts on every write during every phase; the loop still completes once."""
    kit = own
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
    kit.wait_job("cats", "drift", "cats-drift-1")
    annotator = Annotator(kit, "cats")
    try:
        kit.finish("cats-drift-1", drift_doc(True))
        kit.finish(kit.wait_job("cats", "train", "cats-train-1-0"), train_doc(0.93, rev="eeeeeeee55"))
        kit.finish(kit.wait_job("cats", "package", "cats-package-1"), package_doc("v1-eeeeeeee"))
        status = kit.wait_phase("cats", "Monitoring", timeout=90)
    finally:
        ticks = annotator.close()
    assert ticks > 20, ticks  # the annotations ran through the loop (each patch takes tens of ms here)
    assert status["model"]["image"] == f"{SERVING_IMAGE}:v1-eeeeeeee@{DIGEST}" == kit.image()
    assert status["history"][0]["image"] == OLD_IMAGE
    assert (kit.jobs("cats", "drift"), kit.jobs("cats", "train")) == (["cats-drift-1"], ["cats-train-1-0"])
    assert kit.jobs("cats", "package") == ["cats-package-1"]
    events = kit.events("cats")
    assert "ServingImageChanged" not in events and events.count("RolledOut") <= 1, events


def test_the_api_server_and_etcd_restart_mid_retrain(cluster: Cluster, own: Kit) -> None:
    """Issue 15, part 5: etcd and the API server stop and start again while a candidate trains;
    the operator (its own client and kopf's watches) reconnects and the loop completes once."""
    if cluster.restart is None:
        pytest.skip("needs the suite's own local control plane (MODELFRESHNESS_USE_EXISTING_CLUSTER is set)")
    kit = own
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
    kit.finish(kit.wait_job("cats", "drift", "cats-drift-1"), drift_doc(True))
    kit.wait_job("cats", "train", "cats-train-1-0")
    cluster.restart(("etcd", "kube-apiserver"))
    kit.finish("cats-train-1-0", train_doc(0.93, rev="ffffffff77"), timeout=90)
    kit.finish(kit.wait_job("cats", "package", "cats-package-1", timeout=90), package_doc("v1-ffffffff"))
    status = kit.wait_phase("cats", "Monitoring", timeout=90)
    assert status["model"]["image"] == f"{SERVING_IMAGE}:v1-ffffffff@{DIGEST}" == kit.image()
    assert (kit.jobs("cats", "train"), kit.jobs("cats", "package")) == (["cats-train-1-0"], ["cats-package-1"])
    assert "ServingImageChanged" not in kit.events("cats")

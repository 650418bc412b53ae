"""Two operator processes with leader election on the real local control plane (issue 15, part 4):
the standby does nothing while the other leads; ``kill -9`` of the leader on the watch event of its
own writes (a drift Job created, the image patched) hands the loop to the standby, which completes
it with no duplicate Job and no second patch; a clean stop hands over at once; a frozen leader
that wakes up after losing the Lease sends nothing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.manifests import DIGEST, SERVING_IMAGE, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.results import drift_doc, package_doc, train_doc
from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.operator.cluster_kit import Kit, Operator, apply_crd, restricted_namespace
from tests.operator.test_chaos import KillOn, image_watch

pytestmark = pytest.mark.cluster
OLD_IMAGE = f"{SERVING_IMAGE}:0.1"
LEASE = "mf-leader"
# Generous for a loaded 2-core machine (a renew must land within RENEW_DEADLINE); the chart uses 15/10/2.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 10, 7, 1
ACTION = re.compile(r": Job \S+ (created|exists already)|: (rolling out|restoring) image|: deleting old Job")


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> None:
    apply_crd(cluster)


class Pair:
    """Operators ``a`` and ``b`` in one namespace, competing for the Lease there."""

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        prefix = f"mfl{uuid.uuid4().hex[:4]}"
        self.ns = restricted_namespace(cluster, f"{prefix}-a")
        self.cluster = cluster
        self.ops = {who: self._operator(cluster, f"{prefix}-*", tmp, who) for who in ("a", "b")}

    def _operator(self, cluster: Cluster, namespaces: str, tmp: Path, who: str) -> Operator:
        election = {
            "FRESHNESS_LEADER_ELECTION": "true",
            "FRESHNESS_LEASE_NAME": LEASE,
            "FRESHNESS_LEASE_NAMESPACE": self.ns,
            "FRESHNESS_LEADER_IDENTITY": f"op-{who}",
            "FRESHNESS_LEASE_DURATION": str(LEASE_DURATION),
            "FRESHNESS_RENEW_DEADLINE": str(RENEW_DEADLINE),
            "FRESHNESS_RETRY_PERIOD": str(RETRY_PERIOD),
        }
        return Operator(cluster, namespaces, tmp / f"operator-{who}.log", extra_env=election)

    def holder(self) -> str:
        out = self.cluster.kubectl(
            "get", "lease", LEASE, "-n", self.ns, "-o", "jsonpath={.spec.holderIdentity}", check=False
        )
        return out.stdout.strip().removeprefix("op-") if out.returncode == 0 else ""

    def transitions(self) -> int:
        out = self.cluster.kubectl("get", "lease", LEASE, "-n", self.ns, "-o", "jsonpath={.spec.leaseTransitions}")
        return int(out.stdout.strip() or 0)

    def wait_holder(self, who: str, timeout: float = 90) -> float:
        start = time.monotonic()
        wait_for(f"op-{who} to hold the Lease", lambda: self.holder() == who, timeout, self.tails)
        return time.monotonic() - start

    def tails(self) -> str:
        return "\n".join(f"[{who}] {op.tail(30)}" for who, op in self.ops.items())

    def close(self) -> None:
        for op in self.ops.values():
            op.stop()
        self.cluster.kubectl("delete", "namespace", self.ns, "--wait=false", check=False)


@pytest.fixture
def pair(cluster: Cluster, crd: None, tmp_path: Path) -> Iterator[Pair]:
    p = Pair(cluster, tmp_path)
    try:
        yield p
    finally:
        p.close()


class Recorder:
    """``kubectl get -w`` lines, as they come (a change the watch saw is a change that happened)."""

    def __init__(self, kit: Kit, *watch: str) -> None:
        argv = [str(kit.cluster.bin_dir / "kubectl"), *watch, "-w", "-n", kit.ns]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=kit.cluster.env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def changes(self) -> list[str]:
        """Consecutive distinct values."""
        out: list[str] = []
        for line in self.lines:
            if line and (not out or out[-1] != line):
                out.append(line)
        return out

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def acting_violations(log: str) -> list[str]:
    """Action lines a process logged while it did not hold the Lease (each start begins as standby)."""
    acting, wrong = False, []
    for line in log.splitlines():
        if "campaigning for Lease" in line or "stops acting" in line:
            acting = False
        elif "acquired Lease" in line:
            acting = True
        elif ACTION.search(line) and not acting:
            wrong.append(line)
    return wrong


def kill_leader_on(kit: Kit, pair: Pair, leader: str, target: str, *watch: str) -> tuple[KillOn, list[float]]:
    """SIGKILL ``leader`` on the first watch line ending with ``target``; the list gets the kill's time."""
    kit.operator = pair.ops[leader]
    when: list[float] = []

    def hit(line: str) -> bool:
        if line.endswith(target):
            when.append(time.monotonic())
            return True
        return False

    return KillOn(kit, hit, *watch), when


def test_kill_9_of_the_leader_hands_the_loop_to_the_standby_without_duplicates(cluster: Cluster, pair: Pair) -> None:
    a, b = pair.ops["a"], pair.ops["b"]
    a.start()
    pair.wait_holder("a")
    b.start()  # the standby: watches, reconciles nothing
    kit = Kit(cluster, pair.ns, a)
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    images = Recorder(kit, *image_watch())
    try:
        # 1. a creates the first drift Job and is killed on its watch event; b takes over.
        jobs = ("get", "jobs", "-o", "jsonpath={.metadata.name}{'\\n'}")
        killer, killed = kill_leader_on(kit, pair, "a", "cats-drift-1", *jobs)
        kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
        wait_for("a killed on its drift Job", killer.fired.is_set, 90, pair.tails)
        pair.wait_holder("b")
        failover = time.monotonic() - killed[0]
        killer.wait("a restarted as the standby")
        kit.operator = b
        kit.finish(kit.wait_job("cats", "drift", "cats-drift-1", timeout=90), drift_doc(True))
        kit.finish(kit.wait_job("cats", "train", "cats-train-1-0", timeout=90), train_doc(0.93, rev="abcdabcd12"))
        kit.wait_job("cats", "package", "cats-package-1", timeout=90)
        # 2. b patches the image and is killed on its watch event; a (restarted, standby) takes over.
        killer, killed = kill_leader_on(kit, pair, "b", DIGEST, *image_watch())
        kit.finish("cats-package-1", package_doc("v1-abcdabcd"))
        wait_for("b killed on its image patch", killer.fired.is_set, 90, pair.tails)
        pair.wait_holder("a")
        second = time.monotonic() - killed[0]
        killer.wait("b restarted as the standby")
        kit.operator = a
        status = kit.wait_phase("cats", "Monitoring", timeout=120)
    finally:
        images.close()
    new_image = f"{SERVING_IMAGE}:v1-abcdabcd@{DIGEST}"
    assert status["model"]["image"] == new_image == kit.image()
    # No duplicate Job: one per name and one per check or retrain number.
    assert (kit.jobs("cats", "drift"), kit.jobs("cats", "train")) == (["cats-drift-1"], ["cats-train-1-0"])
    assert kit.jobs("cats", "package") == ["cats-package-1"]
    assert len(kit.items("jobs", "modelfreshness.io/check=1")) == 1
    # No double patch: the image changed once, and the Deployment has two revisions (a rollback and
    # a new rollout would make more).
    assert images.changes() == [OLD_IMAGE, new_image], images.lines
    revision = kit.get("deployment", "cats-dogs")["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert revision == "2"
    events = kit.events("cats")
    assert "ServingImageChanged" not in events and events.count("RolledOut") == 1, events
    # The standby never acted: no action line from a process while it did not hold the Lease.
    for who, op in pair.ops.items():
        assert not acting_violations(op.log.read_text()), (who, acting_violations(op.log.read_text()))
    assert pair.transitions() == 2, "the Lease changed hands more often than it was killed"
    # Not taken early: the standby waited out the lease it last saw renewed (at most a retry before the kill).
    for took in (failover, second):
        assert LEASE_DURATION - 2 * RETRY_PERIOD <= took < LEASE_DURATION + 30, (failover, second)
    # 3. A clean stop (SIGTERM, as in an upgrade) releases the Lease: b takes over at its next try.
    a.stop()
    handover = pair.wait_holder("b", timeout=30)
    assert handover < LEASE_DURATION - RETRY_PERIOD, handover
    assert "released Lease" in a.log.read_text()


def test_a_paused_leader_that_resumes_without_the_lease_sends_nothing(cluster: Cluster, pair: Pair) -> None:
    """The split-brain case: the leader is frozen (SIGSTOP, as a long GC pause or a stalled node
    would), the standby takes the Lease and goes on; when the old leader wakes up, its queued watch
    events kick its runner, but its renew deadline has passed: it stops acting and writes nothing."""
    a, b = pair.ops["a"], pair.ops["b"]
    a.start()
    pair.wait_holder("a")
    b.start()
    kit = Kit(cluster, pair.ns, b)
    kit.apply(ServingDeploymentBuilder("cats-dogs").image(OLD_IMAGE).obj())
    images = Recorder(kit, *image_watch())
    assert a.proc is not None
    try:
        kit.apply(ModelDeploymentBuilder("cats").interval("1h").obj())
        kit.wait_job("cats", "drift", "cats-drift-1", timeout=90)
        os.kill(a.proc.pid, signal.SIGSTOP)
        frozen = True
        kit.finish("cats-drift-1", drift_doc(True))
        pair.wait_holder("b")
        kit.finish(kit.wait_job("cats", "train", "cats-train-1-0", timeout=90), train_doc(0.93, rev="dcbadcba21"))
        kit.wait_job("cats", "package", "cats-package-1", timeout=90)
        before = len(a.log.read_text().splitlines())
        os.kill(a.proc.pid, signal.SIGCONT)
        frozen = False
        wait_for("a to stop acting", lambda: "stops acting" in a.log.read_text(), 60, pair.tails)
        kit.finish("cats-package-1", package_doc("v1-dcbadcba"))
        status = kit.wait_phase("cats", "Monitoring", timeout=120)
    finally:
        if frozen:
            os.kill(a.proc.pid, signal.SIGCONT)
        images.close()
    after = a.log.read_text().splitlines()[before:]
    assert not [line for line in after if ACTION.search(line)], "\n".join(after)
    assert any("stops acting" in line for line in after), "\n".join(after)
    new_image = f"{SERVING_IMAGE}:v1-dcbadcba@{DIGEST}"
    assert status["model"]["image"] == new_image == kit.image()
    assert images.changes() == [OLD_IMAGE, new_image], images.lines
    assert (kit.jobs("cats", "drift"), kit.jobs("cats", "train")) == (["cats-drift-1"], ["cats-train-1-0"])
    assert kit.jobs("cats", "package") == ["cats-package-1"]
    assert pair.holder() == "b" and pair.transitions() == 1
    assert "ServingImageChanged" not in kit.events("cats")

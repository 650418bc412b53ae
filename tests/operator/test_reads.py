"""Reads from the watches, against the real local control plane: what a drift check costs in API
requests (the API server's own count, by a FlowSchema per verb for the operator's ServiceAccount,
as benchmarks/scale/ counts them), and a restart that finds Jobs running and starts none again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import Api, Completer, Identity, delete_identity, diff, make_identity, request_counts
from benchmarks.common import drift_doc as no_drift_doc
from testkit.manifests import SERVING_IMAGE, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.results import drift_doc
from tests.conftest import Cluster
from tests.operator.cluster_kit import Kit, Operator, apply_crd, restricted_namespace

pytestmark = pytest.mark.cluster
NAMES = ("cats", "dogs", "owls")
MAX_REQUESTS_PER_CHECK = 5


@dataclass
class Setting:
    cluster: Cluster
    api: Api
    ident: Identity
    kit: Kit
    logs: Path

    def operator(self, log: str) -> Operator:
        op = Operator(self.cluster, self.kit.ns, self.logs / log, extra_env={"KUBECONFIG": str(self.ident.kubeconfig)})
        self.kit.operator = op
        return op

    def requests(self, before: dict[str, float]) -> dict[str, float]:
        """The operator's requests by verb since ``before``, as the API server counted them."""
        return {verb: n for verb, n in self.ident.requests(diff(request_counts(self.api), before)).items() if n}

    def sequences(self) -> dict[str, int]:
        return {name: int((self.kit.status(name).get("drift") or {}).get("sequence") or 0) for name in NAMES}

    def drift_jobs(self) -> dict[str, str]:
        jobs = self.kit.items("jobs", "modelfreshness.io/step=drift")
        return {j["metadata"]["name"]: j["metadata"]["uid"] for j in jobs}


@pytest.fixture
def setting(cluster: Cluster, tmp_path: Path) -> Iterator[Setting]:
    apply_crd(cluster)
    ns = restricted_namespace(cluster, f"mfr{uuid.uuid4().hex[:6]}")
    api = Api(cluster.kubeconfig)
    ident = make_identity(api, ns, "operator", tmp_path)
    kit = Kit(cluster, ns, Operator(cluster, ns, tmp_path / "unused.log"))
    for name in NAMES:
        kit.apply(ServingDeploymentBuilder(f"{name}-serving").image(f"{SERVING_IMAGE}:0.1").serving_for(name).obj())
    try:
        yield Setting(cluster, api, ident, kit, tmp_path)
    finally:
        kit.operator.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false")
        delete_identity(api, ident)


def spec(name: str, interval: str) -> dict[str, Any]:
    return ModelDeploymentBuilder(name).serving(f"{name}-serving").interval(interval).obj()


def test_a_drift_check_costs_at_most_five_api_requests(setting: Setting) -> None:
    """Each check: create its Job, write the status twice (started, verdict), delete the oldest Job.
    The Jobs, pods, Deployment and the object itself are read from the watches; a GET or LIST per
    reconcile (about 20 requests per check before) fails this."""
    kit = setting.kit
    op = setting.operator("operator.log").start()
    completer = Completer(setting.api, kit.ns, lambda pod: no_drift_doc(False)).start()
    try:
        for name in NAMES:
            kit.apply(spec(name, "3s"))
        # Past the warm-up: every object has checked often enough that old Jobs are pruned too.
        kit.until("four checks of every object", lambda: min(setting.sequences().values()) >= 5, 180)
        before, seq0 = request_counts(setting.api), setting.sequences()
        time.sleep(30)
        made, seq1 = setting.requests(before), setting.sequences()
    finally:
        completer.stop()
    checks = sum(seq1[n] - seq0[n] for n in NAMES)
    total = sum(made.values())
    per_check = total / max(checks, 1)
    print(f"{checks} drift checks, {total:.0f} API requests by the operator {made}: {per_check:.2f} per check")
    assert not completer.errors, completer.errors
    assert checks >= 9, f"only {checks} checks in 30 s: the loop stalled\n{op.tail()}"
    assert made.get("get", 0) + made.get("list", 0) <= checks * 0.2, f"reads went to the API: {made}"
    assert total <= MAX_REQUESTS_PER_CHECK * checks, f"{total / checks:.2f} requests per check: {made}"


def test_a_restart_with_jobs_running_starts_no_job_again_and_writes_nothing(setting: Setting) -> None:
    """The first reconciles after a start see every Job already there (kopf fills the indexes from
    each watch's LIST before any handler runs): nothing is created, the status is not rewritten, and
    the running checks are then followed to their verdicts by the new process."""
    kit = setting.kit
    first = setting.operator("operator-1.log").start()
    for name in NAMES:
        kit.apply(spec(name, "1h"))
    kit.until("check 1 of every object in its status", lambda: set(setting.sequences().values()) == {1})
    for name in NAMES:
        kit.wait_job(name, "drift", f"{name}-drift-1")
    jobs = setting.drift_jobs()
    versions = {name: kit.get("mdep", name)["metadata"]["resourceVersion"] for name in NAMES}
    first.stop(kill=True)

    before, started = request_counts(setting.api), time.monotonic()
    second = setting.operator("operator-2.log").start()
    time.sleep(10)  # every object reconciled (its events came with the initial LISTs) and quiet again
    made = setting.requests(before)
    print(f"restart: ready after {time.monotonic() - started - 10:.1f}s; requests in the first 10 s: {made}")
    assert setting.drift_jobs() == jobs, f"Jobs changed across the restart\n{second.tail()}"
    assert {n: kit.get("mdep", n)["metadata"]["resourceVersion"] for n in NAMES} == versions, second.tail()
    assert made.get("create", 0) == 0 and made.get("update", 0) == 0, made

    for name in NAMES:
        kit.finish(f"{name}-drift-1", drift_doc(False))

    def verdicts() -> bool:
        return all((kit.status(n).get("drift") or {}).get("detected") is False for n in NAMES)

    kit.until("every verdict recorded by the restarted operator", verdicts)
    assert setting.drift_jobs() == jobs  # nothing started again after the verdicts (next check in 1h)

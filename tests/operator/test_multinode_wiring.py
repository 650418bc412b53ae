"""A multi-node candidate through the wiring: its headless Service before its Job, and gone with it."""

from __future__ import annotations

import asyncio
import copy

from freshness_operator import reconcile
from freshness_operator.core import actions as act
from freshness_operator.core.owner import Owner
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile import Deps
from freshness_operator.settings import Settings

from tests.operator.sim import BASE_SPEC, make_spec
from tests.operator.test_wiring import FakeKube

OWNER = Owner("cats", "ml", "u1")


def send(kube: FakeKube, nodes: int, action: act.Action) -> None:
    deps = Deps(kube=kube, settings=Settings(), metrics=Metrics(), cache=kube.cache())
    spec = make_spec(training={"nodes": nodes})
    asyncio.run(reconcile._send(deps, OWNER, spec, action, "test"))


def test_the_service_is_created_first_and_deleted_with_the_train_job() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    send(kube, 2, act.CreateTrainJob("cats-train-3-0", 3, 0, {}))
    assert kube.calls == [("create_service", "cats-train-3-0"), ("create_job", "cats-train-3-0")]
    send(kube, 2, act.DeleteJob("cats-train-3-0"))
    send(kube, 2, act.DeleteJob("cats-drift-9"))  # drift Jobs never have one: no extra request
    assert kube.calls[2:] == [("delete_job", "cats-train-3-0"), ("delete_service", "cats-train-3-0"),
                              ("delete_job", "cats-drift-9")]


def test_a_one_pod_candidate_gets_no_service() -> None:
    kube = FakeKube(copy.deepcopy(BASE_SPEC))
    send(kube, 1, act.CreateTrainJob("cats-train-3-0", 3, 0, {}))
    assert kube.calls == [("create_job", "cats-train-3-0")]

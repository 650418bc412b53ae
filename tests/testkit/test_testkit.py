"""The test kit's pure parts: builders give objects the CRD accepts, fake results pass the contract,
the pod patch ends a pod as the kubelet would, and ``wait_for`` fails naming what it waited for."""

from __future__ import annotations

import math
import socket
from typing import Any

import freshness_contract as contract
import jsonschema
import pytest
import yaml

from testkit.labels import SERVING_FOR
from testkit.manifests import CRD, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.net import free_port
from testkit.pods import termination_patch
from testkit.results import bare_result, drift_doc, package_doc, train_doc
from testkit.wait import WaitTimeout, wait_for


def spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_model_deployments_from_the_builder_match_the_crd_schema() -> None:
    schema = spec_schema()
    plain = ModelDeploymentBuilder("cats").obj()
    varied = (
        ModelDeploymentBuilder("dogs")
        .namespace("ml")
        .serving("dogs-serving")
        .interval("1h")
        .cooldown("10m")
        .max_retrains_per_day(3)
        .candidates({"train.lr": 0.1}, {})
        .paused()
        .obj()
    )
    for obj in (plain, varied):
        jsonschema.validate(obj["spec"], schema)
    assert varied["metadata"] == {"name": "dogs", "namespace": "ml"}
    assert varied["spec"]["serving"] == {**plain["spec"]["serving"], "deployment": "dogs-serving"}
    assert varied["spec"]["training"]["candidates"] == [{"train.lr": 0.1}, {}]
    assert varied["spec"]["policy"] == {"cooldown": "10m", "maxRetrainsPerDay": 3}


def test_a_field_the_crd_refuses_is_caught_by_the_schema() -> None:
    """The schema check above can fail: a builder object with a wrong type is refused."""
    bad = ModelDeploymentBuilder("cats").spec(training={"maxParallel": "two"}).obj()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad["spec"], spec_schema())


def test_obj_returns_independent_copies() -> None:
    builder = ModelDeploymentBuilder("cats")
    first = builder.obj()
    first["spec"]["drift"]["interval"] = "9h"
    assert builder.obj()["spec"]["drift"]["interval"] == "2s"
    assert "serving" not in builder.without("serving").obj()["spec"]


def test_serving_deployment_opts_in_with_the_operators_label() -> None:
    dep = ServingDeploymentBuilder("web").image("r/x:1").replicas(3).rolling(1, 0).priority_class("p").obj()
    assert dep["metadata"]["labels"] == {SERVING_FOR: "cats"}
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1,
        "maxUnavailable": 0,
    }
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "r/x:1" and pod["priorityClassName"] == "p"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert ServingDeploymentBuilder("web").serving_for(None).obj()["metadata"]["labels"] == {}


def test_fake_results_are_what_the_contract_reads() -> None:
    assert contract.parse(contract.encode(drift_doc(True))).drift.detected is True
    assert contract.parse(contract.encode(drift_doc(False))).drift.share == 0.05
    train = contract.parse(contract.encode(train_doc(0.91, rev="abcdef1234")))
    assert train.train is not None and train.train.rev == "abcdef1234"
    package = contract.parse(contract.encode(package_doc("v2")))
    assert package.package is not None and package.package.image.startswith("registry.example/cats-dogs:v2@sha256:")
    with pytest.raises(contract.ResultError):
        contract.parse(bare_result("drift"))


def test_a_fake_result_the_contract_refuses_fails_where_it_is_built() -> None:
    with pytest.raises(contract.ResultError, match="NaN"):
        drift_doc(True, share=math.nan)


def test_termination_patch_ends_the_pod_like_the_kubelet() -> None:
    ok = termination_patch("{}", container="main", image="t:1", now=0)
    status = ok["status"]["containerStatuses"][0]
    assert ok["status"]["phase"] == "Succeeded" and status["name"] == "main" and status["image"] == "t:1"
    assert status["state"]["terminated"] == {
        "exitCode": 0,
        "reason": "Completed",
        "startedAt": "1970-01-01T00:00:00Z",
        "finishedAt": "1970-01-01T00:00:00Z",
        "message": "{}",
    }
    failed = termination_patch(None, exit_code=3)
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert failed["status"]["phase"] == "Failed" and terminated["reason"] == "Error" and "message" not in terminated


def test_wait_for_returns_the_first_truthy_value_and_names_what_timed_out() -> None:
    answers = iter([None, 0, "ready"])
    assert wait_for("an answer", lambda: next(answers), timeout=5, every=0.01) == "ready"
    with pytest.raises(WaitTimeout, match=r"waiting for the moon\nlog tail") as err:
        wait_for("the moon", lambda: False, timeout=0.05, context=lambda: "log tail", every=0.01)
    assert isinstance(err.value, AssertionError) and isinstance(err.value, TimeoutError)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))

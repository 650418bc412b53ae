"""The step Job builders and the Deployment patch: shapes, arguments, labels, security."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from freshness_operator import builders, labels
from freshness_operator.core.actions import CreateDriftJob, CreatePackageJob, CreateTrainJob
from freshness_operator.core.owner import Owner

from tests.operator.sim import make_spec

OWNER = Owner(name="cats", namespace="ml", uid="1234-5678")
IMAGE = "registry.example/freshness-trainer:0.1"


def jobs() -> dict[str, dict[str, Any]]:
    spec = make_spec(
        source={"credentialsSecret": "git-creds"},
        drift={"reportDir": "s3://reports/", "accuracyDrop": 0.1, "resources": {"limits": {"cpu": "2"}},
               "window": "24h", "newest": 500},
        training={
            "resources": {"limits": {"nvidia.com/gpu": 1}},
            "nodeSelector": {"gpu": "h100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "timeout": "2h",
            "backoffLimit": 1,
            "remote": "s3://dvc-remote",
        },
        package={"baseImage": "python:3.11-slim"},
        env=[{"name": "AWS_REGION", "value": "eu-west-1"}],
    )
    overrides = {"train.num_classes": 3, "train.lr": 1e-05, "train.pretrained": True, "train.name": "alex"}
    return {
        "drift": builders.drift_job(OWNER, spec, CreateDriftJob("cats-drift-4", 4, "s3://m/0.1.pt"), IMAGE),
        "train": builders.train_job(
            OWNER, spec, CreateTrainJob("cats-train-2-1", 2, 1, overrides, "s3://m/0.1.pt"), IMAGE
        ),
        "package": builders.package_job(
            OWNER, spec, CreatePackageJob("cats-package-2", 2, "s3://m/v2.pt", "registry.example/cats:v2"), IMAGE
        ),
    }


@pytest.mark.parametrize("step", ["drift", "train", "package"])
def test_job_is_a_valid_batch_v1_job(step: str) -> None:
    kubernetes_validate.validate(jobs()[step], "1.34.0", strict=True)


@pytest.mark.parametrize("step", ["drift", "train", "package"])
def test_job_meets_the_restricted_pod_security_level(step: str) -> None:
    pod = jobs()[step]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", container["workingDir"]} <= mounts


@pytest.mark.parametrize("step", ["drift", "train", "package"])
def test_job_labels_owner_and_result_contract(step: str) -> None:
    job = jobs()[step]
    meta = job["metadata"]
    for where in (meta["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert where[labels.MANAGED_BY] == "model-freshness-operator"
        assert where[labels.DEPLOYMENT] == "cats"
        assert where[labels.STEP] == step
    (ref,) = meta["ownerReferences"]
    assert ref == {
        "apiVersion": "modelfreshness.io/v1alpha1",
        "kind": "ModelDeployment",
        "name": "cats",
        "uid": "1234-5678",
        "controller": True,
    }
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["name"] == labels.CONTAINER
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["command"] == ["freshness-trainer"] and container["args"][0] == step
    assert {"name": "FRESHNESS_RESULT_PATH", "value": "/dev/termination-log"} in container["env"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in container["env"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_train_job_runs_the_experiment_with_overrides_on_a_gpu() -> None:
    job = jobs()["train"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "train",
        "--repo=https://git.example/acme/cats-dogs.git",
        "--rev=main",
        "--set=train.lr=1.0e-05",
        "--set=train.name=alex",
        "--set=train.num_classes=3",
        "--set=train.pretrained=true",
        "--name=cats-train-2-1",
        "--baseline-model=s3://m/0.1.pt",
        "--remote=s3://dvc-remote",
    ]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert container["envFrom"] == [{"secretRef": {"name": "git-creds"}}]
    assert pod["nodeSelector"] == {"gpu": "h100"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert job["spec"]["activeDeadlineSeconds"] == 7200 and job["spec"]["backoffLimit"] == 1
    assert job["metadata"]["labels"][labels.RETRAIN] == "2" and job["metadata"]["labels"][labels.CANDIDATE] == "1"
    assert job["metadata"]["annotations"][labels.OVERRIDES].startswith("{")


def test_drift_job_arguments() -> None:
    (container,) = jobs()["drift"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "drift",
        "--reference=data/train",
        "--current=s3://prod/cats-dogs/",
        "--model=s3://m/0.1.pt",
        "--threshold=0.3",
        "--min-samples=10",
        "--accuracy-drop=0.1",
        "--report=s3://reports/cats-drift-4.html",
        "--window=24h",  # spec.drift.window: only the capture's recent samples
        "--newest=500",
    ]
    assert container["resources"] == {"limits": {"cpu": "2"}}
    assert jobs()["drift"]["spec"]["backoffLimit"] == 0


def test_package_job_arguments() -> None:
    (container,) = jobs()["package"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "package",
        "--model=s3://m/v2.pt",
        "--image=registry.example/cats:v2",
        "--base-image=python:3.11-slim",
        "--output=image-layout",
        "--push",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (0.01, "0.01"),
        (1e-05, "1.0e-05"),
        (True, "true"),
        ("adam", "adam"),
        ([1, 2], "[1,2]"),
        (None, "null"),
        (2.5e10, "25000000000.0"),
    ],
)
def test_override_values_are_yaml_scalars(value: object, text: str) -> None:
    assert builders.format_override("k", value) == f"k={text}"


def test_image_patch_targets_one_container_by_name() -> None:
    assert builders.image_patch("server", "r/c:v2@sha256:1") == {
        "spec": {"template": {"spec": {"containers": [{"name": "server", "image": "r/c:v2@sha256:1"}]}}}
    }


REPO = "https://git.example/acme/cats-dogs.git"


def multi_node(nodes: int = 2, gpus: int | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    training: dict[str, Any] = {"nodes": nodes, "nodeSelector": {"gpu": "h200"}, "queue": "gpus"}
    if gpus is not None:
        training["gpusPerNode"] = gpus
    spec = make_spec(training=training)
    job = builders.train_job(OWNER, spec, CreateTrainJob("cats-train-2-1", 2, 1, {"train.lr": 0.01}), IMAGE)
    return job, builders.train_service(OWNER, job)


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_multi_node_candidate_is_one_indexed_job_with_a_headless_service() -> None:
    job, service = multi_node(nodes=2, gpus=8)
    kubernetes_validate.validate(job, "1.34.0", strict=True)
    assert service is not None
    kubernetes_validate.validate(service, "1.34.0", strict=True)
    spec = job["spec"]
    group = (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"])
    assert group == ("Indexed", 2, 2, 0)
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"] == "cats-train-2-1"
    # The Job controller labels its pods with batch.kubernetes.io/job-name: the Service selects exactly them.
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": "cats-train-2-1"}
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    # Kueue admits the Job (its pods as one workload); the Service is not Kueue's.
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    assert not any(k.startswith("kueue.x-k8s.io/") for k in service["metadata"]["labels"])
    env = env_of(job)
    assert env["MASTER_ADDR"] == "cats-train-2-1-0.cats-train-2-1"  # index 0's hostname.subdomain
    assert env["FRESHNESS_NODE_ADDR"] == "cats-train-2-1-$(FRESHNESS_NODE_RANK).cats-train-2-1"
    rank = env["FRESHNESS_NODE_RANK"]["fieldRef"]["fieldPath"]
    assert rank == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert (env["FRESHNESS_NNODES"], env["FRESHNESS_NPROC_PER_NODE"], env["MASTER_PORT"]) == ("2", "8", "29400")
    container = pod["containers"][0]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 8}, "requests": {"nvidia.com/gpu": 8}}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # The same step command line as a one-pod candidate: the trainer reads the group from the env.
    assert container["command"] == ["freshness-trainer"] and container["args"][:2] == ["train", "--repo=" + REPO]


def test_one_node_keeps_a_plain_job_and_gpus_per_node_starts_one_process_per_gpu() -> None:
    job, service = multi_node(nodes=1)
    assert service is None and "completionMode" not in job["spec"] and job["spec"]["backoffLimit"] == 1
    assert "FRESHNESS_NNODES" not in env_of(job) and "subdomain" not in job["spec"]["template"]["spec"]
    job, service = multi_node(nodes=1, gpus=4)
    env = env_of(job)
    assert service is None and (env["FRESHNESS_NNODES"], env["FRESHNESS_NPROC_PER_NODE"]) == ("1", "4")
    assert "MASTER_ADDR" not in env  # one pod: torchrun --standalone


@pytest.mark.parametrize("nodes", [2, 3])
def test_multi_node_pods_stay_restricted(nodes: int) -> None:
    pod = multi_node(nodes=nodes)[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert "hostNetwork" not in pod and "hostIPC" not in pod
    assert all(set(v) == {"name", "emptyDir"} for v in pod["volumes"])

"""The step Jobs exactly as the operator builds them (freshness_operator.builders), for the
Pod Security admission test. Pure."""

from __future__ import annotations

from typing import Any

from freshness_operator import builders
from freshness_operator.core import names
from freshness_operator.core.actions import CreateDriftJob, CreatePackageJob, CreateTrainJob
from freshness_operator.core.owner import Owner
from freshness_operator.core.spec import parse_spec

from testkit.manifests import ModelDeploymentBuilder

TRAINER_IMAGE = "ghcr.io/model-freshness/freshness-trainer:0.1.0"


def sample_spec() -> dict[str, Any]:
    """A ModelDeployment spec that exercises every field the builders turn into pod settings."""
    builder = (
        ModelDeploymentBuilder("sample")
        .paused()  # an operator running elsewhere in the session must leave it alone
        .spec(
            source={"revision": "main"},
            drift={"threshold": 0.3, "minSamples": 200, "accuracyDrop": 0.05},
            training={"params": {"train.num_classes": 3}, "resources": {"limits": {"nvidia.com/gpu": 1}}},
        )
        .candidates({"train.lr": 0.01})
        .spec(training={"remote": "/mnt/dvc-remote"})
    )
    return dict(builder.obj()["spec"])


def step_jobs(owner: Owner, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One drift, one train and one package Job for `owner`, as the operator would create them, and
    the Indexed Job of a multi-node candidate."""
    parsed = parse_spec(spec)
    mdep = owner.name
    return [
        builders.drift_job(
            owner,
            parsed,
            CreateDriftJob(names.drift_job(mdep, 1), 1, "s3://models/cats-dogs/1/model.pt"),
            TRAINER_IMAGE,
        ),
        builders.train_job(
            owner,
            parsed,
            CreateTrainJob(names.train_job(mdep, 1, 0), 1, 0, {"train.lr": 0.01, "train.num_classes": 3}),
            TRAINER_IMAGE,
        ),
        builders.package_job(
            owner,
            parsed,
            CreatePackageJob(
                names.package_job(mdep, 1),
                1,
                "s3://models/cats-dogs/2/model.pt",
                "registry.example.com/cats-dogs:2",
            ),
            TRAINER_IMAGE,
        ),
        # A multi-node candidate (issue 16): 2 pods x 2 GPUs, with /dev/shm for NCCL.
        builders.train_job(
            owner,
            parse_spec({**spec, "training": {**spec["training"], "resources": {}, "nodes": 2, "gpusPerNode": 2}}),
            CreateTrainJob(names.train_job(mdep, 1, 1), 1, 1, {"train.lr": 0.01}),
            TRAINER_IMAGE,
        ),
    ]

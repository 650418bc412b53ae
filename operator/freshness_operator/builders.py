"""Manifests for the step Jobs and the Deployment patch: plain functions returning dicts. Pure.

Every Job runs ``freshness-trainer <step>`` (its arguments built by ``freshness_contract.argv``,
which the trainer parses with the same definition) in the trainer image under the ``restricted`` Pod
Security level, writes its result to the termination message, carries the labels of
docs/contracts.md and is owned by its ModelDeployment (garbage-collected with it).

A candidate with ``spec.training.nodes`` > 1 is one Indexed Job (completions = parallelism =
nodes, no retries: a replaced rank cannot rejoin a finished rendezvous, so the group succeeds or
fails as one) plus a headless Service of the same name that gives each pod the DNS name
``<job>-<index>.<job>``; the pods find the rendezvous at index 0 through ``freshness_contract.launch``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, assert_never

from freshness_contract import RESULT_PATH_ENV, TERMINATION_LOG, launch
from freshness_contract.argv import COMMAND, DriftArgs, PackageArgs, TrainArgs

from freshness_operator import GROUP, KIND, VERSION, labels
from freshness_operator.core.actions import CreateDriftJob, CreateJob, CreatePackageJob, CreateTrainJob
from freshness_operator.core.owner import Owner
from freshness_operator.core.spec import Spec

NONROOT_UID = 65532  # no privileges needed: the image's files only have to be world-readable
_WORK = "/work"


def format_override(key: str, value: Any) -> str:
    """One ``--set key=value`` argument; values are YAML scalars as ``dvc exp run -S`` parses them."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:  # YAML 1.1 reads 1e-05 as a string, 1.0e-05 as a float
            mantissa, _, exponent = text.partition("e")
            text = f"{mantissa}.0e{exponent}"
    else:
        text = json.dumps(value, separators=(",", ":"))
    return f"{key}={text}"


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
    }


def _pod_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "fsGroup": NONROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(spec: Spec) -> list[dict[str, Any]]:
    # The root filesystem is read-only: git, DVC and caches write under the emptyDir volumes.
    base = [
        {"name": RESULT_PATH_ENV, "value": TERMINATION_LOG},
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        # DVC's default site cache (/var/tmp/dvc) is on the read-only root: `dvc exp run` failed there.
        {"name": "DVC_SITE_CACHE_DIR", "value": "/tmp/.cache/dvc-site"},
        {"name": "DVC_NO_ANALYTICS", "value": "1"},
    ]
    return base + [dict(e) for e in spec.env]


@dataclass(frozen=True)
class _JobParts:
    name: str
    step: str
    image: str
    args: list[str]
    deadline_seconds: int
    backoff_limit: int
    extra_labels: dict[str, str]
    annotations: dict[str, str]
    resources: dict[str, Any]
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    env_from: list[dict[str, Any]]
    queue: str | None = None  # Kueue's LocalQueue; Kueue's webhook suspends the Job until admitted


def _job(owner: Owner, spec: Spec, p: _JobParts) -> dict[str, Any]:
    job_labels = {**labels.for_child(owner.name, p.step), **p.extra_labels}
    container: dict[str, Any] = {
        "name": labels.CONTAINER,
        "image": p.image,
        "command": [COMMAND],
        "args": p.args,
        "workingDir": _WORK,
        "env": _env(spec),
        "resources": p.resources,
        "securityContext": _container_security(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "work", "mountPath": _WORK}],
    }
    if p.env_from:
        container["envFrom"] = p.env_from
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "work", "emptyDir": {}}],
    }
    if p.node_selector:
        pod_spec["nodeSelector"] = p.node_selector
    if p.tolerations:
        pod_spec["tolerations"] = p.tolerations
    # Only on the Job: pods carrying it would be taken for plain-pod workloads where Kueue's pod
    # integration is on. We never set spec.suspend ourselves; Kueue's webhook does.
    queue_label = {labels.KUEUE_QUEUE: p.queue} if p.queue else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": p.name,
            "namespace": owner.namespace,
            "labels": {**job_labels, **queue_label},
            "annotations": p.annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "backoffLimit": p.backoff_limit,
            "activeDeadlineSeconds": p.deadline_seconds,
            "template": {"metadata": {"labels": job_labels, "annotations": p.annotations}, "spec": pod_spec},
        },
    }


def job(owner: Owner, spec: Spec, action: CreateJob, image: str) -> dict[str, Any]:
    """The Job manifest a create action asks for, whatever its kind."""
    match action:
        case CreateDriftJob():
            return drift_job(owner, spec, action, image)
        case CreateTrainJob():
            return train_job(owner, spec, action, image)
        case CreatePackageJob():
            return package_job(owner, spec, action, image)
        case _:
            assert_never(action)


def drift_job(owner: Owner, spec: Spec, action: CreateDriftJob, image: str) -> dict[str, Any]:
    d = spec.drift
    args = DriftArgs(
        reference=spec.data.reference,
        current=spec.data.current,
        model=action.model_uri,
        threshold=d.threshold,
        min_samples=d.min_samples,
        accuracy_drop=d.accuracy_drop,
        report=f"{d.report_dir.rstrip('/')}/{action.name}.html" if d.report_dir else None,
        window=d.window,
        newest=d.newest,
    ).to_argv()
    return _job(
        owner,
        spec,
        _JobParts(
            name=action.name,
            step=action.kind.value,
            image=image,
            args=args,
            deadline_seconds=d.timeout_seconds,
            backoff_limit=0,  # a failed check is reported; the schedule is the retry
            extra_labels={labels.CHECK: str(action.sequence)},
            annotations={},
            resources=dict(d.resources),
            node_selector={},
            tolerations=[],
            env_from=[],
        ),
    )


def train_job(owner: Owner, spec: Spec, action: CreateTrainJob, image: str) -> dict[str, Any]:
    t = spec.training
    args = TrainArgs(
        repo=spec.source.repo,
        rev=spec.source.revision,
        overrides=tuple(format_override(key, action.overrides[key]) for key in sorted(action.overrides)),
        name=action.name,
        baseline_model=action.baseline_model,
        remote=t.remote,
    ).to_argv()
    secret = spec.source.credentials_secret
    job = _job(
        owner,
        spec,
        _JobParts(
            name=action.name,
            step=action.kind.value,
            image=image,
            args=args,
            deadline_seconds=t.timeout_seconds,
            backoff_limit=t.backoff_limit,
            extra_labels={labels.RETRAIN: str(action.sequence), labels.CANDIDATE: str(action.index)},
            annotations={labels.OVERRIDES: json.dumps(action.overrides, sort_keys=True, separators=(",", ":"))},
            resources=dict(t.resources),
            node_selector=dict(t.node_selector),
            tolerations=[dict(x) for x in t.tolerations],
            env_from=[{"secretRef": {"name": secret}}] if secret else [],
            queue=t.queue,
        ),
    )
    if t.gpus_per_node is not None:
        resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
        for kind in ("limits", "requests"):  # extended resources: the request must equal the limit
            resources[kind] = {**resources.get(kind, {}), GPU: t.gpus_per_node}
    if t.nodes > 1 or (t.gpus_per_node or 1) > 1:
        _distribute(job, t.nodes, t.gpus_per_node or 1)
    return job


GPU = "nvidia.com/gpu"


def _distribute(job: dict[str, Any], nodes: int, per_node: int) -> None:
    """Make ``job`` one group of ``nodes`` pods x ``per_node`` processes (docs/operator.md#multi-node)."""
    name = job["metadata"]["name"]
    pod = job["spec"]["template"]["spec"]
    env = [
        {"name": launch.NNODES, "value": str(nodes)},
        {"name": launch.NPROC_PER_NODE, "value": str(per_node)},
        {"name": launch.RDZV_ID, "value": name},
    ]
    if nodes > 1:
        field = f"metadata.annotations['{launch.COMPLETION_INDEX_ANNOTATION}']"
        env += [
            {"name": launch.NODE_RANK, "valueFrom": {"fieldRef": {"fieldPath": field}}},
            {"name": launch.NODE_ADDR, "value": f"{name}-$({launch.NODE_RANK}).{name}"},
            {"name": launch.MASTER_ADDR, "value": f"{name}-0.{name}"},
            {"name": launch.MASTER_PORT, "value": str(launch.RDZV_PORT)},
        ]
        job["spec"].update(completionMode="Indexed", completions=nodes, parallelism=nodes, backoffLimit=0)
        pod["subdomain"] = name  # with the Job controller's hostname <job>-<index>: <job>-<index>.<job>
    container = pod["containers"][0]
    container["env"] = env + container["env"]
    if per_node > 1:  # NCCL between a pod's processes goes through /dev/shm; the runtime's 64 MiB is too small
        pod["volumes"].append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        container["volumeMounts"].append({"name": "dshm", "mountPath": "/dev/shm"})


def train_service(owner: Owner, job: dict[str, Any]) -> dict[str, Any] | None:
    """The headless Service that names the pods of a multi-node training Job, or None for one pod.

    Owned by the ModelDeployment like the Job and deleted with it (``DeleteJob``); created before
    the Job so that a crash between the two leaves nothing the next reconcile does not repeat.
    ``publishNotReadyAddresses``: the ranks must find each other before any of them is Ready.
    """
    if job["spec"].get("completionMode") != "Indexed":
        return None
    meta = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {k: v for k, v in meta["labels"].items() if not k.startswith("kueue.x-k8s.io/")},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"batch.kubernetes.io/job-name": meta["name"]},
            "ports": [{"name": "rendezvous", "port": launch.RDZV_PORT, "protocol": "TCP"}],
        },
    }


def package_job(owner: Owner, spec: Spec, action: CreatePackageJob, image: str) -> dict[str, Any]:
    p = spec.package
    args = PackageArgs(
        model=action.model_uri, image=action.image, base_image=p.base_image or None, push=p.push
    ).to_argv()
    return _job(
        owner,
        spec,
        _JobParts(
            name=action.name,
            step=action.kind.value,
            image=image,
            args=args,
            deadline_seconds=p.timeout_seconds,
            backoff_limit=spec.training.backoff_limit,
            extra_labels={labels.RETRAIN: str(action.sequence)},
            annotations={},
            resources={},
            node_selector={},
            tolerations=[],
            env_from=[],
            queue=p.queue,
        ),
    )


def image_patch(container: str, image: str) -> dict[str, Any]:
    """Strategic merge patch setting one container's image (containers merge by name)."""
    return {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}

"""The naive baseline of benchmarks/scale.py: the simplest kopf design for scheduled drift checks.

One ``@kopf.timer`` per ModelDeployment. On every tick it lists that object's drift Jobs and,
when the last one has finished and ``spec.drift.interval`` has passed since it was created,
creates the next one; it keeps the last three. An object without any drift Job gets its first
check at a fixed offset within one interval after ``BASELINE_EPOCH`` (default: start-up), taken
from a hash of its name (jitter, so that N objects do not all fall due in the same second).
No status, no watches on children, no deadlines: what a first operator usually looks like. It
only schedules checks (no retraining), which is the part whose cost the benchmark compares. It
uses the official ``kubernetes`` client, the usual companion of kopf, and the same kopf settings
as our operator (events only on warnings).

    BASELINE_NAMESPACE=bench BASELINE_TICK=5 BASELINE_HEALTH_PORT=8081 KUBECONFIG=... \\
        python -m benchmarks.baseline_operator

Its Jobs carry the labels and names of docs/contracts.md (``<name>-drift-<n>``), so the same
benchmark completer finishes them and the same latency bookkeeping applies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "modelfreshness.io", "v1alpha1", "modeldeployments"
TICK = float(os.environ.get("BASELINE_TICK", "5"))
EPOCH = float(os.environ.get("BASELINE_EPOCH") or time.time())
IMAGE = os.environ.get("BASELINE_TRAINER_IMAGE", "registry.example/freshness-trainer:bench")
KEEP = 3
FINALIZER = "benchmarks.modelfreshness.io/baseline"
LABELS = {"app.kubernetes.io/managed-by": "model-freshness-operator", "modelfreshness.io/step": "drift"}
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(text: str) -> int:
    return sum(int(n) * _UNIT[u] for n, u in re.findall(r"([0-9]+)(s|m|h|d)", text))


def spread(name: str) -> float:
    """Where in an interval an object's first check falls: a fraction in [0, 1) from its name. Pure."""
    return zlib.crc32(name.encode()) / 2**32


def check_number(job: client.V1Job) -> int:
    labels = (job.metadata.labels if job.metadata else None) or {}
    return int(labels.get("modelfreshness.io/check", "0"))


def finished(job: client.V1Job) -> bool:
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def job_name(job: client.V1Job) -> str:
    return str(job.metadata.name if job.metadata else "")


def created(job: client.V1Job) -> datetime:
    stamp = job.metadata.creation_timestamp if job.metadata else None
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)


def drift_job(name: str, namespace: str, uid: str, number: int, spec: dict[str, Any]) -> dict[str, Any]:
    labels = {**LABELS, "modelfreshness.io/deployment": name, "modelfreshness.io/check": str(number)}
    data = spec.get("data") or {}
    args = ["drift", "--reference", str(data.get("reference")), "--current", str(data.get("current"))]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-drift-{number}",
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ModelDeployment",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "command": ["freshness-trainer"], "args": args}],
                },
            },
        },
    }


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    # Not kopf's default name: our operator (kopf too) would strip that one, and the two would fight.
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    config.load_kube_config()


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK)
def check_drift(name: str, namespace: str | None, uid: str, spec: kopf.Spec, **_: Any) -> None:
    namespace = namespace or "default"
    batch = client.BatchV1Api()
    selector = f"modelfreshness.io/deployment={name},modelfreshness.io/step=drift"
    jobs = sorted(batch.list_namespaced_job(namespace, label_selector=selector).items, key=check_number)
    latest = jobs[-1] if jobs else None
    interval = interval_seconds(spec["drift"]["interval"])
    if latest is None:
        if time.time() < EPOCH + spread(name) * interval:
            return
    elif not finished(latest) or datetime.now(UTC) < created(latest) + timedelta(seconds=interval):
        return
    number = check_number(latest) + 1 if latest is not None else 1
    try:
        manifest = drift_job(name, namespace, uid, number, dict(spec))
        batch.create_namespaced_job(namespace, manifest)  # type: ignore[arg-type]  # a dict body is fine
    except ApiException as exc:
        if exc.status != 409:
            raise
    for old in jobs[: max(0, len(jobs) + 1 - KEEP)]:
        try:
            batch.delete_namespaced_job(job_name(old), namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    port = os.environ.get("BASELINE_HEALTH_PORT", "8081")
    asyncio.run(
        kopf.operator(
            standalone=True,
            namespaces=[os.environ["BASELINE_NAMESPACE"]],
            liveness_endpoint=f"http://0.0.0.0:{port}/healthz",
        )
    )


if __name__ == "__main__":
    main()

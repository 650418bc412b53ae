"""The baseline of benchmarks/scale/: the simplest competent kopf design for scheduled drift checks.

One async ``@kopf.timer`` per ModelDeployment. On every tick it lists that object's drift Jobs
and, when the last one has finished and ``spec.drift.interval`` has passed since it was created,
creates the next one; it keeps the last three. An object without any drift Job gets its first
check at a fixed offset within one interval after ``BASELINE_EPOCH`` (default: start-up), taken
from a hash of its name (jitter, so that N objects do not all fall due in the same second).
No status, no watches on children, no deadlines: what a first operator usually looks like, written
competently: async handlers on kopf's event loop and ONE aiohttp session (one connection pool,
TLS set up once) created at start-up and shared by every handler, as our operator does. It only
schedules checks (no retraining), which is the part whose cost the benchmark compares. Same kopf
settings as our operator (events only on warnings).

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
import ssl
import time
import zlib
from datetime import datetime
from typing import Any

import aiohttp
import kopf
from freshness_contract import labels
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

GROUP, VERSION, PLURAL = "modelfreshness.io", "v1alpha1", "modeldeployments"
TICK = float(os.environ.get("BASELINE_TICK", "5"))
EPOCH = float(os.environ.get("BASELINE_EPOCH") or time.time())
IMAGE = os.environ.get("BASELINE_TRAINER_IMAGE", "registry.example/freshness-trainer:bench")
KEEP = 3
FINALIZER = "benchmarks.modelfreshness.io/baseline"
LABELS = {labels.MANAGED_BY: labels.MANAGER, labels.STEP: "drift"}
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(text: str) -> int:
    return sum(int(n) * _UNIT[u] for n, u in re.findall(r"([0-9]+)(s|m|h|d)", text))


def spread(name: str) -> float:
    """Where in an interval an object's first check falls: a fraction in [0, 1) from its name. Pure."""
    return zlib.crc32(name.encode()) / 2**32


def check_number(job: dict[str, Any]) -> int:
    return int((job["metadata"].get("labels") or {}).get(labels.CHECK, "0"))


def finished(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def created(job: dict[str, Any]) -> float:
    return datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00")).timestamp()


def drift_job(name: str, namespace: str, uid: str, number: int, spec: dict[str, Any]) -> dict[str, Any]:
    job_labels = {**LABELS, labels.DEPLOYMENT: name, labels.CHECK: str(number)}
    data = spec.get("data") or {}
    args = ["drift", "--reference", str(data.get("reference")), "--current", str(data.get("current"))]
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "name": name,
        "uid": uid,
        "controller": True,
    }
    container = {"name": "main", "image": IMAGE, "command": ["freshness-trainer"], "args": args}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-drift-{number}",
            "namespace": namespace,
            "labels": job_labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


class Client:
    """One aiohttp session for the whole process: the connection pool and TLS context are made once."""

    def __init__(self) -> None:
        self.config = k8s_client.Configuration()
        k8s_config.load_kube_config(client_configuration=self.config)
        ctx: ssl.SSLContext | bool = False
        if self.config.verify_ssl:
            ctx = ssl.create_default_context(cafile=self.config.ssl_ca_cert)
            if self.config.cert_file:
                ctx.load_cert_chain(self.config.cert_file, self.config.key_file)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=16), timeout=aiohttp.ClientTimeout(total=30)
        )
        self.headers = {"Accept": "application/json"}
        token = self.config.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            self.headers["Authorization"] = token

    async def request(self, method: str, path: str, ok: tuple[int, ...] = (), **kw: Any) -> dict[str, Any]:
        url = self.config.host.rstrip("/") + path
        async with self.session.request(method, url, headers=self.headers, **kw) as resp:
            if resp.status >= 400 and resp.status not in ok:
                raise kopf.TemporaryError(f"{method} {path}: {resp.status} {await resp.text()}", delay=TICK)
            return dict(await resp.json(content_type=None) or {})


CLIENT: list[Client] = []  # the one shared client, made in the start-up handler (it needs the event loop)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    # Not kopf's default name: our operator (kopf too) would strip that one, and the two would fight.
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    CLIENT.append(Client())


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    for c in CLIENT:
        await c.session.close()


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK)
async def check_drift(name: str, namespace: str | None, uid: str, spec: kopf.Spec, **_: Any) -> None:
    namespace = namespace or "default"
    api, jobs_path = CLIENT[0], f"/apis/batch/v1/namespaces/{namespace}/jobs"
    selector = f"{labels.DEPLOYMENT}={name},{labels.STEP}=drift"
    listed = await api.request("GET", jobs_path, params={"labelSelector": selector})
    jobs = sorted(listed.get("items") or [], key=check_number)
    latest = jobs[-1] if jobs else None
    interval = interval_seconds(spec["drift"]["interval"])
    if latest is None:
        if time.time() < EPOCH + spread(name) * interval:
            return
    elif not finished(latest) or time.time() < created(latest) + interval:
        return
    number = check_number(latest) + 1 if latest is not None else 1
    await api.request("POST", jobs_path, ok=(409,), json=drift_job(name, namespace, uid, number, dict(spec)))
    for old in jobs[: max(0, len(jobs) + 1 - KEEP)]:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        await api.request("DELETE", f"{jobs_path}/{old['metadata']['name']}", ok=(404,), json=body)


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

"""Shared parts of the operator benchmarks (scale.py, time_to_fresh.py).

- ``Api``/``Watch``: a small JSON client over urllib3 with a kubeconfig's credentials, and a
  list-then-watch loop in a thread that stamps every event with the time it arrived.
- ``Completer``: plays the step containers. kwok leaves pods labelled ``modelfreshness.io/step``
  Running; the completer ends each one as its container would, with a valid result document in
  the termination message (``freshness_contract.encode``), by patching ``pods/status``.
- ``Identity``: a ServiceAccount per operator under test plus one FlowSchema per verb, so that the
  API server's own ``apiserver_flowcontrol_dispatched_requests_total`` counts that operator's
  requests, split by verb (priority level ``exempt``: same treatment as the admin user).
- ``Process``/``ProcStats``: the operator as a subprocess; its RSS and CPU time from /proc.
- ``cluster()``: the local control plane (hack/localcluster.py), or an existing cluster.

Everything here touches the API, a process or the filesystem unless its docstring says pure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import freshness_contract as contract
import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

log = logging.getLogger("benchmarks")

REPO = Path(__file__).resolve().parent.parent
CRD = REPO / "crds" / "modeldeployments.modelfreshness.io.yaml"
GROUP, VERSION, PLURAL = "modelfreshness.io", "v1alpha1", "modeldeployments"
# The labels of docs/contracts.md, which both operators under test put on their Jobs.
MANAGED_BY, MANAGER = "app.kubernetes.io/managed-by", "model-freshness-operator"
DEPLOYMENT_LABEL = "modelfreshness.io/deployment"
STEP_LABEL = "modelfreshness.io/step"
CHECK_LABEL = "modelfreshness.io/check"
SERVING_IMAGE = "registry.example/cats-dogs"
TRAINER_IMAGE = "registry.example/freshness-trainer:bench"
DIGEST = "sha256:" + "5e" * 32
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")


def mdeps_path(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def parse_time(value: str) -> float:
    """An RFC 3339 timestamp as Unix seconds. Pure."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def format_time(unix: float) -> str:
    """Unix seconds as the API's whole-second RFC 3339 form. Pure."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the API


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Api:
    """JSON over urllib3 with the credentials of a kubeconfig (client certificate or token). Thread-safe."""

    def __init__(self, kubeconfig: Path, pool: int = 16) -> None:
        cfg = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.kubeconfig = kubeconfig
        self.host = str(cfg.host).rstrip("/")
        self.ca_file = cfg.ssl_ca_cert
        self._headers = {"Accept": "application/json"}
        token = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            self._headers["Authorization"] = token
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool,
            cert_reqs="CERT_REQUIRED" if cfg.verify_ssl else "CERT_NONE",
            ca_certs=cfg.ssl_ca_cert,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
        )

    def _url(self, path: str, params: dict[str, str] | None) -> str:
        return self.host + path + (f"?{urlencode(params)}" if params else "")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        allow: Sequence[int] = (),
    ) -> dict[str, Any]:
        """One request; a status in ``allow`` (e.g. 409 on create) returns {} instead of raising."""
        resp = self._http.request(
            method,
            self._url(path, params),
            body=json.dumps(body).encode() if body is not None else None,
            headers={**self._headers, "Content-Type": content_type},
            timeout=urllib3.Timeout(connect=10, read=120),
            retries=False,
        )
        data = json.loads(resp.data) if resp.data else {}
        if resp.status >= 400:
            if resp.status in allow:
                return {}
            message = data.get("message", "") if isinstance(data, dict) else str(resp.data[:300])
            raise ApiError(resp.status, f"{method} {path}: {message}")
        return data if isinstance(data, dict) else {}

    def items(self, path: str, selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        return list(self.request("GET", path, params=params).get("items") or [])

    def text(self, path: str) -> str:
        resp = self._http.request("GET", self._url(path, None), headers=self._headers, timeout=60, retries=False)
        if resp.status >= 400:
            raise ApiError(resp.status, f"GET {path}")
        return str(resp.data.decode())

    def stream(self, path: str, params: dict[str, str]) -> urllib3.BaseHTTPResponse:
        resp = self._http.request(
            "GET",
            self._url(path, params),
            headers=self._headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=120),
            retries=False,
        )
        if resp.status >= 400:
            resp.release_conn()
            raise ApiError(resp.status, f"watch {path}")
        return resp


Handler = Callable[[str, dict[str, Any], float], None]


class Watch:
    """List, then watch, one collection in a daemon thread: ``handler(type, object, arrived_at)``.

    After a 410 Gone it lists again, so handlers see ADDED twice and must keep first-seen times.
    """

    def __init__(self, api: Api, path: str, handler: Handler, selector: str | None = None) -> None:
        self.api, self.path, self.handler, self.selector = api, path, handler, selector
        self.synced = threading.Event()
        self._stop = threading.Event()
        self._resp: urllib3.BaseHTTPResponse | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)

    def start(self) -> Watch:
        self._thread.start()
        if not self.synced.wait(120):
            raise TimeoutError(f"the first list of {self.path} did not finish within 120s")
        return self

    def stop(self) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()
        self._thread.join(timeout=10)

    def _params(self) -> dict[str, str]:
        return {"labelSelector": self.selector} if self.selector else {}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.api.request("GET", self.path, params=self._params())
                now = time.time()
                for item in listed.get("items") or []:
                    self.handler("ADDED", item, now)
                self.synced.set()
                rv: str | None = listed["metadata"]["resourceVersion"]
                while rv is not None and not self._stop.is_set():
                    rv = self._watch(rv)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("watch %s failed, listing again: %s", self.path, exc)
                time.sleep(1)

    def _watch(self, rv: str) -> str | None:
        params = {**self._params(), "watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
        params["timeoutSeconds"] = "60"
        resp = self._resp = self.api.stream(self.path, params)
        try:
            for line in resp:
                if not line.strip():
                    continue
                event = json.loads(line)
                arrived = time.time()
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
                rv = obj.get("metadata", {}).get("resourceVersion") or rv
                if event.get("type") != "BOOKMARK":
                    self.handler(str(event["type"]), obj, arrived)
        finally:
            self._resp = None
            resp.release_conn()
        return rv


def create_all(api: Api, creations: Iterable[tuple[str, dict[str, Any]]], workers: int = 8) -> None:
    """POST many objects in parallel; objects that exist already (409) are fine."""
    with ThreadPoolExecutor(workers) as pool:
        for fut in [pool.submit(api.request, "POST", path, body, allow=(409,)) for path, body in creations]:
            fut.result()


def patch_all(api: Api, patches: Iterable[tuple[str, dict[str, Any]]], workers: int = 8) -> None:
    """Merge-patch many objects (or status subresources) in parallel."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(api.request, "PATCH", path, body, content_type="application/merge-patch+json")
            for path, body in patches
        ]
        for fut in futures:
            fut.result()


def wait_until(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# ---------------------------------------------------------------- the cluster


@dataclass
class Cluster:
    kubeconfig: Path
    api: Api
    log_dir: Path | None
    own: bool


@contextmanager
def cluster(kubeconfig: Path | None, *, nodes: int = 2, api_qps: int | None = None) -> Iterator[Cluster]:
    """An existing cluster (``kubeconfig``), or a fresh local control plane stopped at the end."""
    if kubeconfig is not None:
        c = Cluster(kubeconfig, Api(kubeconfig, pool=32), None, own=False)
        apply_crd(c.api)
        yield c
        return
    from hack import localcluster

    state = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    started = time.monotonic()
    info = localcluster.up(state, nodes=nodes, api_qps=api_qps)
    try:
        print(
            f"# local control plane with {nodes} kwok nodes up in {time.monotonic() - started:.0f}s; "
            f"logs in {info.log_dir}",
            flush=True,
        )
        c = Cluster(info.kubeconfig, Api(info.kubeconfig, pool=32), info.log_dir, own=True)
        apply_crd(c.api)
        yield c
    finally:
        localcluster.down(state, info)


def apply_crd(api: Api) -> None:
    crd = yaml.safe_load(CRD.read_text())
    name = crd["metadata"]["name"]
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    api.request(
        "PATCH",
        path,
        crd,
        params={"fieldManager": "benchmarks", "force": "true"},
        content_type="application/apply-patch+yaml",
    )

    def established() -> bool:
        conds = api.request("GET", path).get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

    wait_until("the CRD to be established", established, 60)


def create_namespace(api: Api, name: str) -> None:
    api.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, allow=(409,))

    def default_sa() -> bool:
        return bool(api.request("GET", f"/api/v1/namespaces/{name}/serviceaccounts/default", allow=(404,)))

    wait_until(f"the default ServiceAccount of {name}", default_sa, 60)


def delete_namespace(api: Api, name: str) -> None:
    """Delete a benchmark namespace; kopf's finalizers (the baseline's timers) are removed first."""
    for mdep in api.items(mdeps_path(name)):
        if mdep["metadata"].get("finalizers"):
            api.request(
                "PATCH",
                f"{mdeps_path(name)}/{mdep['metadata']['name']}",
                {"metadata": {"finalizers": None}},
                content_type="application/merge-patch+json",
                allow=(404,),
            )
    api.request("DELETE", f"/api/v1/namespaces/{name}", allow=(404,))


# ---------------------------------------------------------------- manifests and results (pure)


def serving_deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    """A serving Deployment as a user would have it, opted in for ModelDeployment ``name``: kwok
    makes its pods Ready. Pure."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"modelfreshness.io/serving-for": name}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 600,
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "server", "image": f"{SERVING_IMAGE}:0.1"}]},
            },
        },
    }


def model_deployment(name: str, interval: str, *, cooldown: str = "0s") -> dict[str, Any]:
    """A ModelDeployment serving through Deployment ``name``, one training candidate. Pure."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "source": {"repo": "https://git.example/acme/cats-dogs.git"},
            "data": {"reference": "data/train", "current": "s3://prod-samples/cats-dogs/"},
            "serving": {
                "deployment": name,
                "container": "server",
                "image": SERVING_IMAGE,
                "modelUri": "s3://models/cats-dogs/0.1/model.pt",
            },
            "drift": {"interval": interval},
            "training": {"candidates": [{}], "maxParallel": 1, "backoffLimit": 0},
            "policy": {"cooldown": cooldown, "maxRetrainsPerDay": 1000},
        },
    }


def drift_doc(detected: bool) -> dict[str, Any]:
    share = 0.62 if detected else 0.05
    return {
        "step": "drift",
        "ok": True,
        "drift": {
            "detected": detected,
            "share": share,
            "score": share,
            "threshold": 0.3,
            "method": "evidently-share",
            "samples": 400,
        },
    }


def train_doc(rev: str) -> dict[str, Any]:
    return {
        "step": "train",
        "ok": True,
        "train": {
            "experiment": f"exp-{rev[:6]}",
            "rev": rev,
            "metrics": {"val_acc": 0.95},
            "baselineMetrics": {"val_acc": 0.80},
            "model": f"s3://dvc-remote/models/{rev}/model.pt",
        },
    }


def package_doc(image: str) -> dict[str, Any]:
    """The package step's result for ``image`` (REPO:TAG as asked), pinned by digest as the contract wants."""
    return {"step": "package", "ok": True, "package": {"image": f"{image}@{DIGEST}", "digest": DIGEST}}


def container_arg(pod: dict[str, Any], flag: str) -> str | None:
    """The value of ``flag`` in the pod's first container's args (``--flag=value``, as
    ``freshness_contract.argv`` writes them, or ``--flag value``). Pure."""
    args = list(pod["spec"]["containers"][0].get("args") or [])
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
        if arg == flag and i + 1 < len(args):
            return str(args[i + 1])
    return None


# ---------------------------------------------------------------- the step completer

ResultFor = Callable[[dict[str, Any]], dict[str, Any]]


class Completer:
    """Finishes Running step pods in one namespace with ``result_for(pod)`` as their result.

    ``finished`` maps a Job name to the time its pod's status patch returned (the moment the
    step's verdict exists in the cluster).
    """

    def __init__(self, api: Api, namespace: str, result_for: ResultFor, workers: int = 4) -> None:
        self.api, self.namespace, self.result_for = api, namespace, result_for
        self.finished: dict[str, float] = {}
        self.errors: list[str] = []
        self._handled: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="completer")
        self._watch = Watch(api, f"/api/v1/namespaces/{namespace}/pods", self._on_pod, selector=STEP_LABEL)

    def start(self) -> Completer:
        self._watch.start()
        return self

    def stop(self) -> None:
        self._watch.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _on_pod(self, type_: str, pod: dict[str, Any], _: float) -> None:
        status = pod.get("status") or {}
        # kwok's pod-ready stage applies while there is no podIP: finishing earlier would be undone.
        if type_ == "DELETED" or status.get("phase") != "Running" or not status.get("podIP"):
            return
        if pod["metadata"].get("deletionTimestamp"):
            return
        with self._lock:
            if pod["metadata"]["uid"] in self._handled:
                return
            self._handled.add(pod["metadata"]["uid"])
        self._pool.submit(self._finish, pod)

    def _finish(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            message = contract.encode(self.result_for(pod))
            now = format_time(time.time())
            container = pod["spec"]["containers"][0]
            terminated = {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now, "message": message}
            patch = {
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {
                            "name": container["name"],
                            "image": container["image"],
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "started": False,
                            "state": {"terminated": terminated},
                        }
                    ],
                }
            }
            self.api.request(
                "PATCH",
                f"/api/v1/namespaces/{self.namespace}/pods/{meta['name']}/status",
                patch,
                content_type="application/merge-patch+json",
            )
            job = (meta.get("labels") or {}).get("job-name") or meta["name"]
            self.finished.setdefault(job, time.time())
        except Exception as exc:
            self.errors.append(f"{meta['name']}: {exc}")
            log.warning("completer: %s: %s", meta["name"], exc)


# ---------------------------------------------------------------- identities and request counts


@dataclass(frozen=True)
class Identity:
    """A ServiceAccount an operator under test runs as; its requests are counted per verb."""

    name: str
    namespace: str
    kubeconfig: Path

    @property
    def prefix(self) -> str:
        return f"bench-{self.namespace}-{self.name}"

    def flow_schema(self, verb: str) -> str:
        return f"{self.prefix}-{verb}"

    def requests(self, counts: dict[str, float]) -> dict[str, float]:
        """This identity's requests by verb (plus ``other``) from a ``request_counts`` snapshot. Pure."""
        return {verb: counts.get(self.flow_schema(verb), 0.0) for verb in (*VERBS, "other")}


def make_identity(api: Api, namespace: str, name: str, workdir: Path) -> Identity:
    """ServiceAccount with cluster-admin, a token kubeconfig and one FlowSchema per verb."""
    ident = Identity(name, namespace, workdir / f"{name}.kubeconfig")
    api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}}, allow=(409,))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": ident.prefix},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    api.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding, allow=(409,))
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": name, "namespace": namespace}}
    for verb in (*VERBS, "other"):
        rule: dict[str, Any] = {
            "subjects": [subject],
            "resourceRules": [
                {
                    "verbs": [verb if verb != "other" else "*"],
                    "apiGroups": ["*"],
                    "resources": ["*"],
                    "namespaces": ["*"],
                    "clusterScope": True,
                }
            ],
        }
        if verb == "other":
            rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
        schema = {
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "FlowSchema",
            "metadata": {"name": ident.flow_schema(verb)},
            "spec": {
                "priorityLevelConfiguration": {"name": "exempt"},
                "matchingPrecedence": 60 if verb == "other" else 50,
                "rules": [rule],
            },
        }
        api.request("POST", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas", schema, allow=(409,))
    token = api.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 6 * 3600}},
    )["status"]["token"]
    cluster: dict[str, Any] = {"server": api.host}
    if api.ca_file:
        cluster["certificate-authority"] = api.ca_file
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": name, "namespace": namespace}}],
        "current-context": "bench",
    }
    ident.kubeconfig.write_text(json.dumps(config))
    ident.kubeconfig.chmod(0o600)
    # The API server picks FlowSchemas up asynchronously; wait until requests land in ours.
    probe = Api(ident.kubeconfig)

    def counted() -> bool:
        probe.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        return ident.requests(request_counts(api))["get"] > 0

    wait_until(f"FlowSchemas of {ident.prefix} in effect", counted, 60, every=1)
    return ident


def delete_identity(api: Api, ident: Identity) -> None:
    for verb in (*VERBS, "other"):
        api.request(
            "DELETE", f"/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/{ident.flow_schema(verb)}", allow=(404,)
        )
    api.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{ident.prefix}", allow=(404,))


def request_counts(api: Api) -> dict[str, float]:
    """Requests dispatched per FlowSchema, and ``apiserver_total`` over all clients, from /metrics."""
    counts: dict[str, float] = {"apiserver_total": 0.0}
    for line in api.text("/metrics").splitlines():
        if line.startswith("apiserver_flowcontrol_dispatched_requests_total{"):
            labels, _, value = line.rpartition(" ")
            schema = labels.split('flow_schema="', 1)[1].split('"', 1)[0]
            counts[schema] = counts.get(schema, 0.0) + float(value)
        elif line.startswith("apiserver_request_total{"):
            counts["apiserver_total"] += float(line.rpartition(" ")[2])
    return counts


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Counter deltas. Pure."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcStats:
    """RSS and CPU time of one process, from /proc (Linux)."""

    _TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def rss(self) -> int:
        """Resident set size in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu(self) -> float:
        """User plus system CPU seconds so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._TICKS


@dataclass
class Process:
    """An operator under test as a subprocess (cwd: the repository), ready when its health URL answers."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    health_url: str
    proc: subprocess.Popen[bytes] | None = None
    peak_rss: int = 0
    _sampler: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self, timeout: float = 120) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample, name=f"rss {self.name}", daemon=True)
        self._sampler.start()
        wait_until(f"{self.name} to answer {self.health_url}", self._healthy, timeout)
        return self

    @property
    def stats(self) -> ProcStats:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return ProcStats(self.proc.pid)

    def _healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak_rss = max(self.peak_rss, self.stats.rss())
            except (FileNotFoundError, ProcessLookupError):
                return

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self._stop.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def our_operator(kubeconfig: Path, namespace: str, log: Path, src: Path | None = None) -> Process:
    """``python -m freshness_operator`` watching one namespace (env per docs/contracts.md); from the
    source tree ``src`` (e.g. a git worktree of an older commit) when given, else this checkout."""
    health = free_port()
    path = [str(src / d) for d in ("contract", "operator", "trainer", ".")] if src else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")]),
        "KUBECONFIG": str(kubeconfig),
        "FRESHNESS_NAMESPACES": namespace,
        "FRESHNESS_METRICS_PORT": str(free_port()),
        "FRESHNESS_HEALTH_PORT": str(health),
        "FRESHNESS_TRAINER_IMAGE": TRAINER_IMAGE,
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "freshness_operator"]
    name = f"our operator from {src}" if src else "our operator"
    return Process(name, argv, env, log, f"http://127.0.0.1:{health}/healthz")


def baseline_operator(kubeconfig: Path, namespace: str, tick: float, epoch: float, log: Path) -> Process:
    """``python -m benchmarks.baseline_operator`` (the plain per-object timer) on one namespace."""
    health = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "BASELINE_NAMESPACE": namespace,
        "BASELINE_TICK": str(tick),
        "BASELINE_EPOCH": repr(epoch),
        "BASELINE_HEALTH_PORT": str(health),
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "benchmarks.baseline_operator"]
    return Process("baseline operator", argv, env, log, f"http://127.0.0.1:{health}/healthz")


# ---------------------------------------------------------------- numbers (pure)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values. Pure."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pipes aligned for the terminal). Pure."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])

"""A small JSON client for the Kubernetes API and a list-then-watch loop, for tests and benchmarks.

``Api`` speaks JSON over urllib3 with a kubeconfig's credentials (client certificate or token);
``Watch`` lists, then watches, one collection in a thread and stamps every event with the time it
arrived; ``create_all``/``patch_all`` send many requests in parallel.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

log = logging.getLogger("testkit.api")


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


class Watches:
    """Several watches, started and stopped together (a benchmark's tracker of Jobs, Deployments, ...)."""

    def __init__(self, *watches: Watch) -> None:
        self.watches = list(watches)

    def start(self) -> Watches:
        for w in self.watches:
            w.start()
        return self

    def stop(self) -> None:
        for w in self.watches:
            w.stop()


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

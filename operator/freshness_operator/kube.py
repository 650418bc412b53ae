"""The only module that talks to the Kubernetes API (kopf's own watching aside).

A small asyncio client over aiohttp: plain dicts in and out, 404 and 409 handled where the
callers want them handled on purpose. Reconciles read from ``cache`` (the watches); the GETs
here are its fallbacks. Credentials come from the in-cluster service account or
the kubeconfig, through the ``kubernetes`` package's config loaders.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from freshness_operator import GROUP, KIND, PLURAL, VERSION, labels
from freshness_operator.core.owner import Owner
from freshness_operator.leader import Conflict

log = logging.getLogger(__name__)
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
_MDEP = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}/{{name}}"
PERMANENT = frozenset({400, 403, 404, 422})
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)  # no answer: worth a retry, like a 5xx


class ApiError(Exception):
    """A refused API request; ``status`` is the HTTP status, ``reason`` the API's reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def permanent(self) -> bool:
        """True when sending the same request again cannot succeed (a bad request, forbidden, not
        found, invalid, or an admission webhook's or policy's denial, which come as these codes);
        409, 429, 5xx and timeouts are worth a retry."""
        return self.status in PERMANENT


class NotLeading(Exception):
    """A write refused before it was sent: this replica does not hold the leader Lease (``leader``)."""


class KubeApi(Protocol):
    """What a reconcile asks of the API (``Kube`` here; the fake API of tests/operator/test_wiring.py).

    Reads answer None for an object that does not exist; writes raise ``ApiError`` (``.permanent``
    for a refusal retrying cannot fix) or a transport error (``TRANSPORT_ERRORS``).
    """

    async def get_mdep(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def create_job(self, manifest: dict[str, Any]) -> dict[str, Any] | None: ...
    async def delete_job(self, namespace: str, name: str) -> None: ...
    async def create_service(self, manifest: dict[str, Any]) -> bool: ...
    async def delete_service(self, namespace: str, name: str) -> None: ...
    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    async def replace_status(self, body: dict[str, Any]) -> dict[str, Any]: ...
    async def post_event(self, owner: Owner, reason: str, message: str, *, warning: bool) -> None: ...


class Kube:
    """Touches the API: ``KubeApi``, plus the Lease for ``leadership``.

    Create it with ``await Kube.connect()``; close it with ``close()``.

    ``fence``, when set (leader election on), is asked before every write but the Lease's own:
    False raises ``NotLeading`` and nothing is sent.
    """

    def __init__(self, config: k8s_client.Configuration, session: aiohttp.ClientSession) -> None:
        self._config = config
        self._session = session
        self._base = config.host.rstrip("/")
        self.fence: Callable[[], bool] | None = None

    @classmethod
    async def connect(cls) -> Kube:
        config = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=config)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=config)
        ctx: ssl.SSLContext | bool = False
        if config.verify_ssl:
            ctx = ssl.create_default_context(cafile=config.ssl_ca_cert)
            if config.cert_file:
                ctx.load_cert_chain(config.cert_file, config.key_file)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=16),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        return cls(config, session)

    async def close(self) -> None:
        await self._session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        fenced: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        if method != "GET" and fenced and self.fence is not None and not self.fence():
            raise NotLeading(f"{method} {path}: not the leader, nothing sent")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self._config.get_api_key_with_prefix("BearerToken", alias="authorization")
        if token:
            headers["Authorization"] = token
        limit = aiohttp.ClientTimeout(total=timeout) if timeout else None
        request = self._session.request(
            method, self._base + path, params=params, json=body, headers=headers, timeout=limit
        )
        async with request as resp:
            data = await resp.json(content_type=None) if resp.content_length != 0 else {}
            if resp.status >= 400:
                data = data if isinstance(data, dict) else {}
                raise ApiError(resp.status, data.get("reason", resp.reason or ""), data.get("message", ""))
            return data if isinstance(data, dict) else {}

    async def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def get_mdep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(_MDEP.format(ns=namespace, name=name))

    async def get_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get_or_none(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")

    async def create_job(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create-if-absent: the created Job, or None when a Job of that name exists already (409)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            return await self._request("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", body=manifest)
        except ApiError as exc:
            if exc.status == 409:
                return None
            raise

    async def create_service(self, manifest: dict[str, Any]) -> bool:
        """Create-if-absent (a multi-node candidate's headless Service); False when it exists (409)."""
        namespace = manifest["metadata"]["namespace"]
        try:
            await self._request("POST", f"/api/v1/namespaces/{namespace}/services", body=manifest)
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def delete_service(self, namespace: str, name: str) -> None:
        """Delete a Service; one that does not exist (404: every single-pod candidate) is fine."""
        try:
            await self._request("DELETE", f"/api/v1/namespaces/{namespace}/services/{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and its pods; a Job already gone (404) is fine."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self._request("DELETE", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", body=body)
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            body=patch,
            content_type="application/strategic-merge-patch+json",
        )

    async def replace_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the status subresource; the body's resourceVersion makes a stale write a 409."""
        meta = body["metadata"]
        path = _MDEP.format(ns=meta["namespace"], name=meta["name"]) + "/status"
        return await self._request("PUT", path, body=body)

    async def get_lease(self, namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
        try:
            return await self._request("GET", f"{_LEASES.format(ns=namespace)}/{name}", timeout=timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def write_lease(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Create the Lease (no resourceVersion) or replace it (guarded by the body's resourceVersion);
        a 409 (someone else wrote first) raises ``leader.Conflict``. Never fenced."""
        meta = body["metadata"]
        path = _LEASES.format(ns=meta["namespace"])
        try:
            if meta.get("resourceVersion"):
                return await self._request("PUT", f"{path}/{meta['name']}", body=body, fenced=False, timeout=timeout)
            return await self._request("POST", path, body=body, fenced=False, timeout=timeout)
        except ApiError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from exc
            raise

    async def post_event(self, owner: Owner, reason: str, message: str, *, warning: bool) -> None:
        """Record a core/v1 Event on the ModelDeployment. Failures are logged, never raised."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{owner.name}.", "namespace": owner.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": owner.name,
                "namespace": owner.namespace,
                "uid": owner.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": labels.MANAGER},
            "reportingComponent": labels.MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._request("POST", f"/api/v1/namespaces/{owner.namespace}/events", body=event)
        except (ApiError, aiohttp.ClientError) as exc:
            log.warning("%s %s/%s: event %s not recorded: %s", KIND, owner.namespace, owner.name, reason, exc)

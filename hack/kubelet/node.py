"""The runner's node: registered once, kept Ready with its status and a node Lease. Touches the API."""

from __future__ import annotations

import logging
import threading
from typing import Any, cast

from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.kubelet.status import micro_now, node_manifest, now, ready_status

log = logging.getLogger("process-runner")


class Node:
    def __init__(self, api: client.CoreV1Api, coord: client.CoordinationV1Api, name: str,
                 stop: threading.Event) -> None:
        self.api, self.coord, self.name, self.stop = api, coord, name, stop

    def register(self) -> None:
        try:
            self.api.create_node(cast(Any, node_manifest(self.name)))
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        self.api.patch_node_status(self.name, ready_status(now()))
        lease = {
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_now()},
        }
        try:
            self.coord.patch_namespaced_lease(self.name, "kube-node-lease", lease)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", cast(Any, lease))

    def heartbeat_loop(self) -> None:
        while not self.stop.wait(10):
            try:
                self.heartbeat()
            except Exception:  # keep beating through transient API errors
                log.exception("heartbeat failed")

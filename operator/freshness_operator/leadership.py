"""Wiring of the leader election (``leader``) into the operator: the Lease over ``kube.Kube``,
the reconcile queue paused on a standby, the ``modelfreshness_leader`` gauge, the write fence.

With ``FRESHNESS_LEADER_ELECTION`` off nothing here runs: the queue acts from the start, as
before, and the gauge says 1.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from freshness_operator.kube import Kube
from freshness_operator.leader import Elector
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile_queue import ReconcileQueue
from freshness_operator.settings import Settings


class KubeLease:
    """``leader.LeaseStore`` over the API; each request is bounded well inside the renew deadline."""

    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube, self.namespace, self.name = kube, settings.lease_namespace, settings.lease_name
        self.timeout = max(0.5, settings.timing.renew_deadline / 2)

    async def get(self) -> dict[str, Any] | None:
        return await self.kube.get_lease(self.namespace, self.name, self.timeout)

    async def write(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.kube.write_lease(body, self.timeout)


class Leadership:
    """Starts acting when the Lease is acquired, stops when it is lost; ``close`` releases it."""

    def __init__(self, settings: Settings, queue: ReconcileQueue, metrics: Metrics, kube: Kube | None) -> None:
        """``kube`` is needed only with leader election on (the Lease, the write fence)."""
        self.queue, self.metrics = queue, metrics
        self.elector: Elector | None = None
        self._task: asyncio.Task[None] | None = None
        if not settings.leader_election:
            metrics.leader.set(1)
            return
        if kube is None:
            raise ValueError("leader election needs the API client (kube)")
        queue.active = False
        metrics.leader.set(0)
        self.elector = Elector(
            KubeLease(kube, settings),
            settings.lease_namespace,
            settings.lease_name,
            settings.leader_identity,
            settings.timing,
            on_started=self._started,
            on_stopped=self._stopped,
        )
        kube.fence = self.elector.may_act

    def start(self) -> None:
        if self.elector is not None:
            self._task = asyncio.get_running_loop().create_task(self.elector.run())

    def _started(self) -> None:
        self.metrics.leader.set(1)
        self.queue.resume()

    def _stopped(self) -> None:
        self.metrics.leader.set(0)
        self.queue.pause()

    async def close(self) -> None:
        """Stop campaigning, stop acting and wait for the reconciles to end, then free the Lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.elector is None:
            await self.queue.close()
            return
        await self.elector.release(before=self.queue.close)

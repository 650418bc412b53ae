"""The reconcile queue: one reconcile at a time per ModelDeployment, triggers coalesced, deadlines
as timers, failures retried with backoff.

What a reconcile does and what time it is are given (``reconcile``, ``clock``): the handlers pass
``reconcile.reconciler(deps)`` and keep the default clock, ``reconcile.wall_time`` (to the
microsecond: the decisions' ``now`` has whole seconds, and a timer measured from it fired up to a
second after its deadline, the largest part of due → Job at scale); the tests pass a script and
their own clock.

Watch events (the ModelDeployment, its Jobs, its serving Deployment) call ``kick``; the only
timers are the deadlines ``decide`` asks for (the next drift check, a cooldown's end, a rollout's
progress deadline). No polling of child state.

With leader election (``leadership``), a standby's queue is paused: kicks only mark the key,
nothing reconciles. ``resume`` (the Lease acquired) reconciles every key seen; ``pause`` (the
Lease lost) cancels the reconciles in flight and the timers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from freshness_operator import KIND
from freshness_operator.kube import ApiError, NotLeading
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile import Clock, Reconcile, wall_time

log = logging.getLogger(__name__)
Key = tuple[str, str]
ERROR_BACKOFF_SECONDS = (1, 2, 5, 10, 30, 60)


class ReconcileQueue:
    def __init__(
        self, reconcile: Reconcile, *, metrics: Metrics, clock: Clock = wall_time, active: bool = True
    ) -> None:
        self._reconcile, self._clock, self._metrics = reconcile, clock, metrics
        self.active = active  # False: a standby (leader election), kicks are remembered, not run
        self._known: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._holders: dict[Key, int] = {}  # tasks using (or waiting for) a key's lock
        self._dirty: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._errors: dict[Key, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.written: dict[Key, str] = {}
        self.serving: Mapping[tuple[str, str], Iterable[str]] = {}  # kopf's serving_index, set by handlers

    def kick(self, key: Key) -> None:
        """Ask for a reconcile soon; repeated kicks while one runs collapse into one more run."""
        self._known.add(key)
        self._dirty.add(key)
        if not self.active:
            return
        task = asyncio.get_running_loop().create_task(self._run(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def is_own_write(self, key: Key, resource_version: str | None) -> bool:
        """True for the watch event of our own status write (nothing new to look at)."""
        return resource_version is not None and self.written.get(key) == resource_version

    def pause(self) -> None:
        """Stop acting now: timers and reconciles in flight are cancelled (they stop at their next await)."""
        self.active = False
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        self._errors.clear()
        for key in self._known:
            self._metrics.forget(*key)  # a standby publishes no per-object series of its own

    def resume(self) -> None:
        """Start acting: reconcile every ModelDeployment seen so far (each sets its own timers)."""
        self.active = True
        for key in sorted(self._known):
            self.kick(key)

    def forget(self, key: Key) -> None:
        """The object was deleted: drop its timer, backoff, own-write marker, series and lock."""
        self._known.discard(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._errors.pop(key, None)
        self.written.pop(key, None)
        self._metrics.forget(*key)
        if not self._holders.get(key):
            self._locks.pop(key, None)  # else the last task using it drops it (``_run``)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, key: Key) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                while self.active and key in self._dirty:
                    self._dirty.discard(key)
                    when = await self._once(key)
                    self._schedule(key, when)
        finally:
            self._holders[key] -= 1
            if not self._holders[key]:
                del self._holders[key]
                if key not in self._known:
                    self._locks.pop(key, None)  # deleted while this ran: nothing keeps its lock

    async def _once(self, key: Key) -> datetime | None:
        namespace, name = key
        try:
            when, written = await self._reconcile(namespace, name, self._peers, self._errors.get(key, 0))
        except NotLeading:
            self._dirty.add(key)  # the Lease was lost mid-reconcile; the next leader (maybe us) redoes it
            return None
        except ApiError as exc:
            if exc.status == 409:
                self._dirty.add(key)  # the object changed under us: look again now
                return None
            if exc.status == 404:
                log.info("%s %s/%s: gone during the reconcile: %s", KIND, *key, exc)
                return None  # deleted meanwhile; a watch event brings any recreation
            return self._failed(key, exc)
        except Exception as exc:  # one broken object must not stop the others
            return self._failed(key, exc)
        self._errors.pop(key, None)
        if written:
            self.written[key] = written
        return when

    def _peers(self, namespace: str, deployment: str) -> Iterable[str]:
        return list(self.serving.get((namespace, deployment), ()))

    def _failed(self, key: Key, exc: Exception) -> datetime:
        attempt = self._errors.get(key, 0)
        self._errors[key] = attempt + 1
        delay = ERROR_BACKOFF_SECONDS[min(attempt, len(ERROR_BACKOFF_SECONDS) - 1)]
        # Refusals by the API explain themselves; anything else gets its traceback once.
        trace = attempt == 0 and not isinstance(exc, ApiError)
        log.warning("%s %s/%s: reconcile failed (retry in %ss): %s", KIND, *key, delay, exc, exc_info=trace)
        return self._clock() + timedelta(seconds=delay)

    def _schedule(self, key: Key, when: datetime | None) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if when is None:
            return
        # A little late rather than early: the timer loop has its own clock.
        delay = max(0.0, (when - self._clock()).total_seconds()) + 0.05
        self._timers[key] = asyncio.get_running_loop().call_later(delay, self.kick, key)

"""The reconcile queue: one reconcile at a time per object, kicks coalesced, deadlines and retries as timers.

The queue gets its reconcile function and its clock as arguments: here a script and a clock the test sets."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from freshness_operator.kube import ApiError
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile import Clock, utcnow
from freshness_operator.reconcile_queue import ReconcileQueue


class Script:
    """Stands in for reconcile(): records calls, returns or raises what the test queued; with
    ``hang`` set, a call never returns (a reconcile stuck on the API)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.failures: list[int] = []  # what each call was told of the failures before it
        self.hang = False

    async def __call__(self, namespace: str, name: str, peers: Any, failures: int) -> tuple[Any, str | None]:
        self.calls += 1
        if self.hang:
            await asyncio.Event().wait()
        self.failures.append(failures)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        outcome = self.outcomes.pop(0) if self.outcomes else (None, None)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def make(script: Script, clock: Clock | None = None) -> ReconcileQueue:
    if clock is None:
        return ReconcileQueue(script, metrics=Metrics())  # the default clock, as the handlers build it
    return ReconcileQueue(script, clock=clock, metrics=Metrics())


async def settle(runner: ReconcileQueue, seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)
    await asyncio.gather(*list(runner._tasks))


def test_kicks_while_running_collapse_into_one_more_run() -> None:
    script = Script()

    async def go() -> None:
        r = make(script)
        for _ in range(10):
            r.kick(("ml", "cats"))
        await settle(r)
        await r.close()

    asyncio.run(go())
    assert script.max_running == 1
    assert script.calls <= 2


def test_deadline_becomes_a_timer_and_own_writes_are_recognised() -> None:
    script = Script((utcnow() + timedelta(seconds=1), "42"))

    async def go() -> None:
        r = make(script)
        r.kick(("ml", "cats"))
        await settle(r)
        assert r.is_own_write(("ml", "cats"), "42") and not r.is_own_write(("ml", "cats"), "43")
        assert ("ml", "cats") in r._timers
        for _ in range(100):  # the timer fires about a second later; allow a loaded machine
            if script.calls == 2:
                break
            await asyncio.sleep(0.05)
        await settle(r, 0.2)
        await r.close()

    asyncio.run(go())
    assert script.calls == 2  # the timer fired, once


def test_a_deadline_at_a_whole_second_fires_at_that_second_not_up_to_one_later() -> None:
    """Decisions and the status have whole seconds (``utcnow``); the queue as the handlers build it
    measures the timer's delay on the wall clock, so a check due at second T starts just after T.
    Measured from a truncated clock the timer fired up to a second late (p99 due -> Job ~1 s)."""
    fired: list[float] = []

    class Timed(Script):
        async def __call__(self, namespace: str, name: str, peers: Any, failures: int) -> tuple[Any, str | None]:
            fired.append(time.time())
            return await super().__call__(namespace, name, peers, failures)

    async def go() -> None:
        while time.time() % 1 < 0.7:  # late in a second: a truncated clock is 0.7-1 s behind
            await asyncio.sleep(0.01)
        due = utcnow() + timedelta(seconds=2)
        script = Timed((due, None))
        r = make(script)
        r.kick(("ml", "cats"))
        while len(fired) < 2:
            await asyncio.sleep(0.01)
        await settle(r)
        await r.close()
        assert fired[1] >= due.timestamp()
        assert fired[1] - due.timestamp() < 0.5, f"fired {fired[1] - due.timestamp():.2f}s after its deadline"

    asyncio.run(asyncio.wait_for(go(), 30))


def test_conflict_reruns_at_once_and_errors_back_off() -> None:
    script = Script(ApiError(409, "Conflict", "stale"), (None, None), ApiError(500, "InternalError", "boom"))

    async def go() -> None:
        r = make(script)
        r.kick(("ml", "cats"))
        await settle(r)
        assert script.calls == 2 and ("ml", "cats") not in r._timers
        r.kick(("ml", "cats"))
        await settle(r)
        assert script.calls == 3 and ("ml", "cats") in r._timers  # retry scheduled
        r.kick(("ml", "cats"))
        await settle(r)
        assert script.failures == [0, 0, 0, 1]  # a 409 is no failure; the 500 is, and the retry knows it
        r.forget(("ml", "cats"))
        assert ("ml", "cats") not in r._timers
        await r.close()

    asyncio.run(go())


def test_the_deadline_timer_is_measured_on_the_given_clock() -> None:
    """A reconcile asking to be woken an hour after the queue's clock gets a timer an hour out,
    whatever the wall clock says: the clock is the one handed to the queue."""
    then = datetime(2030, 1, 1, tzinfo=UTC)
    script = Script((then + timedelta(hours=1), None))

    async def go() -> None:
        r = make(script, clock=lambda: then)
        r.kick(("ml", "cats"))
        await settle(r)
        delay = r._timers[("ml", "cats")].when() - asyncio.get_running_loop().time()
        assert 3590 < delay <= 3600.1
        await r.close()

    asyncio.run(go())


def test_a_deleted_object_leaves_no_lock_behind_even_when_deleted_mid_reconcile() -> None:
    script = Script()

    async def go() -> None:
        r = make(script)
        r.kick(("ml", "cats"))
        await settle(r)
        r.forget(("ml", "cats"))
        assert ("ml", "cats") not in r._locks
        script.hang = True
        r.kick(("ml", "dogs"))
        await asyncio.sleep(0.05)
        r.forget(("ml", "dogs"))  # its reconcile still holds the lock: dropped when that task ends
        assert ("ml", "dogs") in r._locks
        await r.close()
        assert r._locks == {}

    asyncio.run(go())

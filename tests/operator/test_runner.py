"""The runner: one reconcile at a time per object, kicks coalesced, deadlines and retries as timers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from freshness_operator import runner as runner_module
from freshness_operator.cache import Cache
from freshness_operator.kube import ApiError
from freshness_operator.metrics import Metrics
from freshness_operator.reconcile import Deps, utcnow
from freshness_operator.runner import Runner
from freshness_operator.settings import Settings


class Script:
    """Stands in for reconcile(): records calls, returns or raises what the test queued."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.failures: list[int] = []  # what each call was told of the failures before it

    async def __call__(
        self, deps: Deps, namespace: str, name: str, peers: Any = None, failures: int = 0
    ) -> tuple[Any, str | None]:
        self.calls += 1
        self.failures.append(failures)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        outcome = self.outcomes.pop(0) if self.outcomes else (None, None)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def make(monkeypatch: pytest.MonkeyPatch, script: Script) -> Runner:
    monkeypatch.setattr(runner_module, "reconcile", script)
    return Runner(Deps(kube=None, settings=Settings(), metrics=Metrics(), cache=Cache()))  # type: ignore[arg-type]


async def settle(runner: Runner, seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)
    await asyncio.gather(*list(runner._tasks))


def test_kicks_while_running_collapse_into_one_more_run(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script()

    async def go() -> None:
        r = make(monkeypatch, script)
        for _ in range(10):
            r.kick(("ml", "cats"))
        await settle(r)
        await r.close()

    asyncio.run(go())
    assert script.max_running == 1
    assert script.calls <= 2


def test_deadline_becomes_a_timer_and_own_writes_are_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script((utcnow() + timedelta(seconds=1), "42"))

    async def go() -> None:
        r = make(monkeypatch, script)
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


def test_conflict_reruns_at_once_and_errors_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script(ApiError(409, "Conflict", "stale"), (None, None), ApiError(500, "InternalError", "boom"))

    async def go() -> None:
        r = make(monkeypatch, script)
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

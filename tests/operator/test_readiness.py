"""kopf's "every index is filled" gate: N objects waiting, N toggles dropped, linear with the patch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from freshness_operator import readiness
from kopf._cogs.aiokits import aiotoggles

N = 200


def counting_set(methods: dict[str, Any]) -> tuple[aiotoggles.ToggleSet, list[int]]:
    """A ToggleSet(all) with the given make/drop methods, counting how often its state is evaluated
    (once per waiter per wake-up, plus the methods' own checks)."""
    calls = [0]

    def all_counted(states: Iterable[bool]) -> bool:
        calls[0] += 1
        return all(states)

    cls = type("Counted", (aiotoggles.ToggleSet,), dict(methods))
    return cls(all_counted), calls


async def gate(toggles: aiotoggles.ToggleSet) -> list[int]:
    """kopf's start-up: one toggle per object, every object's worker drops its own and waits for all."""
    made = [await toggles.make_toggle(name=f"object {i}") for i in range(N)]
    released: list[int] = []

    async def worker(i: int) -> None:
        await toggles.wait_for(True)
        released.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(N)]
    for toggle in made[:-1]:
        await toggles.drop_toggle(toggle)
        await asyncio.sleep(0)  # let the woken workers run, as the watch stream does between objects
    await asyncio.sleep(0.01)
    assert released == [], "a worker went on before every object was indexed"
    await toggles.drop_toggles([made[-1]])
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)
    return sorted(released)


@pytest.mark.parametrize("methods", ["kopf", "linear"])
def test_gate_opens_once_every_toggle_is_dropped(methods: str) -> None:
    toggles, _ = counting_set(readiness.KOPF_METHODS if methods == "kopf" else readiness.LINEAR)
    assert asyncio.run(gate(toggles)) == list(range(N))


def test_the_patched_gate_wakes_each_waiter_once_not_once_per_object() -> None:
    kopfs, kopf_calls = counting_set(readiness.KOPF_METHODS)
    ours, our_calls = counting_set(readiness.LINEAR)
    asyncio.run(gate(kopfs))
    asyncio.run(gate(ours))
    assert kopf_calls[0] > N * N / 4  # what made the start-up at 1,000 objects take minutes
    assert our_calls[0] < 10 * N


def test_a_new_toggle_still_wakes_those_waiting_for_not_ready() -> None:
    async def scenario() -> bool:
        toggles, _ = counting_set(readiness.LINEAR)
        waiting = asyncio.create_task(toggles.wait_for(False))
        await asyncio.sleep(0)
        assert not waiting.done()  # empty: all() is True
        await toggles.make_toggle(name="late resource")
        await asyncio.wait_for(waiting, timeout=5)
        return True

    assert asyncio.run(scenario())


def test_patch_applies_to_kopfs_class_once() -> None:
    readiness.patch()
    assert aiotoggles.ToggleSet.drop_toggle is readiness.LINEAR["drop_toggle"]
    assert readiness.patch() is False

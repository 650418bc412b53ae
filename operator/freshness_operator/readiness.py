"""A linear start-up for kopf's "every index is filled" gate (kopf 1.3x-1.45; found at 1,000 objects).

kopf runs no handler until every index has its initial LIST: each object of an indexed resource
gets a toggle in one ``ToggleSet`` (the operator's "indexed" state), drops it once indexed, and
then every object's worker waits on that set (``wait_for(True)``). ``make_toggle`` and
``drop_toggle`` call ``notify_all`` on the set's condition, so each of the N drops wakes all the
waiting workers, which re-take the lock one by one to find the set still not ready: N² wake-ups.
Our operator indexes ModelDeployments, Deployments, Jobs and pods, so a namespace with 1,000
ModelDeployments (and their 1,000 Deployments and 1,000 serving pods) made ~9 million wake-ups
before the first reconcile: 40 s of one core on an idle machine, minutes under load; at 10,000
(30,000 objects) a hundred times that.

A set's members change only through these three methods, and a member's own state through
``Toggle.turn_to``, which notifies by itself. So a change of the membership matters only to those
waiting on the set's aggregate state (``is_on``), and only when that state flips: ``patch`` makes
the three methods notify then, and only then. Waiters on a single toggle are unaffected.

Applied once, before ``kopf.operator`` runs (``__main__``); it checks the class still has the
attributes it relies on and refuses (``PatchError``) when kopf changed them, rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

NEEDED = ("_condition", "_toggles", "is_on", "make_toggle", "drop_toggle", "drop_toggles")
KOPF_METHODS = {name: getattr(aiotoggles.ToggleSet, name) for name in NEEDED[3:]}  # as imported, for tests


class PatchError(RuntimeError):
    """kopf's ToggleSet is not the one this patch was written for."""


async def _make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        was = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != was:
            self._condition.notify_all()
    return toggle


async def _drop_toggles(self: Any, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        was = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != was:
            self._condition.notify_all()


async def _drop_toggle(self: Any, toggle: aiotoggles.Toggle) -> None:
    await _drop_toggles(self, (toggle,))


LINEAR = {"make_toggle": _make_toggle, "drop_toggle": _drop_toggle, "drop_toggles": _drop_toggles}


def patch() -> bool:
    """Make ``ToggleSet`` notify only when its aggregate state flips; idempotent. True if applied now."""
    cls: Any = aiotoggles.ToggleSet
    if getattr(cls, "_freshness_linear", False):
        return False
    probe = cls(all)
    missing = [name for name in NEEDED if not hasattr(probe, name)]
    if missing:
        raise PatchError(f"kopf's ToggleSet has no {', '.join(missing)}: the start-up patch does not fit this kopf")
    for name, method in LINEAR.items():
        setattr(cls, name, method)
    cls._freshness_linear = True
    return True

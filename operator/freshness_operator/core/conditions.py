"""Condition helpers in the Kubernetes style: they take ``now`` and say whether anything changed. Pure."""

from __future__ import annotations

from datetime import datetime

from freshness_operator.core.status import Condition


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int,
) -> bool:
    """Set a condition in place; lastTransitionTime moves only when ``status`` changes.

    Returns True when the status or reason changed (the caller may emit an Event then).
    """
    current = next((c for c in conditions if c.type == type_), None)
    if current is None:
        conditions.append(Condition(type_, status, reason, message, now, generation))
        return True
    changed = current.status != status or current.reason != reason
    if current.status != status:
        current.last_transition_time = now
    current.status, current.reason, current.message = status, reason, message
    current.observed_generation = generation
    return changed


def stamp(conditions: list[Condition], generation: int) -> None:
    """Every condition says which generation it was judged for, even one no step touched."""
    for condition in conditions:
        condition.observed_generation = generation

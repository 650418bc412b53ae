"""Labels on everything the operator creates (docs/contracts.md). Pure.

The keys belong to the contract (``freshness_contract.labels``); this module builds label sets.
"""

from __future__ import annotations

from freshness_contract.labels import (
    CANDIDATE,
    CHECK,
    CONTAINER,
    DEPLOYMENT,
    MANAGED_BY,
    MANAGER,
    OVERRIDES,
    RETRAIN,
    STEP,
)

from freshness_operator.core import names

CHECK_NOW = names.CHECK_NOW  # annotation on a ModelDeployment: a new value asks for a drift check now
SERVING_FOR = names.SERVING_FOR  # on the serving Deployment, set by its owner: the opt-in
# Kueue's label on a Job (not its pods): the LocalQueue that admits it (spec.training.queue).
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

__all__ = [
    "CANDIDATE",
    "CHECK",
    "CHECK_NOW",
    "CONTAINER",
    "DEPLOYMENT",
    "KUEUE_QUEUE",
    "MANAGED_BY",
    "MANAGER",
    "OVERRIDES",
    "RETRAIN",
    "SERVING_FOR",
    "STEP",
    "for_child",
    "selector",
]


def for_child(mdep: str, step: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, DEPLOYMENT: names.label_value(mdep), STEP: step}


def selector(mdep: str) -> str:
    """Label selector for every child of one ModelDeployment."""
    return f"{MANAGED_BY}={MANAGER},{DEPLOYMENT}={names.label_value(mdep)}"

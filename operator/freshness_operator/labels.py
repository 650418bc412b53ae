"""Label and annotation keys on everything the operator creates (docs/contracts.md). Pure."""

from __future__ import annotations

from freshness_operator.core import names

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "model-freshness-operator"
DEPLOYMENT = "modelfreshness.io/deployment"
STEP = "modelfreshness.io/step"
CHECK = "modelfreshness.io/check"  # drift Jobs: the check number
RETRAIN = "modelfreshness.io/retrain"  # train and package Jobs: the retrain number
CANDIDATE = "modelfreshness.io/candidate"  # train Jobs: the candidate index
OVERRIDES = "modelfreshness.io/overrides"  # annotation: the candidate's -S overrides as JSON
CHECK_NOW = names.CHECK_NOW  # annotation on a ModelDeployment: a new value asks for a drift check now
CONTAINER = "main"  # the step's container; its termination message is the result
SERVING_FOR = names.SERVING_FOR  # on the serving Deployment, set by its owner: the opt-in


def for_child(mdep: str, step: str) -> dict[str, str]:
    return {MANAGED_BY: MANAGER, DEPLOYMENT: names.label_value(mdep), STEP: step}


def selector(mdep: str) -> str:
    """Label selector for every child of one ModelDeployment."""
    return f"{MANAGED_BY}={MANAGER},{DEPLOYMENT}={names.label_value(mdep)}"

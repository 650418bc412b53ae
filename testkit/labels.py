"""The label keys on everything the operator creates, as the contract defines them (never copied here).

``SERVING_FOR`` is the opt-in label a user puts on a serving Deployment; the operator defines it.
"""

from __future__ import annotations

from freshness_contract.labels import CANDIDATE, CHECK, CONTAINER, DEPLOYMENT, MANAGED_BY, MANAGER, RETRAIN, STEP
from freshness_operator.core.names import SERVING_FOR

__all__ = ["CANDIDATE", "CHECK", "CONTAINER", "DEPLOYMENT", "MANAGED_BY", "MANAGER", "RETRAIN", "SERVING_FOR", "STEP"]

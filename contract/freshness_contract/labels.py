"""Label and annotation keys on everything the operator creates (docs/contracts.md). Pure."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "model-freshness-operator"
DEPLOYMENT = "modelfreshness.io/deployment"
STEP = "modelfreshness.io/step"
CHECK = "modelfreshness.io/check"  # drift Jobs: the check number
RETRAIN = "modelfreshness.io/retrain"  # train and package Jobs: the retrain number
CANDIDATE = "modelfreshness.io/candidate"  # train Jobs: the candidate index
OVERRIDES = "modelfreshness.io/overrides"  # annotation: the candidate's -S overrides as JSON
CONTAINER = "main"  # the step's container; its termination message is the result

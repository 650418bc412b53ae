"""The contract between the operator and the trainer, owned by neither (docs/contracts.md).

The step result schema and its typed results, the step command lines, the labels on the step
Jobs and where a step writes its result. Needs only jsonschema: no torch, no kopf. The operator
and the trainer both import it; neither imports the other (.importlinter, ``independence``).
"""

from freshness_contract.codec import (
    MAX_MESSAGE_BYTES,
    RESULT_PATH_ENV,
    SCHEMA_VERSION,
    TERMINATION_LOG,
    encode,
    parse,
    schema,
    validate,
    write,
)
from freshness_contract.results import (
    Accuracy,
    DriftResult,
    EstimatedAccuracy,
    Novelty,
    PackageResult,
    ResultError,
    StepKind,
    StepResult,
    TrainResult,
)

__all__ = [
    "MAX_MESSAGE_BYTES",
    "RESULT_PATH_ENV",
    "SCHEMA_VERSION",
    "TERMINATION_LOG",
    "Accuracy",
    "DriftResult",
    "EstimatedAccuracy",
    "Novelty",
    "PackageResult",
    "ResultError",
    "StepKind",
    "StepResult",
    "TrainResult",
    "encode",
    "parse",
    "schema",
    "validate",
    "write",
]

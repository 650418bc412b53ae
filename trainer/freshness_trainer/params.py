"""Typed view of ``params.yaml`` (the only home of hyperparameters; docs/architecture.md, house rule 4).

``load`` reads the file and raises TrainerError(MissingParam / InvalidParam) naming the key, so a
stage fails with "params.yaml: missing key train.lr" rather than a KeyError traceback.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml
from freshness_contract.trigger import DEFAULT_ACCURACY_DROP, DEFAULT_THRESHOLD

from freshness_trainer.errors import TrainerError

T = TypeVar("T")


@dataclass(frozen=True)
class DataParams:
    """``data``: where the prepare stage takes its images from."""

    source: str
    """Image folder (a subfolder per class), local path or fsspec URI; '' = built-in sample set."""
    val_fraction: float
    """Share of each class held out for validation (evaluate stage, promotion metric val_acc)."""
    seed: int
    """Seed of the split and of the built-in sample set."""
    reference_per_class: int = 0
    """Images per class held out as the drift reference (``data/prepared/reference``): never trained
    on and not used to pick the epoch; the train stage records their outputs with the model. The
    sample set renders them in addition (the training split is unchanged); with ``data.source`` they
    are cut from each class before the train/val split. 0 = the validation split alone is the
    reference. Optional in params.yaml (older projects: 0)."""


@dataclass(frozen=True)
class TrainParams:
    """``train``: the model and its optimisation."""

    model_name: str
    """Only 'alexnet' (torchvision's) is supported."""
    num_classes: int
    """Output classes; must equal the number of class folders in the data."""
    hidden_units: int
    """Width of AlexNet's two hidden layers: 4096 is torchvision's AlexNet exactly (production);
    the CPU sample run uses a narrower head so it trains in seconds."""
    optimizer: str
    """'adamw' (learns from scratch in a few epochs) or 'sgd' (torchvision's reference recipe)."""
    lr: float
    momentum: float
    """SGD momentum, or AdamW's beta1."""
    batch_size: int
    epochs: int
    warmup_epochs: float
    """Linear learning-rate warm-up over this many epochs, then cosine decay to 0."""
    label_smoothing: float
    """Cross-entropy label smoothing (torchvision's reference recipes use 0.1)."""
    dropout: float
    """Dropout before AlexNet's two hidden layers (torchvision's ``alexnet(dropout=...)``, 0.5 there)."""
    image_size: int
    """Input side in px: 64 for the CPU sample run, 224 in production (AlexNet's native size)."""
    weights: str
    """Optional local state_dict file to start from ('' = random init); never downloaded."""
    seed: int
    compile: bool
    """torch.compile the model (GPU path only)."""


@dataclass(frozen=True)
class EvaluateParams:
    """``evaluate``: scoring the trained model on the validation split."""

    batch_size: int


@dataclass(frozen=True)
class DriftParams:
    """``drift``: defaults of ``freshness-trainer drift`` (the operator passes its own values)."""

    threshold: float
    """Drift when 1 - the Simes-combined p-value of the per-feature tests reaches this (see
    freshness_trainer.drift_rule): freshness_contract.trigger.DEFAULT_THRESHOLD."""
    min_samples: int
    accuracy_drop: float
    """Labelled production: drift when accuracy falls more than this below the reference accuracy."""
    pca_components: int
    stattest_threshold: float
    """p-value under which one feature counts as drifted (Evidently's default, 0.05)."""


# The drift step's defaults when no params.yaml is given (tests check params.yaml agrees).
DRIFT_DEFAULTS = DriftParams(threshold=DEFAULT_THRESHOLD, min_samples=200, accuracy_drop=DEFAULT_ACCURACY_DROP,
                             pca_components=3, stattest_threshold=0.05)


@dataclass(frozen=True)
class Params:
    data: DataParams
    train: TrainParams
    evaluate: EvaluateParams
    drift: DriftParams


def _section(doc: dict[str, Any], name: str, cls: type[T]) -> T:
    raw = doc.get(name)
    if not isinstance(raw, dict):
        raise TrainerError("MissingParam", f"params.yaml: missing section {name}")
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in raw and f.default is not MISSING:
            values[f.name] = f.default
            continue
        if f.name not in raw:
            raise TrainerError("MissingParam", f"params.yaml: missing key {name}.{f.name}")
        value, kind = raw[f.name], f.type
        try:
            values[f.name] = _coerce(value, kind)
        except (TypeError, ValueError) as exc:
            raise TrainerError("InvalidParam", f"params.yaml: {name}.{f.name}={value!r} is not a {kind}") from exc
    return cls(**values)


def _coerce(value: Any, kind: Any) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(kind)
        return value
    if kind == "int":
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError(kind)
        return int(value)
    if kind == "float":
        return float(value)
    return "" if value is None else str(value)


def parse(doc: Any) -> Params:
    """Validate a decoded params document. Pure."""
    if not isinstance(doc, dict):
        raise TrainerError("InvalidParam", "params.yaml: the document is not a mapping")
    params = Params(
        data=_section(doc, "data", DataParams),
        train=_section(doc, "train", TrainParams),
        evaluate=_section(doc, "evaluate", EvaluateParams),
        drift=_section(doc, "drift", DriftParams),
    )
    if params.train.model_name != "alexnet":
        raise TrainerError("InvalidParam", f"params.yaml: train.model_name={params.train.model_name!r}; only 'alexnet'")
    if params.train.optimizer not in ("adamw", "sgd"):
        raise TrainerError("InvalidParam", f"params.yaml: train.optimizer={params.train.optimizer!r}; use adamw or sgd")
    if params.train.num_classes < 2:
        raise TrainerError("InvalidParam", "params.yaml: train.num_classes must be at least 2")
    for key in ("dropout", "label_smoothing"):
        value = getattr(params.train, key)
        if not 0.0 <= value < 1.0:
            raise TrainerError("InvalidParam", f"params.yaml: train.{key}={value}; must be in [0, 1)")
    if not 0.0 <= params.train.warmup_epochs < max(params.train.epochs, 1):
        raise TrainerError(
            "InvalidParam",
            f"params.yaml: train.warmup_epochs={params.train.warmup_epochs}; must be >= 0 and below train.epochs",
        )
    if params.data.reference_per_class < 0:
        raise TrainerError("InvalidParam", f"params.yaml: data.reference_per_class={params.data.reference_per_class}; "
                                           "must be >= 0 (0 = the validation split is the drift reference)")
    if params.train.image_size < 63:
        raise TrainerError("InvalidParam", "params.yaml: train.image_size must be at least 63 px for AlexNet")
    return params


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``. Touches the filesystem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TrainerError("MissingParam", f"params file {path} not found") from exc
    return parse(yaml.safe_load(text))

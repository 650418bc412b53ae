"""Typed step results: what a validated result document says, as frozen dataclasses. Pure.

``freshness_contract.codec`` validates a document against the JSON schema and then builds these;
readers (the operator) use the attributes, never the raw dict. Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

# REPO:TAG@sha256:<64 hex>, the only form a package result may report (the schema's pattern too).
IMAGE_PATTERN = re.compile(r"(?:[^\s@/]+/)*[^\s@/:]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}")


class StepKind(StrEnum):
    """The ``step`` of a result document; evaluate and publish report a ``train`` section."""

    DRIFT = "drift"
    TRAIN = "train"
    EVALUATE = "evaluate"
    PUBLISH = "publish"
    PACKAGE = "package"

    @property
    def section(self) -> str:
        """The key of the section this step's result carries when ``ok`` is true."""
        return "train" if self in (StepKind.EVALUATE, StepKind.PUBLISH) else self.value


class ResultError(ValueError):
    """A step result that is missing, oversized or malformed. ``reason`` is CamelCase for Events."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Accuracy:
    """The serving model's accuracy on labelled production data beside its reference accuracy."""

    current: float | None = None
    reference: float | None = None
    drop: float | None = None


@dataclass(frozen=True)
class EstimatedAccuracy:
    """The serving model's accuracy on the window estimated without labels, with a 95% interval."""

    value: float
    low: float
    high: float
    reference: float | None = None  # its accuracy on its held-out split


@dataclass(frozen=True)
class Novelty:
    """Share of the window far from the reference in the embedding space, and its test."""

    share: float
    reference_rate: float
    p_value: float
    detected: bool


@dataclass(frozen=True)
class Window:
    """The samples a check read from a time-partitioned capture: how many, and their time range."""

    samples: int
    start: str | None = None  # RFC 3339, UTC
    end: str | None = None


@dataclass(frozen=True)
class DriftResult:
    detected: bool
    share: float  # share of features whose per-feature test drifted
    score: float  # the decision statistic compared with the threshold
    method: str
    samples: int
    threshold: float | None = None
    reference_samples: int | None = None
    top_features: tuple[str, ...] = ()
    report: str | None = None  # where the HTML report was written
    accuracy: Accuracy | None = None  # only when the production data was labelled
    window: Window | None = None  # only when the production data was a time-partitioned capture
    estimated_accuracy: EstimatedAccuracy | None = None  # only when the model file has a calibration
    novelty: Novelty | None = None
    reference_kind: str | None = None  # heldOut | folder


@dataclass(frozen=True)
class TrainResult:
    """A train, evaluate or publish result: the experiment and its metrics."""

    metrics: dict[str, float] = field(default_factory=dict)
    experiment: str | None = None
    rev: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # where the model file was published
    baseline_metrics: dict[str, float] | None = None  # the serving model's, on the same data


@dataclass(frozen=True)
class PackageResult:
    image: str  # REPO:TAG@sha256:<64 hex>
    digest: str  # sha256:<64 hex>, the same as in image

    @property
    def reference(self) -> str:
        """The image without its digest: ``REPO:TAG``."""
        return self.image.rsplit("@", 1)[0]


Section = DriftResult | TrainResult | PackageResult
_S = TypeVar("_S", DriftResult, TrainResult, PackageResult)


@dataclass(frozen=True)
class StepResult:
    """A validated result document: the envelope and, when ``ok``, the step's typed section."""

    step: StepKind
    ok: bool
    reason: str = ""
    message: str = ""
    section: Section | None = None

    @property
    def drift(self) -> DriftResult:
        """The drift section; raises ResultError when the result carries none."""
        return self._section(DriftResult, "drift")

    @property
    def train(self) -> TrainResult:
        """The train section (train, evaluate, publish); raises ResultError when there is none."""
        return self._section(TrainResult, "train")

    @property
    def package(self) -> PackageResult:
        """The package section; raises ResultError when the result carries none."""
        return self._section(PackageResult, "package")

    def _section(self, kind: type[_S], name: str) -> _S:
        if not isinstance(self.section, kind):
            raise ResultError("MalformedResult", f"result field {name}: absent from this {self.step.value} result")
        return self.section


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _floats(d: dict[str, Any] | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (d or {}).items()}


def drift_result(d: dict[str, Any]) -> DriftResult:
    acc = d.get("accuracy")
    return DriftResult(
        detected=bool(d["detected"]),
        share=float(d["share"]),
        score=float(d["score"]),
        method=str(d["method"]),
        samples=int(d["samples"]),
        threshold=float(d["threshold"]) if "threshold" in d else None,
        reference_samples=int(d["referenceSamples"]) if "referenceSamples" in d else None,
        top_features=tuple(d.get("topFeatures") or ()),
        report=d.get("report"),
        accuracy=Accuracy(*(_float(acc.get(k)) for k in ("current", "reference", "drop"))) if acc is not None else None,
        window=Window(int(w["samples"]), w.get("start"), w.get("end")) if (w := d.get("window")) is not None else None,
        estimated_accuracy=_estimate(d.get("estimatedAccuracy")),
        novelty=_novelty(d.get("novelty")),
        reference_kind=d.get("referenceKind"),
    )


def _estimate(e: dict[str, Any] | None) -> EstimatedAccuracy | None:
    if e is None:
        return None
    return EstimatedAccuracy(float(e["value"]), float(e["low"]), float(e["high"]), _float(e.get("reference")))


def _novelty(n: dict[str, Any] | None) -> Novelty | None:
    if n is None:
        return None
    return Novelty(float(n["share"]), float(n["referenceRate"]), float(n["pValue"]), bool(n["detected"]))


def train_result(d: dict[str, Any]) -> TrainResult:
    return TrainResult(
        metrics=_floats(d["metrics"]),
        experiment=d.get("experiment"),
        rev=d.get("rev"),
        params=dict(d.get("params") or {}),
        model=d.get("model"),
        baseline_metrics=_floats(d["baselineMetrics"]) if "baselineMetrics" in d else None,
    )


def package_result(d: dict[str, Any]) -> PackageResult:
    return PackageResult(image=str(d["image"]), digest=str(d["digest"]))


def section_of(step: StepKind, doc: dict[str, Any]) -> Section | None:
    """The typed section of a schema-valid document, or None when it carries none."""
    raw = doc.get(step.section)
    if raw is None:
        return None
    if step.section == "drift":
        return drift_result(raw)
    if step.section == "train":
        return train_result(raw)
    return package_result(raw)

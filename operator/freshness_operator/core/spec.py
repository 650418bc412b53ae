"""The ModelDeployment spec as typed values, parsed once per reconcile. Pure.

The CRD validates and defaults. Each default is written once more here, as the dataclasses'
field defaults (the parser reads those, never a literal of its own), so the core also works on
objects written before a default existed; tests/operator/test_crd.py applies the CRD's
``default:`` values to a minimal spec and checks that it parses to the same Spec, so the two
cannot drift apart. Durations and schedules become numbers here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from freshness_contract.trigger import DEFAULT_POLICY, DEFAULT_THRESHOLD, POLICIES

from freshness_operator.core.times import Cron, parse_duration

DEFAULT_INTERVAL_SECONDS = 6 * 3600


class SpecError(ValueError):
    """A spec the CRD let through but the operator cannot act on; ``field`` is its path."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Source:
    repo: str
    revision: str = "main"
    credentials_secret: str | None = None


@dataclass(frozen=True)
class Data:
    reference: str
    current: str


@dataclass(frozen=True)
class Serving:
    deployment: str
    container: str
    image: str
    model_uri: str | None = None


@dataclass(frozen=True)
class Drift:
    interval_seconds: int | None = DEFAULT_INTERVAL_SECONDS
    schedule: Cron | None = None
    threshold: float = DEFAULT_THRESHOLD
    min_samples: int = 200
    consecutive: int = 1
    accuracy_drop: float | None = None
    report_dir: str | None = None
    timeout_seconds: int = 3600
    resources: dict[str, Any] = field(default_factory=dict)
    window: str | None = None
    """Of a time-partitioned capture, only samples this recent (the trainer's ``--window``, e.g. 24h)."""
    newest: int | None = None
    """Of a time-partitioned capture, at most this many of the newest samples (``--newest``)."""
    trigger: str = DEFAULT_POLICY
    """Which signals of a check start a retrain: ``impact`` or ``distribution`` (freshness_contract.trigger)."""


@dataclass(frozen=True)
class Training:
    image: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    candidates: tuple[dict[str, Any], ...] = ({},)
    max_parallel: int = 1
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    timeout_seconds: int = 7200
    backoff_limit: int = 1
    remote: str | None = None
    nodes: int = 1
    """Pods per candidate; above 1 an Indexed Job with a headless Service (builders.train_job)."""
    gpus_per_node: int | None = None
    """Each training pod's nvidia.com/gpu limit and its torchrun processes; None: resources as given."""
    queue: str | None = None  # a Kueue LocalQueue: its label goes on every training Job


@dataclass(frozen=True)
class Package:
    base_image: str | None = None
    push: bool = True
    timeout_seconds: int = 3600
    queue: str | None = None  # a Kueue LocalQueue for the package Job (opt-in; it needs no GPU)


@dataclass(frozen=True)
class Promotion:
    metric: str = "val_acc"
    min_improvement: float = 0.0
    min_value: float = 0.0


@dataclass(frozen=True)
class Rollout:
    progress_deadline_seconds: int = 600
    auto_rollback: bool = True


@dataclass(frozen=True)
class Policy:
    cooldown_seconds: int = 24 * 3600
    max_retrains_per_day: int = 2


@dataclass(frozen=True)
class Spec:
    """Typed ModelDeployment spec (docs/architecture.md §1)."""

    source: Source
    data: Data
    serving: Serving
    paused: bool = False
    drift: Drift = field(default_factory=Drift)
    training: Training = field(default_factory=Training)
    package: Package = field(default_factory=Package)
    promotion: Promotion = field(default_factory=Promotion)
    rollout: Rollout = field(default_factory=Rollout)
    policy: Policy = field(default_factory=Policy)
    env: tuple[dict[str, Any], ...] = ()


def _duration(section: dict[str, Any], key: str, path: str, default: int) -> int:
    if key not in section:
        return default
    try:
        return parse_duration(str(section[key]))
    except ValueError as exc:
        raise SpecError(f"{path}.{key}", str(exc)) from exc


def _required(section: dict[str, Any], key: str, path: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{path}.{key}", "required")
    return value


def _overrides(value: Any, path: str) -> dict[str, Any]:
    """``dvc exp run -S`` overrides with nested objects flattened to dotted keys.

    ``{train: {lr: 0.1}}`` becomes ``{"train.lr": 0.1}``: one override per leaf, so a nested object
    never replaces a whole section of params.yaml. A leaf given both nested and dotted is an error.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(path, "must be an object of parameter overrides, e.g. {train.lr: 0.01}")
    out: dict[str, Any] = {}
    for key, sub in value.items():
        leaves = _nested(sub, f"{path}.{key}", str(key)) if isinstance(sub, dict) else {str(key): sub}
        for dotted, leaf in leaves.items():
            if dotted in out:
                raise SpecError(f"{path}.{dotted}", "given twice (once nested, once as a dotted key)")
            out[dotted] = leaf
    return out


def _nested(section: dict[str, Any], path: str, prefix: str) -> dict[str, Any]:
    if not section:
        raise SpecError(path, "an empty object overrides nothing; name the keys to set, e.g. {lr: 0.01}")
    return {f"{prefix}.{k}": v for k, v in _overrides(section, path).items()}


def _drift(d: dict[str, Any]) -> Drift:
    schedule = None
    interval: int | None = DEFAULT_INTERVAL_SECONDS
    if "schedule" in d:
        try:
            schedule = Cron.parse(str(d["schedule"]))
        except ValueError as exc:
            raise SpecError("spec.drift.schedule", str(exc)) from exc
        interval = None
    else:
        interval = _duration(d, "interval", "spec.drift", DEFAULT_INTERVAL_SECONDS)
        if interval < 1:
            raise SpecError("spec.drift.interval", "must be at least 1s")
    accuracy = d.get("accuracyDrop")
    min_samples = int(d.get("minSamples", Drift.min_samples))
    if min_samples < 1:
        raise SpecError("spec.drift.minSamples", "must be at least 1")
    window = d.get("window")
    if window is not None and not re.fullmatch(r"0*[1-9][0-9]*[smhd]", str(window)):
        raise SpecError("spec.drift.window", "must be one positive number and a unit, such as 90m, 24h or 7d")
    newest = d.get("newest")
    if newest is not None and int(newest) < 1:
        raise SpecError("spec.drift.newest", "must be at least 1")
    trigger = d.get("trigger", Drift.trigger)
    if trigger not in POLICIES:
        raise SpecError("spec.drift.trigger", f"{trigger!r} is not one of {', '.join(POLICIES)}")
    return Drift(
        interval_seconds=interval,
        schedule=schedule,
        threshold=float(d.get("threshold", Drift.threshold)),
        min_samples=min_samples,
        consecutive=int(d.get("consecutive", Drift.consecutive)),
        accuracy_drop=None if accuracy is None else float(accuracy),
        report_dir=d.get("reportDir"),
        timeout_seconds=_duration(d, "timeout", "spec.drift", Drift.timeout_seconds),
        resources=dict(d.get("resources") or {}),
        window=None if window is None else str(window),
        newest=None if newest is None else int(newest),
        trigger=str(trigger),
    )


def _training(t: dict[str, Any]) -> Training:
    candidates = t.get("candidates", [{}])
    if not isinstance(candidates, list) or not candidates:
        raise SpecError("spec.training.candidates", "needs at least one candidate")
    nodes, gpus = int(t.get("nodes", Training.nodes)), t.get("gpusPerNode")
    if nodes < 1:
        raise SpecError("spec.training.nodes", f"must be 1 or more (pods per candidate), got {nodes}")
    if gpus is not None and int(gpus) < 1:
        raise SpecError("spec.training.gpusPerNode", f"must be 1 or more when set, got {gpus}")
    return Training(
        image=t.get("image"),
        params=_overrides(t.get("params"), "spec.training.params"),
        candidates=tuple(_overrides(c, f"spec.training.candidates[{i}]") for i, c in enumerate(candidates)),
        max_parallel=max(1, int(t.get("maxParallel", Training.max_parallel))),
        resources=dict(t.get("resources") or {}),
        node_selector=dict(t.get("nodeSelector") or {}),
        tolerations=tuple(t.get("tolerations") or ()),
        timeout_seconds=_duration(t, "timeout", "spec.training", Training.timeout_seconds),
        backoff_limit=int(t.get("backoffLimit", Training.backoff_limit)),
        remote=t.get("remote"),
        nodes=nodes,
        gpus_per_node=None if gpus is None else int(gpus),
        queue=t.get("queue") or None,
    )


def parse_spec(raw: dict[str, Any]) -> Spec:
    """Parse a ModelDeployment's ``spec``; raise SpecError naming the field. Pure."""
    source = raw.get("source") or {}
    data = raw.get("data") or {}
    serving = raw.get("serving") or {}
    package = raw.get("package") or {}
    promotion = raw.get("promotion") or {}
    rollout = raw.get("rollout") or {}
    policy = raw.get("policy") or {}
    return Spec(
        source=Source(
            repo=_required(source, "repo", "spec.source"),
            revision=source.get("revision", Source.revision),
            credentials_secret=source.get("credentialsSecret"),
        ),
        data=Data(_required(data, "reference", "spec.data"), _required(data, "current", "spec.data")),
        serving=Serving(
            deployment=_required(serving, "deployment", "spec.serving"),
            container=_required(serving, "container", "spec.serving"),
            image=_required(serving, "image", "spec.serving"),
            model_uri=serving.get("modelUri"),
        ),
        paused=bool(raw.get("paused", Spec.paused)),
        drift=_drift(raw.get("drift") or {}),
        training=_training(raw.get("training") or {}),
        package=Package(
            base_image=package.get("baseImage"),
            push=bool(package.get("push", Package.push)),
            timeout_seconds=_duration(package, "timeout", "spec.package", Package.timeout_seconds),
            queue=package.get("queue") or None,
        ),
        promotion=Promotion(
            metric=promotion.get("metric", Promotion.metric),
            min_improvement=float(promotion.get("minImprovement", Promotion.min_improvement)),
            min_value=float(promotion.get("minValue", Promotion.min_value)),
        ),
        rollout=Rollout(
            progress_deadline_seconds=int(rollout.get("progressDeadlineSeconds", Rollout.progress_deadline_seconds)),
            auto_rollback=bool(rollout.get("autoRollback", Rollout.auto_rollback)),
        ),
        policy=Policy(
            cooldown_seconds=_duration(policy, "cooldown", "spec.policy", Policy.cooldown_seconds),
            max_retrains_per_day=int(policy.get("maxRetrainsPerDay", Policy.max_retrains_per_day)),
        ),
        env=tuple(raw.get("env") or ()),
    )

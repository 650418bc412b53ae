"""The step command lines: what the operator's Jobs run and what ``freshness-trainer`` parses.

One frozen dataclass per step; its fields are the options (``min_samples`` is ``--min-samples``).
``to_argv`` (the operator's side) and ``add_arguments`` / ``from_namespace`` (the trainer's side)
are both derived from the same fields, so the two ends cannot disagree about a flag's name, its
type or whether it is required. Pure.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar, Self

from freshness_contract.results import StepKind
from freshness_contract.trigger import DEFAULT_THRESHOLD

COMMAND = "freshness-trainer"


def _opt(help: str, default: Any = None, *, flag: str | None = None, metavar: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "metavar": metavar})


def _req(help: str, *, metavar: str | None = None) -> Any:
    return field(metadata={"help": help, "flag": None, "metavar": metavar})


def _flag(f: Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _base_type(hint: Any) -> Any:
    """``float | None`` -> float; ``tuple[str, ...]`` -> tuple."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


@dataclass(frozen=True)
class StepArgs:
    """Base of the per-step arguments; subclasses set ``STEP`` and declare the options as fields."""

    STEP: ClassVar[StepKind]

    def to_argv(self) -> list[str]:
        """``[step, --flag=value, ...]``: ``--flag=value`` so a value starting with ``-`` stays a value."""
        out = [self.STEP.value]
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            if value is True:
                out.append(_flag(f))
            elif isinstance(value, tuple):
                out += [f"{_flag(f)}={v}" for v in value]
            else:
                out.append(f"{_flag(f)}={value!r}" if isinstance(value, float) else f"{_flag(f)}={value}")
        return out

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Declare this step's options on an argparse (sub)parser."""
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            kind = _base_type(hints[f.name])
            extra: dict[str, Any] = {"dest": f.name, "help": f.metadata["help"]}
            if kind is bool:
                extra["action"] = "store_true"
            elif kind is tuple:
                extra.update(action="append", default=[], metavar=f.metadata["metavar"])
            else:
                extra.update(type=kind, metavar=f.metadata["metavar"])
                if f.default is MISSING:
                    extra["required"] = True
                else:
                    extra["default"] = f.default
            parser.add_argument(_flag(f), **extra)

    @classmethod
    def from_argv(cls, argv: list[str]) -> Self:
        """Read back what ``to_argv`` wrote (a Job's args); raises ValueError on anything else."""
        if not argv or argv[0] != cls.STEP.value:
            raise ValueError(f"expected the {cls.STEP.value} step's arguments, got {argv[:1]}")
        parser = argparse.ArgumentParser(prog=f"{COMMAND} {cls.STEP.value}", exit_on_error=False, add_help=False)
        cls.add_arguments(parser)
        try:
            return cls.from_namespace(parser.parse_args(argv[1:]))
        except (argparse.ArgumentError, SystemExit) as exc:  # argparse exits on a missing required option
            raise ValueError(f"not {cls.STEP.value} arguments: {argv}") from exc

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> Self:
        """The typed arguments from what ``add_arguments``' options parsed."""
        values = {f.name: getattr(ns, f.name) for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class DriftArgs(StepArgs):
    STEP: ClassVar[StepKind] = StepKind.DRIFT

    reference: str = _req("reference images to compare with (folder or URI, class subfolders)", metavar="URI")
    current: str = _req("production images (class subfolders = labelled)", metavar="URI")
    model: str | None = _opt("the serving model file", metavar="URI")
    threshold: float | None = _opt(
        "drift when the score, 1 - the Simes-combined p-value of the per-feature tests, reaches this "
        f"({DEFAULT_THRESHOLD}: at most 5%% false alarms per check)"
    )
    min_samples: int | None = _opt("fail with TooFewSamples below this many current images")
    accuracy_drop: float | None = _opt(
        "labelled current data: also drift when accuracy falls more than this below the model's recorded val_acc"
    )
    report: str | None = _opt("where to write the Evidently HTML report (path or URI)", metavar="URI")
    params: str | None = _opt(
        "params.yaml whose drift section supplies the defaults (threshold, min_samples, accuracy_drop, "
        "pca_components)",
        metavar="PATH",
    )
    device: str | None = _opt("cpu or cuda (default: cuda when available)")
    window: str | None = _opt("time-partitioned capture: only samples this recent (e.g. 24h, 90m, 7d)",
                              metavar="DURATION")
    newest: int | None = _opt("time-partitioned capture: at most the N newest samples", metavar="N")


@dataclass(frozen=True)
class TrainArgs(StepArgs):
    STEP: ClassVar[StepKind] = StepKind.TRAIN

    repo: str = _req("the DVC project's git URL or path", metavar="URL")
    rev: str = _opt("git revision to clone", "HEAD")
    overrides: tuple[str, ...] = _opt("dvc exp run -S override (repeatable)", (), flag="--set", metavar="KEY=VALUE")
    name: str | None = _opt("experiment name")
    baseline_model: str | None = _opt("serving model to score on the same validation data", metavar="URI")
    remote: str | None = _opt("DVC remote (directory or URI) to push the experiment's outputs to", metavar="URI")
    workdir: str | None = _opt("keep the clone here instead of a temporary directory", metavar="DIR")


@dataclass(frozen=True)
class PackageArgs(StepArgs):
    STEP: ClassVar[StepKind] = StepKind.PACKAGE

    model: str = _req("the model file to put in the image", metavar="URI")
    image: str = _req("the image to build", metavar="REPO:TAG")
    base_image: str | None = _opt(
        "image the model layer goes on (crane append on --push); default: the model server image "
        "(env FRESHNESS_SERVER_IMAGE); '' for a model-only image",
        metavar="REF",
    )
    output: str = _opt("directory of the OCI layout", "image-layout", metavar="DIR")
    push: bool = _opt("push with crane", False)

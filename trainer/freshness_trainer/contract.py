"""The Job -> operator result contract (DESIGN.md §3), defined once and validated at both ends.

A step's main container writes one JSON document (< 4 KiB) to its termination message; the
operator reads it from the finished pod's status. This module is pure (no I/O except reading the
packaged schema once) and must not import torch: the operator image imports it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

SCHEMA_VERSION = "modelfreshness.io/result/v1"
# Kubernetes truncates termination messages at 4096 bytes; a truncated JSON would be malformed.
MAX_MESSAGE_BYTES = 4096
DEFAULT_TERMINATION_LOG = "/dev/termination-log"


class ResultError(ValueError):
    """A step result that is missing, oversized or malformed. ``reason`` is CamelCase for events."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class StepResult:
    """A validated step result. ``doc`` is the whole document as validated."""

    step: str
    ok: bool
    reason: str
    message: str
    doc: dict[str, Any]

    @property
    def drift(self) -> dict[str, Any]:
        return dict(self.doc.get("drift") or {})

    @property
    def train(self) -> dict[str, Any]:
        return dict(self.doc.get("train") or {})

    @property
    def package(self) -> dict[str, Any]:
        return dict(self.doc.get("package") or {})


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of result documents (packaged file, read once)."""
    text = resources.files("freshness_trainer").joinpath("schemas/result-v1.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(doc: Any, *, expected_step: str | None = None) -> StepResult:
    """Validate a decoded document; raise ResultError naming the offending field. Pure."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(document)"
        raise ResultError("MalformedResult", f"result field {where}: {err.message}")
    if expected_step is not None and doc["step"] != expected_step:
        raise ResultError("MalformedResult", f"result field step: got {doc['step']!r}, expected {expected_step!r}")
    if not doc["ok"] and not doc.get("reason"):
        raise ResultError("MalformedResult", "result field reason: required when ok is false")
    return StepResult(
        step=doc["step"], ok=doc["ok"], reason=doc.get("reason", ""), message=doc.get("message", ""), doc=doc
    )


def parse(message: str | None, *, expected_step: str | None = None) -> StepResult:
    """Parse a termination message as read from a pod's status. Pure; raises ResultError."""
    if message is None or not message.strip():
        raise ResultError("MissingResult", "the step's container wrote no termination message")
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ResultError("OversizedResult", f"termination message is over {MAX_MESSAGE_BYTES} bytes")
    try:
        doc = json.loads(message)
    except json.JSONDecodeError as exc:
        raise ResultError("MalformedResult", f"termination message is not JSON: {exc.msg} at char {exc.pos}") from exc
    return validate(doc, expected_step=expected_step)


def encode(doc: dict[str, Any]) -> str:
    """Validate and serialise a result compactly; raises ResultError if it would not be accepted."""
    doc = {"schemaVersion": SCHEMA_VERSION, **doc}
    validate(doc)
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ResultError("OversizedResult", f"result is {len(text)} bytes, over {MAX_MESSAGE_BYTES}")
    return text


def write(doc: dict[str, Any], path: str = DEFAULT_TERMINATION_LOG) -> str:
    """Encode and write a result to the termination-message path. Touches the filesystem."""
    text = encode(doc)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return text

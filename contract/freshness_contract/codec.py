"""Result documents on the wire: validate, parse, encode and write them (docs/architecture.md §3).

A step's main container writes one JSON document (< 4 KiB) to its termination message; the
operator reads it from the finished pod's status. ``parse`` turns any message into a typed
``StepResult`` or raises ``ResultError`` naming the field, never anything else. Pure, except
reading the packaged schema once and ``write``.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from freshness_contract.results import IMAGE_PATTERN, ResultError, StepKind, StepResult, section_of

SCHEMA_VERSION = "modelfreshness.io/result/v1"
# Kubernetes truncates termination messages at 4096 bytes; a truncated JSON would be malformed.
MAX_MESSAGE_BYTES = 4096
TERMINATION_LOG = "/dev/termination-log"
RESULT_PATH_ENV = "FRESHNESS_RESULT_PATH"  # the trainer writes its result where this says


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of result documents (packaged file, read once)."""
    text = resources.files("freshness_contract").joinpath("result-v1.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(schema())


def _field(err: jsonschema.ValidationError) -> str:
    """The dotted path of the offending field; for a missing one, the missing name."""
    path = [str(p) for p in err.absolute_path]
    if err.validator == "required" and isinstance(err.instance, dict):
        wanted = err.validator_value if isinstance(err.validator_value, list) else []
        missing = [str(k) for k in wanted if k not in err.instance]
        path += missing[:1]
    return ".".join(path) or "(document)"


def _why(err: jsonschema.ValidationError) -> str:
    if err.validator == "required" and isinstance(err.schema, dict) and "$comment" in err.schema:
        return str(err.schema["$comment"])  # the if/then rules say when a section is required
    if err.validator == "required":
        return "required"
    if err.validator == "pattern" and isinstance(err.schema, dict):
        return f"{str(err.instance)[:80]!r} is not of the form {err.schema.get('description') or err.validator_value}"
    return str(err.message)[:200]


def validate(doc: Any, *, expected_step: str | None = None) -> StepResult:
    """Validate a decoded document and type it; raise ResultError naming the offending field. Pure."""
    errors = sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise ResultError("MalformedResult", f"result field {_field(errors[0])}: {_why(errors[0])}")
    step = StepKind(doc["step"])
    if expected_step is not None and step.value != expected_step:
        raise ResultError("MalformedResult", f"result field step: got {step.value!r}, expected {expected_step!r}")
    package = doc.get("package")
    if package is not None:
        # The schema's pattern is an ECMA regex whose $ also matches before a final newline.
        if not IMAGE_PATTERN.fullmatch(package["image"]):
            raise ResultError("MalformedResult", "result field package.image: expected REPO:TAG@sha256:<64 hex>")
        if package["image"].rsplit("@", 1)[1] != package["digest"]:
            raise ResultError("MalformedResult", "result field package.digest: not the digest in package.image")
    estimate = (doc.get("drift") or {}).get("estimatedAccuracy")
    if estimate is not None and not estimate["low"] <= estimate["value"] <= estimate["high"]:
        raise ResultError("MalformedResult", "result field drift.estimatedAccuracy: expected low <= value <= high")
    section = section_of(step, doc) if doc["ok"] else None
    return StepResult(step, doc["ok"], doc.get("reason", ""), doc.get("message", ""), section)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse(message: str | bytes | None, *, expected_step: str | None = None) -> StepResult:
    """Parse a termination message as read from a pod's status. Pure; raises only ResultError."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResultError("MalformedResult", f"termination message is not UTF-8 (byte {exc.start})") from exc
    if message is None or not message.strip():
        raise ResultError("MissingResult", "the step's container wrote no termination message")
    if len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise ResultError("OversizedResult", f"termination message is over {MAX_MESSAGE_BYTES} bytes")
    try:
        doc = json.loads(message, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ResultError("MalformedResult", f"termination message is not JSON: {exc.msg} at char {exc.pos}") from exc
    except (ValueError, RecursionError) as exc:  # NaN, Infinity, 1e999, or nesting too deep to read
        raise ResultError("MalformedResult", f"termination message is not JSON the schema can accept: {exc}") from exc
    return validate(doc, expected_step=expected_step)


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite number in a document, or None. Pure."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(document)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found = _non_finite(inner, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def encode(doc: dict[str, Any]) -> str:
    """Validate and serialise a result compactly; raises ResultError if it would not be accepted."""
    doc = {"schemaVersion": SCHEMA_VERSION, **doc}
    validate(doc)
    where = _non_finite(doc)
    if where is not None:  # a diverged metric, say: the reader would refuse the document
        raise ResultError("MalformedResult", f"result field {where}: NaN and Infinity are not JSON numbers")
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True, allow_nan=False)
    if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise ResultError("OversizedResult", f"result is {len(text)} bytes, over {MAX_MESSAGE_BYTES}")
    return text


def write(doc: dict[str, Any], path: str = TERMINATION_LOG) -> str:
    """Encode and write a result to the termination-message path. Touches the filesystem."""
    text = encode(doc)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return text

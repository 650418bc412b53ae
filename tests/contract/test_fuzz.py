"""Fuzzing the result parser (Hypothesis, fixed budget, derandomized so ``make test`` is repeatable).

Whatever a step's container writes to its termination message, ``parse`` returns a typed result or
raises ResultError; and through observe + decide, no message ever makes the operator patch the
serving Deployment to an image other than ``<serving.image>:<version>@sha256:<64 hex>``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import freshness_contract as contract
from freshness_contract import results
from freshness_operator.core import actions as act
from freshness_operator.core.observed import JobKind
from freshness_operator.observe import outcome_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.operator.sim import Sim

BUDGET = settings(
    max_examples=300, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
SERVING = "registry.example/cats-dogs"  # tests/operator/sim.py's spec.serving.image
VERSION = "v1-rev00000"  # the version Sim.to_packaging() builds
ALLOWED = re.compile(re.escape(f"{SERVING}:{VERSION}") + r"@sha256:[0-9a-f]{64}")
HEX = "0123456789abcdef"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
digests = st.builds(lambda h: f"sha256:{h}", st.text(HEX, min_size=63, max_size=65)) | st.text(max_size=20)
pinned_hex = st.text(HEX, min_size=64, max_size=64)


@st.composite
def package_sections(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly schema-valid package sections (image pinned by the digest reported beside it) whose
    repository and tag vary, sometimes broken in the digest or the form."""
    repo = draw(st.sampled_from([SERVING, "evil.example/x", f"{SERVING}/x", SERVING[:-1], f"{SERVING}:v1"]))
    tag = draw(st.sampled_from([VERSION, "latest", "v1", f"{VERSION}x", "v1-bbbbbbbb"]) | st.text(max_size=10))
    digest = "sha256:" + draw(pinned_hex)
    image = f"{repo}:{tag}@{digest}"
    variant = draw(st.integers(0, 5))
    if variant == 1:
        return {"image": image, "digest": draw(digests)}
    if variant == 2:
        return {"image": f"{repo}:{tag}", "digest": digest}
    if variant == 3:
        return {"image": image + draw(st.sampled_from(["\n", " ", "x"])), "digest": digest}
    if variant == 4:
        return draw(st.fixed_dictionaries({}, optional={"image": st.text(max_size=60), "digest": digests}))
    return {"image": image, "digest": digest}


def section(step: str) -> st.SearchStrategy[Any]:
    """A section that is often nearly right for ``step``, sometimes anything at all."""
    shaped: dict[str, st.SearchStrategy[Any]] = {
        "drift": st.fixed_dictionaries(
            {"detected": st.booleans() | json_values, "share": st.floats(-1, 2) | json_values,
             "score": st.floats(allow_nan=False), "method": st.text(max_size=10), "samples": st.integers(-5, 500)},
            optional={"threshold": st.floats(allow_nan=False), "topFeatures": st.lists(st.text(max_size=8)),
                      "accuracy": st.dictionaries(st.sampled_from(["current", "reference", "drop", "x"]),
                                                  st.floats(allow_nan=False)),
                      "estimatedAccuracy": st.dictionaries(st.sampled_from(["value", "low", "high", "reference", "x"]),
                                                           st.floats(-0.5, 1.5)),
                      "novelty": st.dictionaries(st.sampled_from(["share", "referenceRate", "pValue", "x"]),
                                                 st.floats(-0.5, 1.5)) | st.fixed_dictionaries(
                          {"share": st.floats(0, 1), "referenceRate": st.floats(0, 1), "pValue": st.floats(0, 1),
                           "detected": st.booleans() | json_values}),
                      "referenceKind": st.sampled_from(["heldOut", "folder", "other"])},
        ),
        "train": st.fixed_dictionaries(
            {"metrics": st.dictionaries(st.text(max_size=8), st.floats(allow_nan=False) | json_values, max_size=4)},
            optional={"model": st.text(max_size=20) | json_values, "rev": st.text(max_size=12)},
        ),
        "package": package_sections(),
    }
    return st.one_of(shaped[step], shaped[step], shaped[step], json_values)


@st.composite
def documents(draw: st.DrawFn, step: str | None = None) -> dict[str, Any]:
    """Mostly well-formed envelopes (so the sections get exercised), each broken now and then."""
    chosen = step or draw(st.sampled_from(["drift", "train", "evaluate", "publish", "package", "lint"]))
    ok = draw(st.booleans())
    doc: dict[str, Any] = {"schemaVersion": contract.SCHEMA_VERSION, "step": chosen, "ok": ok}
    if not ok or draw(st.integers(0, 9)) == 0:
        doc["reason"] = draw(st.sampled_from(["PushFailed", "bad reason", ""]))
    if draw(st.booleans()):
        doc["message"] = draw(st.text(max_size=30))
    broken = draw(st.integers(0, 9))
    if broken == 0:
        doc[draw(st.text(max_size=8))] = draw(json_values)
    elif broken == 1:
        doc["schemaVersion"] = draw(st.text(max_size=10) | json_values)
    elif broken == 2:
        doc["ok"] = draw(json_values)
    if broken != 3:
        key = results.StepKind(chosen).section if chosen != "lint" else "drift"
        doc[key] = draw(section(key))
    return doc


def parse_or_error(message: str | bytes | None, step: str | None = None) -> contract.StepResult | None:
    try:
        return contract.parse(message, expected_step=step)
    except contract.ResultError as exc:
        assert exc.reason in ("MissingResult", "OversizedResult", "MalformedResult") and exc.message
        return None


@BUDGET
@given(st.binary(max_size=5000))
def test_any_bytes_give_a_result_or_a_result_error(message: bytes) -> None:
    parse_or_error(message)


@BUDGET
@given(st.text(max_size=300) | json_values.map(json.dumps))
def test_any_text_gives_a_result_or_a_result_error(message: str) -> None:
    parse_or_error(message)


@BUDGET
@given(documents())
def test_any_document_gives_a_typed_result_or_a_result_error(doc: dict[str, Any]) -> None:
    result = parse_or_error(json.dumps(doc))
    if result is None:
        return
    if result.ok:  # a valid ok result always carries its step's typed section
        kinds = {"drift": results.DriftResult, "train": results.TrainResult, "package": results.PackageResult}
        assert isinstance(result.section, kinds[result.step.section])
    else:
        assert result.section is None and result.reason


@BUDGET
@given(documents("package"))
def test_no_package_message_patches_another_image(doc: dict[str, Any]) -> None:
    sim = Sim().to_packaging()
    assert sim.retrain.version == VERSION and sim.retrain.package_job
    sim.finish_message(sim.retrain.package_job, json.dumps(doc))
    patched = [a.image for d in sim.history for a in d.actions if isinstance(a, act.PatchImage)]
    assert all(ALLOWED.fullmatch(image) for image in patched), patched
    if patched:
        assert outcome_of(JobKind.PACKAGE, json.dumps(doc)).ok
        assert sim.deployment.image == patched[0]


@BUDGET
@given(documents("drift"))
def test_no_drift_message_makes_up_a_verdict(doc: dict[str, Any]) -> None:
    sim = Sim().step()
    sim.finish_message("cats-drift-1", json.dumps(doc))
    verdict = {"NoDrift", "DriftDetected"} & set(sim.events())
    outcome = outcome_of(JobKind.DRIFT, json.dumps(doc))
    assert bool(verdict) == (outcome.ok and isinstance(outcome.result, results.DriftResult))
    assert (sim.status.drift.detected is None) != bool(verdict)

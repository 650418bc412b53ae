"""The CRD file, read without a cluster (the API server's refusals are in test_cluster.py)."""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from freshness_operator import GROUP, KIND, PLURAL, VERSION
from freshness_operator.core import serde
from freshness_operator.core.status import Status

from tests.operator.sim import BASE_SPEC, merge

CRD = Path(__file__).resolve().parents[2] / "crds" / "modeldeployments.modelfreshness.io.yaml"


def crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD.read_text())
    return loaded


def test_names_match_the_operator() -> None:
    c = crd()
    assert c["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    assert c["spec"]["names"]["kind"] == KIND and c["spec"]["names"]["shortNames"] == ["mdep"]
    (version,) = c["spec"]["versions"]
    assert version["name"] == VERSION and version["subresources"] == {"status": {}}


def test_printer_columns() -> None:
    (version,) = crd()["spec"]["versions"]
    columns = [(col["name"], col["jsonPath"], col.get("priority", 0)) for col in version["additionalPrinterColumns"]]
    ready = '.status.conditions[?(@.type=="Ready")]'
    assert columns == [
        ("Ready", f"{ready}.status", 0),
        ("Reason", f"{ready}.reason", 0),
        ("Phase", ".status.phase", 0),
        ("Drift", ".status.drift.summary", 0),
        ("Model", ".status.model.version", 0),
        ("Step", ".status.step", 0),
        ("Reconciled", ".status.lastReconcileTime", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Deployment", ".spec.serving.deployment", 1),
        ("Last-Check", ".status.drift.lastCheckTime", 1),
        ("Next-Check", ".status.drift.nextCheckTime", 1),
        ("Last-Error", ".status.lastError.reason", 1),
    ]


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for key, sub in (schema.get("properties") or {}).items():
        out += walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        out += walk(schema["items"], f"{path}[]")
    return out


def test_every_field_has_a_description() -> None:
    # `kubectl explain modeldeployment.<path>` shows these; the status included.
    (version,) = crd()["spec"]["versions"]
    undescribed = [
        path or "<root>"
        for path, node in walk(version["schema"]["openAPIV3Schema"])
        if not path.endswith("[]") and path != ".metadata" and not (node.get("description") or "").strip()
    ]  # the API server refuses anything but a type on metadata; kubectl explain shows ObjectMeta's own
    assert undescribed == []


def dataclass_paths(cls: type, prefix: str = "") -> list[str]:
    """camelCase paths of a status dataclass, as the wire form writes them ("[]" for list items)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path, tp = f"{prefix}.{serde.key(f)}", hints[f.name]
        out.append(path)
        optional = typing.get_origin(tp) in (typing.Union, types.UnionType)
        inner = next(a for a in typing.get_args(tp) if a is not type(None)) if optional else tp
        if typing.get_origin(inner) is list:
            (item,) = typing.get_args(inner)
            if dataclasses.is_dataclass(item):
                out += dataclass_paths(item, f"{path}[]")  # type: ignore[arg-type]
        elif dataclasses.is_dataclass(inner):
            out += dataclass_paths(inner, path)  # type: ignore[arg-type]
    return out


def test_the_status_schema_describes_every_status_field() -> None:
    # A status field the schema lacks would have no `kubectl explain`; one it has that the
    # operator does not write would describe nothing.
    (version,) = crd()["spec"]["versions"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    in_schema = {path for path, _ in walk(status, ".status")} - {".status"}
    in_schema = {p for p in in_schema if not p.endswith("[]")}
    assert sorted(in_schema) == sorted(f".status{p}" for p in dataclass_paths(Status))


def test_schema_is_structural() -> None:
    (version,) = crd()["spec"]["versions"]
    for path, node in walk(version["schema"]["openAPIV3Schema"]):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"


def test_duration_rule_agrees_with_the_operators_parser() -> None:
    (version,) = crd()["spec"]["versions"]
    rules = [
        r["rule"]
        for _, node in walk(version["schema"]["openAPIV3Schema"])
        for r in node.get("x-kubernetes-validations", [])
        if "(s|m|h|d))+" in r["rule"]
    ]
    assert len(rules) == 5  # interval, three timeouts, cooldown
    pattern = re.search(r"matches\('(.+)'\)", rules[0])
    assert pattern is not None
    from freshness_operator.core.times import parse_duration

    for text in ["30s", "6h", "1h30m", "0s", "soon", "1.5h", "6 h"]:
        accepted = re.fullmatch(pattern.group(1), text) is not None
        try:
            parse_duration(text)
            parsed = True
        except ValueError:
            parsed = False
        assert accepted == parsed, text


def test_window_rule_agrees_with_the_operators_spec_parser() -> None:
    window = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["drift"][
        "properties"
    ]["window"]
    (rule,) = window["x-kubernetes-validations"]
    patterns = re.findall(r"matches\('([^']+)'\)", rule["rule"])
    assert len(patterns) == 2  # one number and a unit, and not zero
    from freshness_operator.core.spec import SpecError, parse_spec

    for text in ["24h", "90m", "7d", "30s", "010m", "1h30m", "0h", "00d", "yesterday", "1.5h", "24"]:
        accepted = all(re.search(p, text) for p in patterns)
        try:
            parse_spec(merge(BASE_SPEC, {"drift": {"window": text}}))
            parsed = True
        except SpecError:
            parsed = False
        assert accepted == parsed, text


def test_the_example_parses_with_the_operators_spec_parser() -> None:
    from freshness_operator.core.spec import parse_spec

    example = yaml.safe_load((CRD.parents[1] / "examples" / "modeldeployment.yaml").read_text())
    spec = parse_spec(example["spec"])
    assert spec.training.max_parallel == 2 and len(spec.training.candidates) == 2
    assert spec.serving.image == "registry.example.com/cats-dogs"
    assert spec.training.params == {"train.num_classes": 3}  # written nested, flattened


def test_the_examples_work_as_written() -> None:
    # Issue 19: the drift Job got `--reference data/train` in an empty working directory, the
    # namespace was assumed to exist, and the credentials Secret was never shown.
    examples = CRD.parents[1] / "examples"
    mdep = yaml.safe_load((examples / "modeldeployment.yaml").read_text())
    prereqs = list(yaml.safe_load_all((examples / "prerequisites.yaml").read_text()))
    for uri in (mdep["spec"]["data"]["reference"], mdep["spec"]["data"]["current"]):
        assert "://" in uri or uri.startswith("/"), f"{uri}: the drift Job cannot read a repository path"
    made = {(d["kind"], d["metadata"]["name"]) for d in prereqs}
    assert ("Namespace", mdep["metadata"]["namespace"]) in made
    assert ("Secret", mdep["spec"]["source"]["credentialsSecret"]) in made
    for env in mdep["spec"].get("env") or []:
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            secret = next(d for d in prereqs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"])
            assert ref["key"] in secret["stringData"]


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """``value`` with the schema's ``default:`` values filled in, as the API server does on write:
    an absent property with a default gets it (then its own defaults), in objects and array items."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for name, sub in schema["properties"].items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = with_defaults(sub, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def test_the_operators_defaults_are_the_crds_defaults() -> None:
    """One source per default: a spec with only its required fields parses to the same Spec as that
    spec with every CRD ``default:`` applied, so spec.py's dataclass defaults (what the operator uses
    for objects written before a default existed) cannot differ from what the API server writes."""
    from freshness_operator.core.spec import parse_spec

    (version,) = crd()["spec"]["versions"]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    required = {
        "source": {"repo": BASE_SPEC["source"]["repo"]},
        "data": dict(BASE_SPEC["data"]),
        "serving": {k: BASE_SPEC["serving"][k] for k in ("deployment", "container", "image")},
    }
    defaulted = with_defaults(spec_schema, required)
    defaults = [path for path, node in walk(spec_schema, ".spec") if "default" in node]
    assert len(defaults) >= 20, defaults  # the walk found the CRD's defaults
    assert parse_spec(required) == parse_spec(defaulted)

"""The CRD file, read without a cluster (the API server's refusals are in test_cluster.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from freshness_operator import GROUP, KIND, PLURAL, VERSION

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
    columns = [(col["name"], col["jsonPath"]) for col in version["additionalPrinterColumns"]]
    assert columns == [
        ("Phase", ".status.phase"),
        ("Drift", ".status.drift.summary"),
        ("Model", ".status.model.version"),
        ("Last-Check", ".status.drift.lastCheckTime"),
        ("Age", ".metadata.creationTimestamp"),
    ]


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for key, sub in (schema.get("properties") or {}).items():
        out += walk(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        out += walk(schema["items"], f"{path}[]")
    return out


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
        if "(s|m|h|d)" in r["rule"]
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


def test_the_example_parses_with_the_operators_spec_parser() -> None:
    from freshness_operator.core.spec import parse_spec

    example = yaml.safe_load((CRD.parents[1] / "examples" / "modeldeployment.yaml").read_text())
    spec = parse_spec(example["spec"])
    assert spec.training.max_parallel == 2 and len(spec.training.candidates) == 2
    assert spec.serving.image == "registry.example.com/cats-dogs"
    assert spec.training.params == {"train.num_classes": 3}  # written nested, flattened

"""params.yaml: the repository's file parses; a missing or bad key is named; drift defaults agree."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from freshness_trainer import drift_rule, params
from freshness_trainer.errors import TrainerError

ROOT = Path(__file__).resolve().parents[2]


def _doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    return loaded


def test_repository_params_parse() -> None:
    p = params.load(ROOT / "params.yaml")
    assert p.train.model_name == "alexnet"
    assert p.train.num_classes == 2
    assert p.train.weights == ""
    assert p.data.source == ""


@pytest.mark.parametrize(
    "key", ["data.source", "train.lr", "train.num_classes", "evaluate.batch_size", "drift.threshold"]
)
def test_missing_key_is_named(key: str) -> None:
    doc = copy.deepcopy(_doc())
    section, name = key.split(".")
    del doc[section][name]
    with pytest.raises(TrainerError) as err:
        params.parse(doc)
    assert err.value.reason == "MissingParam"
    assert key in err.value.message


def test_bad_values_are_named() -> None:
    doc = copy.deepcopy(_doc())
    doc["train"]["epochs"] = "many"
    with pytest.raises(TrainerError, match=r"train\.epochs") as err:
        params.parse(doc)
    assert err.value.reason == "InvalidParam"
    doc = copy.deepcopy(_doc())
    doc["train"]["image_size"] = 32
    with pytest.raises(TrainerError, match="image_size"):
        params.parse(doc)


@pytest.mark.parametrize(
    ("key", "value"),
    [("dropout", 1.0), ("dropout", -0.1), ("label_smoothing", 1.5), ("warmup_epochs", -1), ("warmup_epochs", 99)],
)
def test_out_of_range_training_values_are_named(key: str, value: float) -> None:
    doc = copy.deepcopy(_doc())
    doc["train"][key] = value
    with pytest.raises(TrainerError, match=rf"train\.{key}={value}") as err:
        params.parse(doc)
    assert err.value.reason == "InvalidParam"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match=r"nope\.yaml"):
        params.load(tmp_path / "nope.yaml")


def test_drift_section_matches_the_code_defaults() -> None:
    d = params.load(ROOT / "params.yaml").drift
    assert d.threshold == drift_rule.DEFAULT_THRESHOLD
    assert d.accuracy_drop == drift_rule.DEFAULT_ACCURACY_DROP
    assert d.stattest_threshold == drift_rule.STATTEST_THRESHOLD


def test_reference_per_class_is_optional_and_checked() -> None:
    """Older params.yaml files have no data.reference_per_class: 0, the validation split alone."""
    doc = copy.deepcopy(_doc())
    assert params.parse(doc).data.reference_per_class > 0
    del doc["data"]["reference_per_class"]
    assert params.parse(doc).data.reference_per_class == 0
    doc["data"]["reference_per_class"] = -1
    with pytest.raises(TrainerError, match=r"data\.reference_per_class=-1") as err:
        params.parse(doc)
    assert err.value.reason == "InvalidParam"

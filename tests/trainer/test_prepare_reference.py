"""The prepare stage's held-out reference split (``data.reference_per_class``, issue 14 Build 3):
written beside train/val, never taken from the images the model trains on; the sample set's training
split is the same whatever its size; a user folder too small for it fails naming the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from freshness_trainer import data, params, sampledata
from freshness_trainer.errors import TrainerError
from freshness_trainer.stages import prepare

ROOT = Path(__file__).resolve().parents[2]


def _params(reference_per_class: int, source: str = "") -> params.Params:
    p = params.load(ROOT / "params.yaml")
    return dataclasses.replace(p, data=dataclasses.replace(p.data, reference_per_class=reference_per_class,
                                                           source=source))


def _pixels(folder: Path) -> np.ndarray:
    index = data.list_images(str(folder), labelled=True)
    return data.load_images(index, 64).images.numpy()


def test_sample_set_reference_is_extra_and_leaves_the_training_split_unchanged(tmp_path: Path) -> None:
    with_ref = prepare.run(_params(40), tmp_path / "with")
    without = prepare.run(_params(0), tmp_path / "without")
    assert with_ref["reference"] == {"cats": 40, "dogs": 40} and without["reference"] == {}
    assert with_ref["train"] == without["train"] and with_ref["val"] == without["val"]
    for part in ("train", "val"):
        assert np.array_equal(_pixels(tmp_path / "with" / part), _pixels(tmp_path / "without" / part))
    assert not (tmp_path / "without" / "reference").exists()
    train, ref = _pixels(tmp_path / "with" / "train"), _pixels(tmp_path / "with" / "reference")
    seen = {img.tobytes() for img in train}
    assert not any(img.tobytes() in seen for img in ref), "a reference image is also a training image"


def test_user_folder_reference_is_cut_before_the_split(tmp_path: Path) -> None:
    src = tmp_path / "src"
    sampledata.write_image_folder(sampledata.render({"cats": 30, "dogs": 30}, half="reference", seed=3), src)
    counts = prepare.run(_params(10, str(src)), tmp_path / "out")
    assert counts["reference"] == {"cats": 10, "dogs": 10}
    assert {c: counts["train"][c] + counts["val"][c] for c in ("cats", "dogs")} == {"cats": 20, "dogs": 20}
    split = [img.tobytes() for part in ("train", "val", "reference") for img in _pixels(tmp_path / "out" / part)]
    assert sorted(split) == sorted(img.tobytes() for img in _pixels(src)), "each source image lands in one split"
    with pytest.raises(TrainerError, match=r"data\.reference_per_class=29.*'cats'") as err:
        prepare.run(_params(29, str(src)), tmp_path / "small")
    assert err.value.reason == "InvalidParam"

"""Image folders at local paths and fsspec URIs; clear errors for bad folders and files."""

from __future__ import annotations

import io
from pathlib import Path

import fsspec
import numpy as np
import pytest
from freshness_trainer import data
from freshness_trainer.errors import TrainerError
from PIL import Image


def _png(color: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 12, 3), color, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _folder(root: Path, classes: dict[str, int]) -> Path:
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"{i}.png").write_bytes(_png(40 * i))
    return root


def test_labelled_folder_loads_resized(tmp_path: Path) -> None:
    index = data.list_images(str(_folder(tmp_path, {"cats": 2, "dogs": 3})), labelled=True, min_classes=2)
    assert index.classes == ["cats", "dogs"] and index.counts() == {"cats": 2, "dogs": 3}
    loaded = data.load_images(index, 16)
    assert loaded.images.shape == (5, 3, 16, 16) and loaded.labels is not None
    assert loaded.labels.tolist() == [0, 0, 1, 1, 1]


def test_class_names_map_unknown_classes_to_minus_one(tmp_path: Path) -> None:
    index = data.list_images(str(_folder(tmp_path, {"bees": 1, "cats": 1})))
    loaded = data.load_images(index, 8, class_names=["cats", "dogs"])
    assert loaded.labels is not None and loaded.labels.tolist() == [-1, 0]


def test_unlabelled_folder(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_png(1))
    index = data.list_images(str(tmp_path))
    assert index.labels is None and len(index) == 1


def test_fsspec_uri() -> None:
    fs = fsspec.filesystem("memory")
    for cls in ("cats", "dogs"):
        fs.pipe(f"/imgs/{cls}/0.png", _png(9))
    index = data.list_images("memory://imgs", labelled=True, min_classes=2)
    assert index.protocol == "memory" and len(index) == 2
    assert data.load_images(index, 8).images.shape == (2, 3, 8, 8)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    with pytest.raises(TrainerError) as err:
        data.list_images(str(tmp_path), labelled=True)
    assert err.value.reason == "EmptyDataset" and str(tmp_path) in err.value.message


def test_single_class(tmp_path: Path) -> None:
    with pytest.raises(TrainerError) as err:
        data.list_images(str(_folder(tmp_path, {"cats": 2})), labelled=True, min_classes=2)
    assert err.value.reason == "SingleClass" and "cats" in err.value.message


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TrainerError) as err:
        data.list_images(str(tmp_path / "nope"))
    assert err.value.reason == "DataNotFound"


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"cats": 1, "dogs": 1})
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(TrainerError) as err:
        data.load_images(data.list_images(str(root)), 8)
    assert err.value.reason == "CorruptImage" and "broken.jpg" in err.value.message

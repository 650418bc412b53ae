"""``package``: a valid, deterministic OCI image layout with the model as a layer."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from freshness_trainer import oci
from freshness_trainer.errors import TrainerError


def _blob(root: Path, digest: str) -> bytes:
    data = (root / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_layout_is_valid_and_holds_the_model(tmp_path: Path) -> None:
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"weights" * 1000)
    layout = oci.build(str(model_file), "registry.example.com/cats-dogs:v2", tmp_path / "out")
    root = layout.path
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == layout.digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v2"
    manifest = json.loads(_blob(root, layout.digest))
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    config = json.loads(_blob(root, manifest["config"]["digest"]))
    [layer] = manifest["layers"]
    tar_bytes = gzip.decompress(_blob(root, layer["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.extractfile(oci.MODEL_PATH_IN_IMAGE)
        assert member is not None and member.read() == model_file.read_bytes()
    again = oci.build(str(model_file), "registry.example.com/cats-dogs:v2", tmp_path / "out2")
    assert again.digest == layout.digest


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(TrainerError) as err:
        oci.build(str(tmp_path / "none.pt"), "repo:tag", tmp_path / "o")
    assert err.value.reason == "ModelNotFound"
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(TrainerError, match="REPO:TAG"):
        oci.build(str(tmp_path / "m.pt"), "repo-without-tag", tmp_path / "o")
    layout = oci.build(str(tmp_path / "m.pt"), "repo:tag", tmp_path / "o")
    with pytest.raises(TrainerError) as err:
        oci.push(layout, "repo:tag", crane="crane-that-is-not-installed")
    assert err.value.reason == "CraneNotFound"

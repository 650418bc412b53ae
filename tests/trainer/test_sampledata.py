"""The sample-data maker: deterministic, the documented layout, disjoint halves, real shifts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from freshness_trainer import sampledata


def test_layout_and_manifest(sample_dir: Path) -> None:
    manifest = json.loads((sample_dir / "manifest.json").read_text(encoding="utf-8"))
    expected = {"reference", "extended", "production/iid", "production/new-class",
                *(f"production/{s}" for s in sampledata.SHIFTS)}
    assert set(manifest["folders"]) == expected
    assert sorted(p.name for p in (sample_dir / "reference").iterdir()) == ["cats", "dogs"]
    assert sorted(p.name for p in (sample_dir / "extended").iterdir()) == ["bees", "cats", "dogs"]
    for folder, counts in manifest["folders"].items():
        for cls, n in counts.items():
            assert len(list((sample_dir / folder / cls).glob("*.png"))) == n
    new = manifest["folders"]["production/new-class"]
    assert new["bees"] / sum(new.values()) == sampledata.NEW_CLASS_SHARE


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(seed: int) -> str:
        b = sampledata.render({"cats": 3, "bees": 2}, half="production", seed=seed, shift="rotation")
        return hashlib.sha256(b.images.tobytes()).hexdigest()

    assert digest(0) == digest(0)
    assert digest(0) != digest(1)


def test_production_images_are_new_images() -> None:
    """Same generator, separate random streams: production never repeats a reference image."""
    ref = sampledata.render({"cats": 40, "dogs": 40}, half="reference", seed=0).images
    prod = sampledata.render({"cats": 40, "dogs": 40}, half="production", seed=0).images
    seen = {img.tobytes() for img in ref}
    assert not any(img.tobytes() in seen for img in prod)


def test_shifts_change_the_images_as_documented() -> None:
    base = sampledata.render({"cats": 20}, half="production", seed=0).images.astype(float) / 255
    dark = sampledata.render({"cats": 20}, half="production", seed=0, shift="brightness").images.astype(float) / 255
    blur = sampledata.render({"cats": 20}, half="production", seed=0, shift="blur").images.astype(float) / 255
    noisy = sampledata.render({"cats": 20}, half="production", seed=0, shift="noise").images.astype(float) / 255
    assert dark.mean() < 0.6 * base.mean()

    def roughness(x: np.ndarray) -> float:
        return float(np.abs(np.diff(x, axis=1)).mean())

    assert roughness(blur) < roughness(base) < roughness(noisy)

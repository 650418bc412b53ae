"""The drift-quality figure: a valid PNG of the promised size for any number of conditions. No training."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import drift_quality_png
from tests.pngfile import png_size


@pytest.mark.parametrize("conditions", [["iid"], ["iid", "new-class", "noise", "blur", "brightness", "rotation"]])
def test_figure_is_a_png_of_the_promised_size(tmp_path: Path, conditions: list[str]) -> None:
    sizes = [50, 100, 200]
    rates = {
        c: {"ours": {n: min(1.0, n / 200) for n in sizes}, "evidently": dict.fromkeys(sizes, 0.0)} for c in conditions
    }
    path = drift_quality_png.draw(rates, sizes, tmp_path / "fig" / "power.png", "a subtitle")
    assert png_size(path) == (drift_quality_png.WIDTH, drift_quality_png.HEIGHT)

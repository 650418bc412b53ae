"""The held-out shift grid of benchmarks/drift_quality.py (``--grid holdout``): families that played no
part in tuning the impact rule, so its table is a fair test of the thresholds chosen on the other."""

from __future__ import annotations

import numpy as np
import pytest
from freshness_trainer import sampledata

from benchmarks import drift_shifts


def test_the_held_out_grid_shares_no_family_with_the_tuning_grid_but_iid() -> None:
    tuning = {s.family for s in drift_shifts.SHIFTS}
    holdout = {s.family for s in drift_shifts.HOLDOUT_SHIFTS}
    assert tuning & holdout == {"iid"}
    assert {s.family for s in drift_shifts.HOLDOUT_SMOKE_SHIFTS} <= holdout
    names = [s.name for s in drift_shifts.HOLDOUT_SHIFTS]
    assert len(names) == len(set(names))  # one pool per cell name


@pytest.mark.parametrize("shift", [s for s in drift_shifts.HOLDOUT_SHIFTS if not s.is_mixture and s.family != "iid"],
                         ids=lambda s: s.name)
def test_each_held_out_transform_keeps_the_images_shape_changes_them_and_is_pure(shift: drift_shifts.Shift) -> None:
    images = sampledata.render({"cats": 6, "dogs": 6}, half="production", seed=3).images
    before = images.copy()
    out = shift.apply(images, np.random.default_rng(7))
    assert out.shape == images.shape and out.dtype == np.uint8
    assert np.array_equal(images, before)  # the input is not changed in place
    assert np.abs(out.astype(int) - images).mean() > 0.1
    assert np.array_equal(out, shift.apply(images, np.random.default_rng(7)))


def test_the_stronger_strength_of_a_family_changes_the_images_more() -> None:
    images = sampledata.render({"cats": 8, "dogs": 8}, half="production", seed=4).images
    for family in ("gamma", "saturation", "colour-cast", "salt-pepper", "occlusion", "zoom", "motion-blur"):
        cells = [s for s in drift_shifts.HOLDOUT_SHIFTS if s.family == family]
        # gamma's strengths straddle 1 (0.9 brightens): order by distance from the identity.
        cells.sort(key=lambda s: abs(np.log(s.value)) if family == "gamma" else abs(1 - s.value)
                   if family == "saturation" else s.value)
        change = [np.abs(s.apply(images, np.random.default_rng(0)).astype(int) - images).mean() for s in cells]
        assert change == sorted(change), (family, change)


def test_the_unseen_class_draws_a_digit_no_sample_class_uses() -> None:
    digit = drift_shifts.UNSEEN_DIGITS[drift_shifts.UNSEEN_CLASS]
    assert digit not in sampledata.CLASS_DIGITS.values()
    wasps = sampledata.render({drift_shifts.UNSEEN_CLASS: 4}, half="production", seed=1,
                              class_digits=drift_shifts.UNSEEN_DIGITS)
    bees = sampledata.render({sampledata.NEW_CLASS: 4}, half="production", seed=1)
    assert wasps.labels == [drift_shifts.UNSEEN_CLASS] * 4
    assert not np.array_equal(wasps.images, bees.images)

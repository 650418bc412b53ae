"""benchmarks/novelty_power.py's power model against the rule's own test (``impact.novelty_test``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from freshness_trainer import impact

from benchmarks import novelty_power as npw


def test_with_no_new_class_the_test_fires_at_most_at_its_level() -> None:
    for m in (200, 500):
        size = npw.power(m, 660, 0.0, 1.0)
        assert npw.ALPHA_EACH / 4 < size <= npw.ALPHA_EACH, (m, size)


@pytest.mark.parametrize(("m", "share", "exceed"), [(200, 0.3, 0.35), (2000, 0.1, 0.5)])
def test_predicted_power_matches_the_rules_test_on_synthetic_scores(m: int, share: float, exceed: float) -> None:
    """Fresh references of 660 uniform scores; a window of ``m`` with a share of new images, each beyond
    the realised threshold with chance ``exceed``. Only the distance column can fire (the others are zero
    in the window), so the rule's Bonferroni test is the one-column test at ALPHA / 3 that the model
    describes. In the large window the threshold's own randomness matters: at its mean alone (u = 0.1)
    the model would predict 0.72 instead of 0.62."""
    rng = np.random.default_rng(7)
    n, reps = 660, 400
    k = round(share * m)
    r = math.ceil(impact.DISTANCE_PERCENTILE / 100 * (n + 1))
    hits = 0
    for _ in range(reps):
        ref = rng.uniform(size=(n, 3))
        threshold = np.sort(ref[:, 0])[r - 1]
        beyond = rng.uniform(size=k) < exceed
        novel = np.where(beyond, 2.0, rng.uniform(0.0, threshold, size=k))
        window = np.zeros((m, 3))
        window[:, 0] = np.concatenate([rng.uniform(size=m - k), novel])
        hits += impact.novelty_test(ref, window)[0].detected
    predicted = npw.power(m, n, share, exceed)
    assert 0.2 < predicted < 0.95  # a case where a wrong model would show
    assert abs(hits / reps - predicted) < 0.08, (hits / reps, predicted)


def test_the_required_separation_falls_with_the_window_towards_the_reference_floor() -> None:
    short, long = npw.required_exceed(500, 660, 0.3), npw.required_exceed(5000, 660, 0.3)
    assert short is not None and long is not None and short > long
    assert long > npw.reference_floor(660, 0.3) - 0.02
    assert npw.power(500, 660, 0.3, short) >= npw.TARGET > npw.power(500, 660, 0.3, short - 0.01)
    assert npw.required_exceed(200, 660, 0.1) is None  # 20 images cannot make the count alone
    assert npw.reference_floor(5000, 0.1) < npw.reference_floor(660, 0.1)  # a larger reference lowers it


@pytest.mark.parametrize("option", [["--train-seeds", "1"], ["--reference-per-class", "1000"]])
def test_training_options_beside_a_model_file_are_refused(option: list[str]) -> None:
    with pytest.raises(SystemExit, match="no model when --model is given"):
        npw.main(["--model", "serving.pt", *option])

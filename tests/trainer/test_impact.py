"""``freshness_trainer.impact`` on synthetic data with a known truth: the calibration recovers a known
miscalibration, the accuracy estimate's interval covers, and the novelty test keeps its false-positive
rate on i.i.d. data (binomial interval) while catching a far cluster. Fast, no model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from freshness_trainer import impact
from scipy.stats import beta


def clopper_pearson(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a rate."""
    a = (1 - level) / 2
    low = 0.0 if hits == 0 else float(beta.ppf(a, hits, n - hits + 1))
    high = 1.0 if hits == n else float(beta.ppf(1 - a, hits + 1, n - hits))
    return low, high


def overconfident(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Confidences whose true P(correct) is sigmoid(0.5 * logit(c)): an overconfident model."""
    c = rng.uniform(0.55, 0.999, n)
    z = np.log(c) - np.log1p(-c)
    return c, rng.random(n) < 1 / (1 + np.exp(-0.5 * z))


def test_calibration_recovers_a_known_miscalibration_and_is_reliable_out_of_sample() -> None:
    """With a loose slope prior the fit recovers a slope of 0.5 (the default prior holds the slope
    near 1: see the next test)."""
    rng = np.random.default_rng(0)
    c, y = overconfident(rng, 2000)
    cal = impact.fit_calibration(c, y, prior_sd=1.0)
    assert cal.a == pytest.approx(0.5, abs=0.1) and abs(cal.b) < 0.2, cal
    fresh_c, fresh_y = overconfident(rng, 5000)
    raw = impact.expected_calibration_error(fresh_c, fresh_y)
    calibrated = impact.expected_calibration_error(cal.apply(fresh_c), fresh_y)
    assert raw > 0.1 and calibrated < 0.03, (raw, calibrated)


def test_the_default_calibration_shifts_the_logit_and_recovers_a_known_offset() -> None:
    """The default prior keeps the slope near 1 (``impact.PRIOR_SD``): the fit is a shift of the
    logit, which it recovers (true P(correct) = sigmoid(logit(c) - 1)), and it is reliable out of sample."""
    rng = np.random.default_rng(6)

    def shifted(n: int) -> tuple[np.ndarray, np.ndarray]:
        c = rng.uniform(0.55, 0.999, n)
        return c, rng.random(n) < 1 / (1 + np.exp(-(np.log(c) - np.log1p(-c) - 1.0)))

    cal = impact.fit_calibration(*shifted(2000))
    assert cal.a == pytest.approx(1.0, abs=0.1) and cal.b == pytest.approx(-1.0, abs=0.2), cal
    fresh_c, fresh_y = shifted(5000)
    raw = impact.expected_calibration_error(fresh_c, fresh_y)
    calibrated = impact.expected_calibration_error(cal.apply(fresh_c), fresh_y)
    assert raw > 0.1 and calibrated < 0.03, (raw, calibrated)


def test_the_fitted_mean_equals_the_accuracy_it_was_fitted_on() -> None:
    """The held-out accuracy is the estimate's reference: on the fitting data both must agree."""
    rng = np.random.default_rng(1)
    for n in (60, 500):
        c, y = overconfident(rng, n)
        est = impact.estimate_accuracy(impact.fit_calibration(c, y), c)
        assert est.value == pytest.approx(y.mean(), abs=0.005), (n, est, y.mean())
    perfect = impact.fit_calibration(np.full(60, 0.9), np.ones(60, bool))  # no error: finite, near 1
    assert math.isfinite(perfect.a) and impact.estimate_accuracy(perfect, np.full(10, 0.9)).value > 0.97


def test_the_estimate_interval_covers_the_realised_accuracy() -> None:
    """Over fits and windows (the interval carries the fit's uncertainty too): about 95% coverage."""
    rng = np.random.default_rng(2)
    trials, covered, errors = 200, 0, []
    for _ in range(trials):
        cal = impact.fit_calibration(*overconfident(rng, 300))
        cur_c, cur_y = overconfident(rng, 500)
        est = impact.estimate_accuracy(cal, cur_c)
        covered += est.low <= cur_y.mean() <= est.high
        errors.append(abs(est.value - cur_y.mean()))
    assert covered / trials >= 0.9, covered / trials
    assert float(np.mean(errors)) < 0.03


def test_calibration_round_trips_and_bad_documents_are_named() -> None:
    cal = impact.fit_calibration([0.6, 0.9, 0.95, 0.7], [0, 1, 1, 1])
    assert impact.Calibration.from_json(cal.to_json()) == cal
    with pytest.raises(ValueError, match=r"calibration\.method"):
        impact.Calibration.from_json({**cal.to_json(), "method": "isotonic"})
    with pytest.raises(ValueError, match="calibration: expected a, b, cov"):
        impact.Calibration.from_json({"method": impact.CALIBRATION_METHOD, "a": 1.0})
    with pytest.raises(ValueError, match="correct: 2 values for 3 confidences"):
        impact.fit_calibration([0.5, 0.6, 0.7], [1, 0])
    with pytest.raises(ValueError, match=r"confidence: values must lie in \[0, 1\]"):
        impact.fit_calibration([1.5], [1])
    with pytest.raises(ValueError, match="confidence: the window is empty"):
        impact.estimate_accuracy(cal, [])


def clusters(rng: np.random.Generator, n: int, centres: np.ndarray, spread: float = 0.6) -> np.ndarray:
    """ReLU-like embeddings: points around a few cluster centres, clipped at 0."""
    picks = centres[rng.integers(0, len(centres), n)]
    return np.maximum(picks + spread * rng.normal(size=picks.shape), 0.0)


@pytest.mark.parametrize(("reference_size", "early"), [(60, False), (300, False), (300, True)])
def test_novelty_false_positive_rate_on_iid_is_within_bounds(reference_size: int, early: bool) -> None:
    """A new reference per trial (the test's guarantee is over reference and window): the rate of
    detections on i.i.d. windows is at most alpha, within a 95% binomial interval; with the early
    features too (three tests, Bonferroni over three)."""
    rng = np.random.default_rng(3)
    centres, early_centres = rng.normal(size=(4, 32)) * 2, rng.normal(size=(4, 24)) * 2
    trials, hits, alpha = 200, 0, impact.ALPHA
    for _ in range(trials):
        ref = clusters(rng, reference_size, centres)
        ref_early = clusters(rng, reference_size, early_centres) if early else None
        window_early = clusters(rng, 200, early_centres) if early else None
        hits += impact.novelty(ref, clusters(rng, 200, centres), alpha=alpha, reference_early=ref_early,
                               production_early=window_early).detected
    low, _ = clopper_pearson(hits, trials)
    print(f"novelty FPR, reference {reference_size}{', early features' if early else ''}: {hits}/{trials}")
    assert low <= alpha, f"{hits}/{trials} detections: the interval lies above alpha={alpha}"
    assert hits / trials <= 0.05


def test_novelty_flags_a_far_cluster_and_reports_its_share() -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(4, 32)) * 2
    ref = clusters(rng, 60, centres)
    new = clusters(rng, 150, rng.normal(size=(1, 32)) * 2)
    window = np.vstack([clusters(rng, 350, centres), new])
    n = impact.novelty(ref, window)
    assert n.detected and n.p_value < 1e-6 and n.share >= 0.2, n
    # Distance: rank ceil(0.9·61) = 55 of 60, rate 6/61; norm: the maximum, rate 1/61.
    assert n.reference_rate == pytest.approx(7 / 61) and n.samples == 500 and n.reference_samples == 60
    same = impact.novelty(ref, clusters(rng, 500, centres))
    assert not same.detected and same.share < n.share


def test_the_norm_test_flags_images_in_known_directions_but_far_stronger() -> None:
    """Line drawings excite the known features more strongly: same direction (distance ~0), larger
    norm. The distance test alone misses them; the feature-norm test does not."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(4, 32)) * 2
    ref = clusters(rng, 60, centres)
    window = np.vstack([clusters(rng, 400, centres), 3.0 * ref[rng.integers(0, 60, 100)]])
    n = impact.novelty(ref, window)
    assert n.distance_p > impact.ALPHA / 2 and n.norm_p < 1e-4 and n.detected and n.share >= 0.2, n


def test_the_norm_test_ignores_a_few_per_cent_stronger_features() -> None:
    """Brighter images raise every norm a few per cent (harmless in the benchmark): the margin
    (``impact.NORM_MARGIN``) keeps the norm test quiet on a 4% scaling, even against a large reference
    whose plain 99.9th percentile most of them would cross in numbers."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(4, 32)) * 2
    ref = clusters(rng, 600, centres)
    window = 1.04 * clusters(rng, 500, centres)
    n = impact.novelty(ref, window)
    plain = impact.novelty(ref, window, norm_margin=1.0)
    assert n.norm_p > impact.ALPHA / 2 and not n.detected, n
    assert plain.norm_p < n.norm_p, (plain, n)
    with pytest.raises(ValueError, match=r"norm_margin: 0\.9 is below 1"):
        impact.novelty(ref, window, norm_margin=0.9)


def test_the_early_feature_test_finds_what_the_last_layer_maps_among_the_known() -> None:
    """A new class the last hidden layer maps among the known ones (its embeddings drawn like the
    reference's) but whose early features lie apart: only the third test sees it. Its images are not
    counted as errors (the early flags detect, the estimate's flags are the last layer's)."""
    rng = np.random.default_rng(8)
    centres, early_centres = rng.normal(size=(4, 32)) * 2, rng.normal(size=(4, 48)) * 2
    ref, ref_early = clusters(rng, 300, centres), clusters(rng, 300, early_centres)
    window = clusters(rng, 500, centres)
    window_early = np.vstack([clusters(rng, 400, early_centres), clusters(rng, 100, rng.normal(size=(1, 48)) * 2)])
    two = impact.novelty(ref, window)
    three, flags = impact.novelty_flags(ref, window, reference_early=ref_early, production_early=window_early)
    assert not two.detected and two.early_threshold is None and two.early_p is None, two
    assert three.detected and three.early_p is not None and three.early_p < 1e-6, three
    assert three.p_value == pytest.approx(min(1.0, 3 * min(three.distance_p, three.norm_p, three.early_p)))
    # Distance and early distance: rank ceil(0.9·301) = 271, rate 30/301 each; norm: rank 300, 1/301.
    assert three.reference_rate == pytest.approx(61 / 301) and three.share >= 0.2
    assert flags[400:].mean() < 0.2  # the early test's images are not the estimate's errors
    quiet = impact.novelty(ref, window, reference_early=ref_early, production_early=clusters(rng, 500, early_centres))
    assert not quiet.detected, quiet
    with pytest.raises(ValueError, match="give both or neither"):
        impact.novelty(ref, window, reference_early=ref_early)
    with pytest.raises(ValueError, match="production_early: 499 rows for 500 window embeddings"):
        impact.novelty(ref, window, reference_early=ref_early, production_early=window_early[:499])
    with pytest.raises(ValueError, match="production_early: 47 columns but the reference has 48"):
        impact.novelty(ref, window, reference_early=ref_early, production_early=window_early[:, :47])


def test_a_detected_novel_share_counts_as_errors_in_the_estimate() -> None:
    cal = impact.Calibration()
    conf = np.full(500, 0.95)
    novel = np.arange(500) < 100
    plain = impact.estimate_accuracy(cal, conf)
    counted = impact.estimate_accuracy(cal, conf, novel, novel_rate=0.02)
    assert plain.value == pytest.approx(0.95)
    assert counted.value == pytest.approx(0.95 * 400 / 500 / 0.98)
    assert counted.low < counted.value < counted.high < plain.value
    # A share no larger than the reference implies changes nothing: the estimate never rises above CBPE.
    few = impact.estimate_accuracy(cal, conf, np.arange(500) < 5, novel_rate=0.02)
    assert few.value == pytest.approx(plain.value)
    with pytest.raises(ValueError, match="novel: 3 flags for 500 confidences"):
        impact.estimate_accuracy(cal, conf, [True, False, True])
    with pytest.raises(ValueError, match=r"novel_rate: 1\.0 is not in"):
        impact.estimate_accuracy(cal, conf, novel, novel_rate=1.0)


def test_novelty_inputs_are_checked_by_name() -> None:
    ref = np.ones((10, 4))
    with pytest.raises(ValueError, match="production_emb: 3 columns but the reference has 4"):
        impact.novelty(ref, np.ones((5, 3)))
    with pytest.raises(ValueError, match="reference_emb: expected a 2-D array"):
        impact.novelty(np.ones(4), ref)
    with pytest.raises(ValueError, match="reference_emb: 1 rows; at least k"):
        impact.novelty(np.ones((1, 4)), ref)
    with pytest.raises(ValueError, match="percentile: 100"):
        impact.novelty(ref, ref, percentile=100)
    with pytest.raises(ValueError, match="production_emb: values must be finite"):
        impact.novelty(ref, np.full((2, 4), np.nan))
    empty = impact.novelty(ref, np.zeros((0, 4)))
    assert empty.share == 0.0 and not empty.detected


def test_trigger_applies_the_contract_policy_to_the_signals() -> None:
    est = impact.Estimate(0.85, 0.82, 0.88)
    quiet = impact.Novelty(0.01, 0.016, 0.6, False)
    assert impact.trigger("impact", True, est, 0.93, 0.05, quiet).reasons == ("estimated-accuracy",)
    assert not impact.trigger("impact", True, impact.Estimate(0.92, 0.9, 0.94), 0.93, 0.05, quiet).retrain
    assert impact.trigger("impact", False, est, 0.93, 0.05, quiet, measured_accuracy=0.92).retrain is False
    assert impact.trigger("distribution", True, None, None, 0.05, None).reasons == ("distribution",)

"""Drift-detection quality on real images (issue 4): false-positive rate and power at 500 samples.

The serving model is the ``base`` experiment of the project fixture (``dvc exp run`` with the
default params: 2 classes); the reference is the 240 images it was trained on. Pools are fresh
renders of the sample maker (production stream); each trial draws 500 rows from a pool's feature
table (see freshness_trainer.quality). Pools are finite, so trials overlap: the no-drift and
new-class pools are twice the sample size to keep that overlap moderate.
"""

from __future__ import annotations

import numpy as np
import pytest
from freshness_trainer import drift_rule, engine, model, quality, sampledata

from tests.trainer.conftest import Project

TRIALS = 40
N = 500
POOL = 1000  # no drift and new class
SHIFT_POOL = 600  # shifts move features by orders of magnitude more; smaller pools keep the test short


@pytest.fixture(scope="module")
def pools(project: Project) -> dict[str, quality.Pool]:
    ckpt = model.load(str(project.serving_model))
    batches = quality.render_conditions(POOL, conditions=("iid", "new-class"))
    batches.update({k: v for k, v in quality.render_conditions(SHIFT_POOL, conditions=sampledata.SHIFTS).items()
                    if k != "reference"})
    return quality.feature_pools(ckpt, batches, engine.DeviceOptions.for_device("cpu"))


def test_false_positive_rate_at_default_threshold(pools: dict[str, quality.Pool]) -> None:
    ref = pools["reference"].table
    rule = quality.our_rule()
    fresh = quality.detection_rate(ref, pools["iid"].table, n=N, trials=TRIALS, seed=1, decide=rule)
    resampled = quality.detection_rate(ref, ref, n=N, trials=TRIALS, seed=2, decide=rule, replace=True)
    print(f"FPR fresh iid images: {fresh:.3f}; bootstrap resamples of the reference: {resampled:.3f}")
    assert fresh <= 0.05
    assert resampled <= 0.05


def test_new_class_at_30_percent_is_detected(pools: dict[str, quality.Pool]) -> None:
    ref = pools["reference"].table
    rate = quality.detection_rate(ref, pools["new-class"].table, n=N, trials=TRIALS, seed=3, decide=quality.our_rule())
    print(f"power new class 30%: {rate:.3f}")
    assert rate >= 0.95


def test_every_costly_covariate_shift_is_detected(pools: dict[str, quality.Pool]) -> None:
    ref = pools["reference"].table
    base_acc = pools["iid"].accuracy
    costly = []
    for shift in sampledata.SHIFTS:
        cost = base_acc - pools[shift].accuracy
        rate = quality.detection_rate(ref, pools[shift].table, n=N, trials=TRIALS, seed=4, decide=quality.our_rule())
        print(f"{shift}: accuracy cost {cost:+.3f}, detected {rate:.3f}")
        if cost >= 0.05:
            costly.append(shift)
            assert rate >= 0.95, f"{shift} costs {cost:.3f} accuracy but is detected in only {rate:.2f} of trials"
    assert len(costly) >= 2, f"the sample shifts should cost the model accuracy; costly: {costly}"


def test_scipy_statistic_is_what_evidently_computes(pools: dict[str, quality.Pool]) -> None:
    """The quality loop's p-values (scipy) equal Evidently's per-feature drift values."""
    ref = pools["reference"].table
    rng = np.random.default_rng(5)
    for name in ("iid", "new-class"):
        cur = pools[name].table.iloc[rng.choice(len(pools[name].table), 200, replace=False)].reset_index(drop=True)
        ours = drift_rule.feature_pvalues(ref, cur)
        theirs = drift_rule.evidently_pvalues(ref, cur)
        assert ours.keys() == theirs.keys()
        np.testing.assert_allclose([ours[k] for k in ours], [theirs[k] for k in ours], rtol=1e-9, atol=1e-300)

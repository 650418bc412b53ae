"""benchmarks/novelty_candidates.py's scores on synthetic features: out-of-sample reference scores, and
a far cluster scored above the reference while i.i.d. points are not."""

from __future__ import annotations

import numpy as np

from benchmarks import novelty_candidates as nc


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.stack([np.r_[5.0, np.zeros(7)], np.r_[0.0, 5.0, np.zeros(6)]])
    labels = np.repeat([0, 1], 200)
    ref = centres[labels] + rng.normal(size=(400, 8))
    iid = centres[np.repeat([0, 1], 500)] + rng.normal(size=(1000, 8))
    novel = np.r_[0.0, 0.0, 5.0, np.zeros(5)] + rng.normal(size=(300, 8))
    return ref, labels, iid, novel


def test_knn_leaves_each_reference_row_out() -> None:
    ref, _, _, _ = _data()
    own, query = nc.knn(ref, ref)
    assert np.all(own > 1e-9)  # not the row's zero distance to itself
    assert np.allclose(query, 0.0, atol=1e-9)  # a query identical to a row is at distance 0


def test_scores_put_a_new_cluster_beyond_the_reference_and_iid_at_its_rate() -> None:
    ref, labels, iid, novel = _data()
    query = np.concatenate([iid, novel])
    for own, scores in (nc.knn(ref, query), nc.mahalanobis(ref, labels, query)):
        t95 = np.quantile(own, 0.95)
        assert 0.02 <= np.mean(scores[:1000] > t95) <= 0.09  # out-of-sample reference: iid near 5%
        assert np.mean(scores[1000:] > t95) > 0.9


def test_energy_is_lower_for_confident_logits() -> None:
    logits = np.array([[10.0, -10.0], [0.1, 0.0]])
    e = nc.energy(logits)
    assert e[0] < e[1]
    assert np.isclose(e[1], -np.log(np.exp(0.1) + np.exp(0.0)))

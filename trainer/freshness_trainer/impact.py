"""Does a change of the inputs hurt the model? Label-free accuracy estimate and novelty (issue 14). Pure.

Three signals of a drift check (``freshness_contract.trigger`` decides which start a retrain):

* **distribution** (``drift_rule.decide``): the inputs changed; says nothing about the damage;
* **estimated accuracy** (CBPE, NannyML's confidence-based performance estimation): the mean of the
  model's *calibrated* top-class confidence over the window estimates its accuracy there without
  labels. ``fit_calibration`` fits the calibration on the held-out images (validation and reference
  split) at training time (Platt scaling of the top-class confidence: ``p(correct) = sigmoid(a·logit(c) + b)``, with a
  Gaussian prior centred on the identity ``a = 1, b = 0``, tight on the slope and nearly flat on the
  intercept, so that a small or error-free held-out set yields a usable map instead of a
  divergent fit, and the mean calibrated confidence on it equals its accuracy). Valid for covariate
  shift: a change of the inputs under which confidence stays calibrated;
* **novelty**: calibration cannot see classes the model has never seen (it is confidently wrong on
  them). ``novelty`` runs two or three tail tests against the reference and reports the window's share
  beyond any threshold: the **distance** test (each image's cosine distance to its nearest
  reference neighbour in the model's embedding space, rows L2-normalised, beyond the
  ``DISTANCE_PERCENTILE`` (90th) of the reference's own leave-one-out distances) and the
  **feature-norm** test (the L2 norm of the raw embedding beyond ``NORM_MARGIN`` (1.1) times the
  ``NORM_PERCENTILE`` (99.9th) of the reference's norms: images unlike anything seen in training
  often excite the last hidden layer much more strongly, which normalising the rows hides; line
  drawings in the drift-quality benchmark are found this way and not by distance), and, when the
  model file and the window carry them, the **early-feature distance** test: the same
  nearest-neighbour test on ``features.early_features`` (the trunk's second pooling layer on each
  image standardised by its own mean and deviation, so brightness and contrast do not move it).
  A new class that the last hidden layer maps among the known ones (the sample set's bees: 14% of
  them beyond the 95th percentile of the demo model's last-layer distances) differs in texture and
  local shape (39% there); benchmarks/novelty_candidates.py measures it. Each of the ``t`` tests
  (2 or 3) runs at ``alpha / t`` and the reported p-value is the Bonferroni one, ``min(1, t·min(p))``.

When novelty is detected, ``estimate_accuracy`` is given the images farther out than
``ERROR_PERCENTILE`` (95th) of the last hidden layer's distances, or beyond the norm threshold, and
counts them as errors (the calibration does not cover them; counting them wrong is the pessimistic
choice) after correcting for the share the reference itself implies; otherwise the estimate is plain
CBPE. The early features' distance detects but flags no errors: counted as errors too, its images
made the estimate up to 26 points too low on rotated, darker and blurred images the model still
classifies right (benchmarks/drift_quality.py at b595425).

The distance test is exact (the norm test conservative: its threshold is scaled up by the margin)
under "window and reference are i.i.d. from one distribution": the threshold is the r-th smallest
of n reference scores (``r = ceil(q·(n+1))``, the conformal quantile), so the chance U that a new
image exceeds it is Beta(n+1-r, r) distributed and the count of m window images above it is
beta-binomial(m, n+1-r, r). Its p-value therefore accounts for the uncertainty of a small reference
(60 images give a wide null; hundreds a sharp one); ``reference_rate`` is E[U] = (n+1-r)/(n+1),
summed over the tests (a bound on the union's rate). Window images are compared with all n
reference images, reference images with n-1 others, so the distance test errs on the conservative
side; the norm needs no neighbours.

Everything here is a pure function of numpy arrays (scipy for the beta-binomial tail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import betabinom

if TYPE_CHECKING:
    from freshness_contract.trigger import Decision

CALIBRATION_METHOD = "platt-logit-confidence"
PRIOR_SD = 0.1
"""Prior standard deviation of the slope ``a`` around 1 (the identity map), in logit units: tight, so
the calibration is in effect a shift of the logit (the intercept). A free slope fitted on 660
held-out images (1.44) over-reacted to the lower confidence of darker images the model still gets
right (benchmarks/drift_quality.py pools: -3.8 points on 20% darker, a harmless shift, against
-2.7 with this prior, slope 1.06), and was no better on any other shift measured."""
INTERCEPT_PRIOR_SD = 10.0
"""Of the intercept ``b`` around 0: nearly flat, so the mean calibrated confidence on the fitting
data equals its accuracy (the intercept's score equation), as a reference accuracy must; finite
only to keep an error-free validation split from diverging."""
DISTANCE_PERCENTILE = 90.0
"""Of the distance test's threshold: a window image is novel when it lies farther from the reference
than 90% of the reference's own images (conformal rank). A share test at a moderate percentile has
more power than one at the 99th for changes that move many images a little (noise, rotation): on a
660-image reference the 99th percentile is set by a few odd renders, as far out as most bees."""
NORM_PERCENTILE = 99.9
NORM_MARGIN = 1.1
"""The norm test's threshold: ``NORM_MARGIN`` times the reference norms' ``NORM_PERCENTILE`` (their
maximum below 999 images). Brighter or higher-contrast images raise every norm a few per cent (a
harmless change, under a point of accuracy) and cross a plain percentile in numbers; another domain
(line drawings) doubles it. Under exchangeability an image exceeds the margin-scaled threshold less
often than the plain one, so the plain rank's beta-binomial p-value stays valid (conservative)."""
ERROR_PERCENTILE = 95.0
"""Which of a detected window's images the estimate counts as errors: those farther than this
percentile of the reference's own distances (or beyond the norm threshold). Stricter than the
detection's ``DISTANCE_PERCENTILE``: at the 90th, much of a 30%-darker window lies beyond it though
most of those images are still classified right (estimate 17 points too low). Chosen on the
drift-quality benchmark's pools among 93/95/97/99 (the estimate within 3 points on 1, 6, 5 and 3 of
10 damaging cells): a tuned value, not a derived one."""
ALPHA = 0.02
"""Of the novelty test: its false-positive rate on i.i.d. windows is at most this (each of its tests at
``ALPHA`` divided by their number)."""
Z95 = 1.959963984540054
_EPS = 1e-6


def _logit(confidence: ArrayLike) -> NDArray[np.float64]:
    c = np.clip(np.asarray(confidence, dtype=np.float64), _EPS, 1 - _EPS)
    return np.asarray(np.log(c) - np.log1p(-c), dtype=np.float64)


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """``p(correct | confidence c) = sigmoid(a·logit(c) + b)``; ``cov``: the Laplace posterior
    covariance of (a, b), which widens the estimate's interval when the fit rests on few images."""

    a: float = 1.0
    b: float = 0.0
    cov: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))
    samples: int = 0
    method: str = CALIBRATION_METHOD

    def apply(self, confidence: ArrayLike) -> NDArray[np.float64]:
        """Calibrated probability that each prediction is correct."""
        return _sigmoid(self.a * _logit(confidence) + self.b)

    def to_json(self) -> dict[str, Any]:
        """A dict of primitives (saved in the model file and in JSON documents)."""
        return {"method": self.method, "a": self.a, "b": self.b, "cov": [list(r) for r in self.cov],
                "samples": self.samples}

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Calibration:
        """Inverse of ``to_json``; ValueError naming the field on a bad document."""
        if doc.get("method") != CALIBRATION_METHOD:
            raise ValueError(f"calibration.method: {doc.get('method')!r} is not {CALIBRATION_METHOD!r}")
        try:
            (c00, c01), (c10, c11) = doc["cov"]
            return Calibration(float(doc["a"]), float(doc["b"]), ((float(c00), float(c01)), (float(c10), float(c11))),
                               int(doc["samples"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"calibration: expected a, b, cov (2x2) and samples: {exc}") from exc


@dataclass(frozen=True)
class Estimate:
    """Estimated accuracy on a window with a 95% interval (realised-accuracy noise + fit uncertainty)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Novelty:
    """Share of the window beyond any test's threshold (distance, feature norm, early-feature distance),
    and the combined test."""

    share: float
    reference_rate: float
    p_value: float
    detected: bool
    threshold: float = 0.0  # the cosine-distance threshold
    samples: int = 0
    reference_samples: int = 0
    norm_threshold: float = 0.0
    distance_p: float = 1.0
    norm_p: float = 1.0
    error_rate: float = 0.0
    """The share of i.i.d. images the estimate's error flags (``ERROR_PERCENTILE``) imply."""
    early_threshold: float | None = None
    """The early-feature distance test's threshold; None when the window had no early features."""
    early_p: float | None = None


def _pair(confidence: ArrayLike, correct: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    c = np.asarray(confidence, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    if c.shape != y.shape:
        raise ValueError(f"correct: {y.shape[0]} values for {c.shape[0]} confidences")
    if c.size and (np.any(~np.isfinite(c)) or c.min() < 0 or c.max() > 1):
        raise ValueError("confidence: values must lie in [0, 1]")
    return c, y


def fit_calibration(confidence: ArrayLike, correct: ArrayLike, prior_sd: float = PRIOR_SD,
                    intercept_prior_sd: float = INTERCEPT_PRIOR_SD) -> Calibration:
    """Fit the calibration on held-out data (the validation split): MAP by Newton's method."""
    c, y = _pair(confidence, correct)
    x = np.stack([_logit(c), np.ones_like(c)], axis=1)
    prior = np.array([1.0, 0.0])
    w = prior.copy()
    precision = np.diag([1 / prior_sd**2, 1 / intercept_prior_sd**2])
    hess = precision
    for _ in range(100):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + precision @ (w - prior)
        hess = (x * (p * (1 - p))[:, None]).T @ x + precision
        step = np.linalg.solve(hess, grad)
        w = w - step
        if float(np.abs(step).max()) < 1e-10:
            break
    p = _sigmoid(x @ w)
    hess = (x * (p * (1 - p))[:, None]).T @ x + precision
    cov = np.linalg.inv(hess)
    return Calibration(float(w[0]), float(w[1]), ((float(cov[0, 0]), float(cov[0, 1])),
                                                   (float(cov[1, 0]), float(cov[1, 1]))), int(c.size))


def estimate_accuracy(cal: Calibration, confidence: ArrayLike, novel: ArrayLike | None = None,
                      novel_rate: float = 0.0) -> Estimate:
    """CBPE: mean calibrated confidence over the window, with a 95% normal interval.

    Variance = Poisson-binomial variance of the realised accuracy, Σ p(1-p)/n², plus the delta-method
    variance of the mean through the calibration's (a, b) posterior covariance. ``novel`` (a boolean
    per image, from a detected ``novelty_test``): those images count as errors and the others'
    probabilities are divided by ``1 - novel_rate`` (the share the reference itself implies), the
    estimate never rising above plain CBPE.
    """
    c = np.asarray(confidence, dtype=np.float64).ravel()
    if c.size == 0:
        raise ValueError("confidence: the window is empty")
    if not 0 <= novel_rate < 1:
        raise ValueError(f"novel_rate: {novel_rate} is not in [0, 1)")
    z = _logit(c)
    p = _sigmoid(cal.a * z + cal.b)
    scale = np.ones_like(p)
    if novel is not None:
        flags = np.asarray(novel, dtype=bool).ravel()
        if flags.shape != c.shape:
            raise ValueError(f"novel: {flags.size} flags for {c.size} confidences")
        kept = np.where(flags, 0.0, 1.0 / (1.0 - novel_rate))
        if float(np.mean(np.minimum(p * kept, 1.0))) < float(p.mean()):
            scale = kept
    q = np.minimum(p * scale, 1.0)
    value = float(q.mean())
    dp = p * (1 - p) * np.where(q < 1.0, scale, 0.0)
    grad = np.array([float(np.mean(dp * z)), float(np.mean(dp))])
    var = float(np.sum(q * (1 - q))) / c.size**2 + float(grad @ np.asarray(cal.cov) @ grad)
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate(value, max(0.0, value - half), min(1.0, value + half))


def window_estimate(cal: Calibration, confidence: ArrayLike, found: Novelty, novel: ArrayLike) -> Estimate:
    """The estimate a drift check reports: ``estimate_accuracy`` with the images ``novelty_flags``
    found counted as errors when (and only when) the novelty test detected them."""
    return estimate_accuracy(cal, confidence, novel if found.detected else None, found.error_rate)


def expected_calibration_error(probability: ArrayLike, correct: ArrayLike, bins: int = 10) -> float:
    """ECE: Σ_b (n_b/n)·|mean correct - mean probability| over equal-width probability bins."""
    p, y = _pair(probability, correct)
    if p.size == 0:
        return 0.0
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += float(m.sum()) * abs(float(y[m].mean()) - float(p[m].mean()))
    return total / p.size


def _unit(x: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows = images), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: values must be finite")
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return np.asarray(a / np.where(norm > 0, norm, 1.0), dtype=np.float64)


def _kth_distance(queries: NDArray[np.float64], ref: NDArray[np.float64], k: int, *, self_offset: int | None = None,
                  chunk: int = 1024) -> NDArray[np.float64]:
    """Cosine distance (1 - cos) from each query to its k-th nearest reference row; with ``self_offset``
    the queries are ``ref[self_offset:]`` and each one's own row is left out."""
    out = np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        d = 1.0 - queries[start:start + chunk] @ ref.T
        if self_offset is not None:
            rows = np.arange(d.shape[0])
            d[rows, self_offset + start + rows] = np.inf
        out[start:start + chunk] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return np.maximum(out, 0.0)


def _subsample(x: NDArray[np.float64], max_rows: int) -> NDArray[np.float64]:
    if len(x) <= max_rows:
        return x
    return x[np.linspace(0, len(x) - 1, max_rows).round().astype(np.int64)]


def _distances(reference: ArrayLike, production: ArrayLike, names: tuple[str, str], k: int, max_reference: int
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """k-th nearest-neighbour cosine distances: (reference rows, leave-one-out; window rows)."""
    ref = _subsample(_unit(reference, names[0]), max_reference)
    cur = _unit(production, names[1])
    if len(ref) < k + 1:
        raise ValueError(f"{names[0]}: {len(ref)} rows; at least k + 1 = {k + 1} are needed")
    if len(cur) and cur.shape[1] != ref.shape[1]:
        raise ValueError(f"{names[1]}: {cur.shape[1]} columns but the reference has {ref.shape[1]}")
    return _kth_distance(ref, ref, k, self_offset=0), _kth_distance(cur, ref, k) if len(cur) else np.zeros(0)


def novelty_scores(reference_emb: ArrayLike, production_emb: ArrayLike, *, k: int = 1,
                   max_reference: int = 5000, reference_early: ArrayLike | None = None,
                   production_early: ArrayLike | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per image (reference, window): column 0 the k-th nearest-neighbour cosine distance to the
    reference (leave-one-out for reference rows), column 1 the L2 norm of the raw embedding, and,
    when both early feature sets are given (``features.early_features``), column 2 the same
    distance on them.

    At most ``max_reference`` reference rows are used (evenly spaced, deterministic) to bound the
    O(n²) leave-one-out pass."""
    if (reference_early is None) != (production_early is None):
        raise ValueError("reference_early, production_early: give both or neither")
    ref_dist, cur_dist = _distances(reference_emb, production_emb, ("reference_emb", "production_emb"), k,
                                    max_reference)
    raw_ref = _subsample(np.asarray(reference_emb, dtype=np.float64), max_reference)
    raw_cur = np.asarray(production_emb, dtype=np.float64)
    ref_cols, cur_cols = [ref_dist, np.linalg.norm(raw_ref, axis=1)], [cur_dist, np.linalg.norm(raw_cur, axis=1)]
    if reference_early is not None and production_early is not None:
        if len(np.asarray(reference_early)) != len(np.asarray(reference_emb)):
            raise ValueError(f"reference_early: {len(np.asarray(reference_early))} rows for "
                             f"{len(np.asarray(reference_emb))} reference embeddings")
        if len(np.asarray(production_early)) != len(raw_cur):
            raise ValueError(f"production_early: {len(np.asarray(production_early))} rows for {len(raw_cur)} "
                             "window embeddings")
        ref_early, cur_early = _distances(reference_early, production_early, ("reference_early", "production_early"),
                                          k, max_reference)
        ref_cols.append(ref_early)
        cur_cols.append(cur_early)
    return np.stack(ref_cols, axis=1), np.stack(cur_cols, axis=1).reshape(len(raw_cur), len(cur_cols))


def conformal_rank(n: int, q: float) -> int:
    """The rank (1-based, ascending) of the conformal ``q``-th percentile among ``n`` reference scores:
    a window image exchangeable with the reference lies beyond it with chance ``(n + 1 - r) / (n + 1)``."""
    return min(n, math.ceil(q / 100 * (n + 1)))


def tail_percentiles(columns: int, percentile: float = DISTANCE_PERCENTILE,
                     norm_percentile: float = NORM_PERCENTILE) -> list[float]:
    """The percentile of each ``novelty_scores`` column's tail test: distance, norm, early distance."""
    return [percentile, norm_percentile, percentile][:columns]


def novelty_test(reference_scores: NDArray[np.float64], window_scores: NDArray[np.float64],
                 percentile: float = DISTANCE_PERCENTILE, alpha: float = ALPHA, *,
                 norm_percentile: float = NORM_PERCENTILE, norm_margin: float = NORM_MARGIN,
                 ) -> tuple[Novelty, NDArray[np.bool_]]:
    """The tail tests of ``novelty_scores``' columns (module docstring): (the result, which window
    images the estimate counts as errors when novelty is detected: beyond ``ERROR_PERCENTILE`` of the
    last hidden layer's distances or beyond the norm threshold; not the early features', which move
    far on rotated or darker images the model still classifies right). ``percentile``: the distance tests'; the norm
    threshold is ``norm_margin`` times the reference norms' ``norm_percentile``. ``share``: the
    window's share beyond any test's threshold. ``detected``: the Bonferroni p-value < ``alpha``."""
    for name, q in (("percentile", percentile), ("norm_percentile", norm_percentile)):
        if not 0 < q < 100:
            raise ValueError(f"{name}: {q} is not in (0, 100)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: {alpha} is not in (0, 1)")
    if norm_margin < 1:
        raise ValueError(f"norm_margin: {norm_margin} is below 1")
    if reference_scores.ndim != 2 or reference_scores.shape[1] not in (2, 3):
        raise ValueError(f"reference_scores: expected 2 or 3 columns (novelty_scores), got shape "
                         f"{reference_scores.shape}")
    if window_scores.ndim != 2 or window_scores.shape[1] != reference_scores.shape[1]:
        raise ValueError(f"window_scores: shape {window_scores.shape} does not match the reference's "
                         f"{reference_scores.shape[1]} columns")
    n, m, cols = len(reference_scores), len(window_scores), reference_scores.shape[1]
    ranks = [conformal_rank(n, q) for q in tail_percentiles(cols, percentile, norm_percentile)]
    ordered = np.sort(reference_scores, axis=0)
    margins = np.array([1.0, norm_margin, 1.0][:cols])
    thresholds = margins * np.array([ordered[r - 1, j] for j, r in enumerate(ranks)])
    rate = sum((n + 1 - r) / (n + 1) for r in ranks)
    beyond = window_scores > thresholds
    r_err = conformal_rank(n, ERROR_PERCENTILE)
    err_rate = (n + 1 - r_err) / (n + 1) + (n + 1 - ranks[1]) / (n + 1)
    errors = (window_scores[:, 0] > ordered[r_err - 1, 0]) | beyond[:, 1]
    early = float(thresholds[2]) if cols == 3 else None
    if m == 0:
        return Novelty(0.0, rate, 1.0, False, float(thresholds[0]), 0, n, float(thresholds[1]),
                       error_rate=err_rate, early_threshold=early), errors
    p = [float(betabinom.sf(int(beyond[:, j].sum()) - 1, m, n + 1 - r, r)) for j, r in enumerate(ranks)]
    p_value = min(1.0, cols * min(p))
    return Novelty(float(beyond.any(axis=1).mean()), rate, p_value, p_value < alpha, float(thresholds[0]), m, n,
                   float(thresholds[1]), p[0], p[1], err_rate, early, p[2] if cols == 3 else None), errors


def novelty(reference_emb: ArrayLike, production_emb: ArrayLike, percentile: float = DISTANCE_PERCENTILE, *, k: int = 1,
            alpha: float = ALPHA, max_reference: int = 5000, norm_margin: float = NORM_MARGIN,
            reference_early: ArrayLike | None = None, production_early: ArrayLike | None = None) -> Novelty:
    """The novelty share of a window and its test (``novelty_scores`` then ``novelty_test``).

    ``reference_emb`` (n x d): held-out images' embeddings; ``*_early``: their early features, for
    the third test. ``detected``: p < ``alpha``.
    """
    return novelty_flags(reference_emb, production_emb, percentile, k=k, alpha=alpha,
                         max_reference=max_reference, norm_margin=norm_margin,
                         reference_early=reference_early, production_early=production_early)[0]


def novelty_flags(reference_emb: ArrayLike, production_emb: ArrayLike, percentile: float = DISTANCE_PERCENTILE, *,
                  k: int = 1, alpha: float = ALPHA, max_reference: int = 5000, norm_margin: float = NORM_MARGIN,
                  reference_early: ArrayLike | None = None, production_early: ArrayLike | None = None,
                  ) -> tuple[Novelty, NDArray[np.bool_]]:
    """``novelty`` with the per-image flags (for ``estimate_accuracy``'s ``novel``)."""
    ref, cur = novelty_scores(reference_emb, production_emb, k=k, max_reference=max_reference,
                              reference_early=reference_early, production_early=production_early)
    return novelty_test(ref, cur, percentile, alpha, norm_margin=norm_margin)


def trigger(policy: str, distribution_detected: bool, estimate: Estimate | None, reference_accuracy: float | None,
            accuracy_drop_threshold: float | None, novelty: Novelty | None,
            measured_accuracy: float | None = None) -> Decision:
    """``freshness_contract.trigger.decide`` (the operator's rule) on this module's types."""
    from freshness_contract.trigger import decide as decide_trigger

    return decide_trigger(
        policy,
        distribution_detected=distribution_detected,
        accuracy_drop=accuracy_drop_threshold,
        reference_accuracy=reference_accuracy,
        estimated_accuracy=None if estimate is None else estimate.value,
        measured_accuracy=measured_accuracy,
        novelty_detected=novelty is not None and novelty.detected,
    )

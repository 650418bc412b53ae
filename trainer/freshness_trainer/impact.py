"""Does a change of the inputs hurt the model? Label-free accuracy estimate and novelty (issue 14). Pure.

Three signals of a drift check (``freshness_contract.trigger`` decides which start a retrain):

* **distribution** (``drift_rule.decide``): the inputs changed; says nothing about the damage;
* **estimated accuracy** (CBPE, NannyML's confidence-based performance estimation): the mean of the
  model's *calibrated* top-class confidence over the window estimates its accuracy there without
  labels. ``fit_calibration`` fits the calibration on the held-out validation split at training
  time (Platt scaling of the top-class confidence: ``p(correct) = sigmoid(a·logit(c) + b)``, with a
  Gaussian prior centred on the identity ``a = 1, b = 0``, tight on the slope and nearly flat on the
  intercept, so that a small or error-free validation split yields a usable map instead of a
  divergent fit, and the mean calibrated confidence on the split equals its accuracy). Valid for covariate
  shift: a change of the inputs under which confidence stays calibrated;
* **novelty**: calibration cannot see classes the model has never seen (it is confidently wrong on
  them). ``novelty`` measures the share of the window whose nearest neighbour in the model's
  embedding space (cosine distance, rows L2-normalised) is farther than a high percentile of the
  reference's own leave-one-out nearest-neighbour distances, and tests it against the rate the
  reference itself implies.

The novelty test is exact under "window and reference are i.i.d. from one distribution": the
threshold is the r-th smallest of n reference scores (``r = ceil(q·(n+1))``, the conformal
quantile), so the chance U that a new image exceeds it is Beta(n+1-r, r) distributed and the count
of m window images above it is beta-binomial(m, n+1-r, r). Its p-value therefore accounts for the
uncertainty of a small reference (a validation split of 60 images gives a wide null; thousands give
a sharp one); ``reference_rate`` is E[U] = (n+1-r)/(n+1). Window images are compared with all n
reference images, reference images with n-1 others, so the test errs on the conservative side.

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
PRIOR_SD = 1.0
"""Prior standard deviation of the slope ``a`` around 1 (the identity map), in logit units."""
INTERCEPT_PRIOR_SD = 10.0
"""Of the intercept ``b`` around 0: nearly flat, so the mean calibrated confidence on the fitting
data equals its accuracy (the intercept's score equation), as a reference accuracy must; finite
only to keep an error-free validation split from diverging."""
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
    """Share of the window beyond the reference's distance threshold, and its test."""

    share: float
    reference_rate: float
    p_value: float
    detected: bool
    threshold: float = 0.0  # the cosine-distance threshold
    samples: int = 0
    reference_samples: int = 0


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


def estimate_accuracy(cal: Calibration, confidence: ArrayLike) -> Estimate:
    """CBPE: mean calibrated confidence over the window, with a 95% normal interval.

    Variance = Poisson-binomial variance of the realised accuracy, Σ p(1-p)/n², plus the delta-method
    variance of the mean through the calibration's (a, b) posterior covariance.
    """
    c = np.asarray(confidence, dtype=np.float64).ravel()
    if c.size == 0:
        raise ValueError("confidence: the window is empty")
    z = _logit(c)
    p = _sigmoid(cal.a * z + cal.b)
    value = float(p.mean())
    dp = p * (1 - p)
    grad = np.array([float(np.mean(dp * z)), float(np.mean(dp))])
    var = float(np.sum(dp)) / c.size**2 + float(grad @ np.asarray(cal.cov) @ grad)
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate(value, max(0.0, value - half), min(1.0, value + half))


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


def novelty(reference_emb: ArrayLike, production_emb: ArrayLike, percentile: float = 99.0, *, k: int = 1,
            alpha: float = 0.01, max_reference: int = 5000) -> Novelty:
    """The novelty share of a window and its one-sided beta-binomial test (module docstring).

    ``reference_emb`` (n x d): held-out images' embeddings; at most ``max_reference`` rows are used
    (evenly spaced, deterministic) to bound the O(n²) leave-one-out pass. ``detected``: p < ``alpha``.
    """
    if not 0 < percentile < 100:
        raise ValueError(f"percentile: {percentile} is not in (0, 100)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: {alpha} is not in (0, 1)")
    ref = _subsample(_unit(reference_emb, "reference_emb"), max_reference)
    cur = _unit(production_emb, "production_emb")
    n, m = len(ref), len(cur)
    if n < k + 1:
        raise ValueError(f"reference_emb: {n} rows; at least k + 1 = {k + 1} are needed")
    if m and cur.shape[1] != ref.shape[1]:
        raise ValueError(f"production_emb: {cur.shape[1]} columns but the reference has {ref.shape[1]}")
    loo = np.sort(_kth_distance(ref, ref, k, self_offset=0))
    r = min(n, math.ceil(percentile / 100 * (n + 1)))
    threshold = float(loo[r - 1])
    rate = (n + 1 - r) / (n + 1)
    if m == 0:
        return Novelty(0.0, rate, 1.0, False, threshold, 0, n)
    above = int(np.sum(_kth_distance(cur, ref, k) > threshold))
    p_value = float(betabinom.sf(above - 1, m, n + 1 - r, r))
    return Novelty(above / m, rate, p_value, p_value < alpha, threshold, m, n)


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

"""The two distribution rules of the drift-quality benchmark, fast enough for ~10,000 batches.

* ``Tests.pvalues`` returns exactly what ``drift_rule.feature_pvalues`` (the drift step's per-column
  tests, equal to Evidently's) returns, memoised: scipy's two-sample K-S p-value is a function of
  the two sample sizes and the statistic D alone (exact below 10,000 rows, asymptotic above), and
  D is a multiple of 1/(n1·n2), so one ``ks_2samp`` call per distinct (n1, n2, D) answers every
  batch with that D; the chi-square p-value of ``predicted`` is a function of its counts. The
  benchmark compares it with ``drift_rule.feature_pvalues`` on sample batches every run.
* ``Tests.evidently`` is ``DataDriftPreset()``'s default decision on the same columns: per column
  Evidently's default test while the reference has at most 1,000 rows (K-S for a numerical column
  with more than five values, else chi-square above two values and the two-sample proportions
  z-test for two; drifted at p <= 0.05 for K-S, p < 0.05 otherwise), dataset drift when at least
  half of the columns drift. ``evidently_preset`` runs the real preset to check it.
* ``Impact``: the impact trigger's two signals, per-image work done once per pool (its docstring).
"""

from __future__ import annotations

import inspect
from collections import Counter

import numpy as np
import pandas as pd
from freshness_trainer import drift_rule, impact
from freshness_trainer.features import CATEGORICAL
from scipy.stats import ks_2samp, norm

DRIFT_SHARE = 0.5  # DataDriftPreset()'s default
ALPHA = 0.05  # Evidently's default per-column threshold


def z_test_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's ``z`` test (two-sample proportions, two-sided) of a two-valued column. Pure."""
    keys = sorted(set(reference.dropna()) | set(current.dropna()), key=str)
    if len(keys) < 2:
        return 1.0
    p1, p2 = float(np.mean(reference != keys[0])), float(np.mean(current != keys[0]))
    n1, n2 = len(reference), len(current)
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * (1 - norm.cdf(np.abs(z))))


MAX_REFERENCE = 1000
"""Evidently's default switches its numerical columns to distance tests above this many reference rows."""


class Tests:
    """Per-column p-values of batches against one reference table (module docstring)."""

    def __init__(self, reference: pd.DataFrame) -> None:
        if len(reference) > MAX_REFERENCE:
            raise ValueError(f"reference: Evidently's default switches to distance tests above {MAX_REFERENCE:,} rows")
        self.reference = reference
        self.numerical = [c for c in reference.columns if c not in CATEGORICAL]
        self._sorted = {c: np.sort(reference[c].to_numpy(np.float64)) for c in self.numerical}
        self._many = {c: reference[c].nunique() > 5 for c in self.numerical}
        self._memo: dict[tuple[object, ...], float] = {}

    def _ks(self, column: str, values: np.ndarray) -> float:
        ref, cur = self._sorted[column], np.sort(values)
        n1, n2 = len(ref), len(cur)
        both = np.concatenate([ref, cur])
        d = float(np.max(np.abs(np.searchsorted(ref, both, "right") / n1 - np.searchsorted(cur, both, "right") / n2)))
        key = ("ks", n1, n2, round(d * n1 * n2))
        if key not in self._memo:
            self._memo[key] = float(ks_2samp(ref, cur)[1])
        return self._memo[key]

    def _counts(self, test: str, column: str, current: pd.Series) -> float:
        key = (test, column, len(current), tuple(sorted(Counter(current.to_numpy()).items(), key=str)))
        if key not in self._memo:
            ref = self.reference[column]
            chi = test == "chi"
            self._memo[key] = drift_rule.chi_square_pvalue(ref, current) if chi else z_test_pvalue(ref, current)
        return self._memo[key]

    def pvalues(self, current: pd.DataFrame) -> dict[str, float]:
        """``drift_rule.feature_pvalues(reference, current)``, memoised."""
        out = {}
        for col in self.reference.columns:
            if col in CATEGORICAL:
                out[col] = self._counts("chi", col, current[col])
            else:
                out[col] = self._ks(col, current[col].to_numpy(np.float64))
        return out

    def evidently(self, current: pd.DataFrame, pvalues: dict[str, float]) -> tuple[float, bool]:
        """(share of drifted columns, dataset drift) as ``DataDriftPreset()`` decides by default;
        ``pvalues`` from ``pvalues`` (its K-S p-values are Evidently's)."""
        drifted = 0
        for col in self.reference.columns:
            many = col not in CATEGORICAL and (
                self._many[col] or pd.concat([self.reference[col], current[col]]).nunique() > 5)
            if many:
                drifted += pvalues[col] <= ALPHA
                continue
            values = len(set(self.reference[col].dropna()) | set(current[col].dropna()))
            drifted += self._counts("chi" if values > 2 else "z", col, current[col]) < ALPHA
        share = drifted / len(self.reference.columns)
        return share, share >= DRIFT_SHARE


def evidently_preset(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, bool]:
    """The real ``DataDriftPreset()`` (all defaults) on the same columns: (share, dataset drift)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
                                categorical_columns=[c for c in reference.columns if c in CATEGORICAL])
    snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(current, data_definition=definition),
                                           Dataset.from_pandas(reference, data_definition=definition))
    for m in snap.dict()["metrics"]:
        if m.get("config", {}).get("type", "").endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
            return share, share >= float(m["config"].get("drift_share", DRIFT_SHARE))
    raise RuntimeError("Evidently's DataDriftPreset reported no DriftedColumnsCount")


class Impact:
    """``drift_step.signals``' two label-free signals for many batches against one reference, fast.

    The per-image novelty scores (``impact.novelty_scores``: distance to the nearest reference image,
    feature norm, early features' distance) are computed once per pool image (``distances``); a batch's test is
    ``impact.novelty_test`` on its rows and its estimate ``impact.estimate_accuracy`` with the
    novelty flags, as ``drift_step.signals`` does. The benchmark compares both with ``drift_step.signals``
    on sample batches.
    """

    def __init__(self, calibration: impact.Calibration, reference_accuracy: float | None,
                 reference_embeddings: np.ndarray, reference_early: np.ndarray | None = None) -> None:
        if len(reference_embeddings) > inspect.signature(impact.novelty).parameters["max_reference"].default:
            raise ValueError("Impact reproduces impact.novelty for an unsampled reference only")
        self.calibration = calibration
        self.reference_accuracy = reference_accuracy
        self._ref = np.asarray(reference_embeddings, dtype=np.float64)
        self._early = None if reference_early is None else np.asarray(reference_early, dtype=np.float64)
        self._ref_scores = impact.novelty_scores(
            self._ref, self._ref[:0], reference_early=self._early,
            production_early=None if self._early is None else self._early[:0])[0]

    def distances(self, embeddings: np.ndarray, early: np.ndarray | None = None) -> np.ndarray:
        """Per image: ``impact.novelty_scores``' window columns (distance, feature norm, and the early
        features' distance when the reference has them)."""
        return impact.novelty_scores(self._ref, np.asarray(embeddings, dtype=np.float64), reference_early=self._early,
                                     production_early=None if self._early is None else early)[1]

    def novelty(self, scores: np.ndarray) -> tuple[impact.Novelty, np.ndarray]:
        """The novelty test of a batch from its rows of ``distances``, and its per-image flags."""
        return impact.novelty_test(self._ref_scores, scores)

    def estimate(self, confidence: np.ndarray, novelty: impact.Novelty, flags: np.ndarray) -> impact.Estimate:
        return impact.window_estimate(self.calibration, confidence, novelty, flags)

"""The drift decision (docs/architecture.md §4): per-feature tests over the feature table, then one rule.

Per-feature tests: Evidently's own tests, chosen explicitly so they do not change with the size of
the reference (Evidently's defaults switch to distance metrics above 1,000 reference rows):
two-sample Kolmogorov-Smirnov for numerical columns (drifted when p <= 0.05) and chi-square of
the current counts against the reference shares for the categorical ``predicted`` column
(drifted when p < 0.05). ``feature_pvalues`` computes them with scipy exactly as Evidently 0.7.23
does (``evidently.legacy.calculations.stattests.ks_stattest`` / ``chisquare_stattest``); a test
checks both give the same p-values, and ``evidently_pvalues`` runs them through Evidently.

Decision rule (one statistic, a false-alarm rate you can read off the threshold):

* combine the m per-feature p-values with Simes' test: ``p_combined = min_i(m * p_(i) / i)``
  over the sorted p-values. It is the p-value of "no feature drifted"; it controls the false-alarm
  rate for positively dependent tests (our features are), and it is more powerful than Bonferroni
  when several features move a little, while one feature moving a lot (the new class shows up
  mostly in ``predicted`` and one principal component) is enough on its own;
* ``score = 1 - p_combined``; drift is detected when ``score >= threshold``. The default 0.95 means
  "at most a 5% false-alarm rate per check" (measured: see trainer/README.md);
* with labelled production images, an accuracy drop of more than ``accuracy_drop`` below the
  reference accuracy also counts as drift;
* ``share`` (reported, not decided on) is Evidently's dataset-drift share: drifted features at
  p < 0.05 over all features.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from freshness_contract.trigger import DEFAULT_ACCURACY_DROP as DEFAULT_ACCURACY_DROP  # re-exported
from freshness_contract.trigger import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD  # re-exported
from scipy.stats import chisquare, ks_2samp

from freshness_trainer.features import CATEGORICAL

METHOD = "simes(ks,chisquare) over model outputs + image stats; score=1-p"
STATTEST_THRESHOLD = 0.05  # Evidently's per-column default; params.yaml drift.stattest_threshold


@dataclass(frozen=True)
class Accuracy:
    """Serving accuracy on labelled production images beside its reference accuracy."""

    current: float
    reference: float

    @property
    def drop(self) -> float:
        return self.reference - self.current


@dataclass(frozen=True)
class Verdict:
    """The outcome of one drift check."""

    detected: bool
    share: float
    score: float
    threshold: float
    pvalues: dict[str, float]
    drifted: list[str]
    accuracy: Accuracy | None = None
    accuracy_drifted: bool = False

    def top_features(self, k: int = 10) -> list[str]:
        """Drifted features, most significant first."""
        return sorted(self.drifted, key=lambda c: self.pvalues[c])[:k]


def chi_square_pvalue(reference: pd.Series, current: pd.Series) -> float:
    """Evidently's ``chisquare`` test: current counts against reference shares. Pure."""
    keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)
    ref_counts = reference.value_counts()
    cur_counts = current.value_counts()
    k_norm = len(current) / len(reference)
    f_exp = [float(ref_counts.get(k, 0)) * k_norm for k in keys]
    f_obs = [float(cur_counts.get(k, 0)) for k in keys]
    if len(keys) < 2:
        return 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(chisquare(f_obs, f_exp)[1])


def is_drifted(column: str, pvalue: float, alpha: float = STATTEST_THRESHOLD) -> bool:
    """Evidently's drift condition: K-S ``p <= alpha``, chi-square ``p < alpha``."""
    return pvalue < alpha if column in CATEGORICAL else pvalue <= alpha


def feature_pvalues(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Per-feature p-values, the same tests Evidently runs (see module docstring). Pure."""
    out = {}
    for col in reference.columns:
        if col in CATEGORICAL:
            out[col] = chi_square_pvalue(reference[col], current[col])
        else:
            out[col] = float(ks_2samp(reference[col].to_numpy(), current[col].to_numpy())[1])
    return out


def simes(pvalues: Mapping[str, float]) -> float:
    """Simes' combined p-value of the per-feature tests (1.0 when there are none). Pure."""
    p = np.sort(np.asarray(list(pvalues.values()), dtype=np.float64))
    if len(p) == 0:
        return 1.0
    return float(min(1.0, np.min(p * len(p) / np.arange(1, len(p) + 1))))


def decide(
    pvalues: Mapping[str, float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    accuracy: Accuracy | None = None,
    accuracy_drop: float = DEFAULT_ACCURACY_DROP,
    alpha: float = STATTEST_THRESHOLD,
) -> Verdict:
    """Apply the decision rule (module docstring) to per-feature p-values. Pure."""
    drifted = [c for c, p in pvalues.items() if is_drifted(c, p, alpha)]
    share = len(drifted) / max(len(pvalues), 1)
    score = 1.0 - simes(pvalues)
    acc_drift = accuracy is not None and accuracy.drop > accuracy_drop
    return Verdict(
        detected=score >= threshold or acc_drift,
        share=share,
        score=score,
        threshold=threshold,
        pvalues=dict(pvalues),
        drifted=drifted,
        accuracy=accuracy,
        accuracy_drifted=acc_drift,
    )


def _evidently_parts(reference: pd.DataFrame, alpha: float) -> tuple[object, list[object]]:
    from evidently import DataDefinition
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    numerical = [c for c in reference.columns if c not in CATEGORICAL]
    categorical = [c for c in reference.columns if c in CATEGORICAL]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    metrics: list[object] = [
        DriftedColumnsCount(num_method="ks", cat_method="chisquare", threshold=alpha),
        *[ValueDrift(column=c, method="chisquare" if c in CATEGORICAL else "ks", threshold=alpha)
          for c in reference.columns],
    ]
    return definition, metrics


def evidently_pvalues(
    reference: pd.DataFrame, current: pd.DataFrame, *, alpha: float = STATTEST_THRESHOLD, html: str | None = None
) -> dict[str, float]:
    """Run the per-feature tests through Evidently; optionally save its HTML report to ``html``.

    Touches the filesystem only when ``html`` is given (a local path; the caller uploads it).
    """
    from evidently import Dataset, Report

    definition, metrics = _evidently_parts(reference, alpha)
    report = Report(metrics)
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    if html:
        snapshot.save_html(html)
    out: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            out[str(config["column"])] = float(metric["value"])
    for col in reference.columns:
        # One category on both sides leaves chi-square no degrees of freedom; Evidently then answers
        # p = 0, which would call every check of a model that predicts one class "drifted".
        # chi_square_pvalue's answer (1.0: no evidence) is used instead.
        if col in CATEGORICAL and len(set(reference[col].dropna()) | set(current[col].dropna())) < 2:
            out[col] = 1.0
    return {c: out[c] for c in reference.columns}

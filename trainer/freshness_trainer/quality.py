"""Measuring the drift rule: false-positive rate and power on the sample set's real images.

Used by tests/trainer/test_drift_quality.py (benchmarks/drift_quality.py draws its own graded
shifts and batches). The expensive part (the serving model's forward pass) runs once per image:
each condition's pool of images is turned into a feature table once, and every trial resamples
rows of that table. The per-trial decision uses ``drift_rule.feature_pvalues`` (scipy; the same tests
and numbers Evidently produces, checked in the tests) because running Evidently thousands of times
would take hours on a CPU.

Conditions (``sampledata`` renders them from the production stream: images the model never saw):
``iid`` (no drift), ``new-class`` (30% bees) and the covariate shifts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from freshness_trainer import drift_rule, engine, features, sampledata
from freshness_trainer.model import Checkpoint

CONDITIONS = ("iid", "new-class", *sampledata.SHIFTS)
REFERENCE_PER_CLASS = 120  # what the prepare stage renders for the sample project


@dataclass(frozen=True)
class Pool:
    """A condition's feature table and the serving model's accuracy on its images."""

    table: pd.DataFrame
    accuracy: float


def to_tensor(batch: sampledata.Batch) -> torch.Tensor:
    return torch.from_numpy(batch.images).permute(0, 3, 1, 2).contiguous()


def render_conditions(pool_size: int, seed: int = 0, conditions: tuple[str, ...] | list[str] = CONDITIONS,
                      classes: tuple[str, ...] = sampledata.BASE_CLASSES) -> dict[str, sampledata.Batch]:
    """The reference images (what the sample model trained on) and one pool per condition. Pure."""
    out = {"reference": sampledata.render({c: REFERENCE_PER_CLASS for c in classes}, half="reference", seed=seed)}
    for name in conditions:
        share = sampledata.NEW_CLASS_SHARE if name == "new-class" else 0.0
        shift = name if name in sampledata.SHIFTS else None
        out[name] = sampledata.render(sampledata.production_counts(pool_size, classes, share), half="production",
                                      seed=seed, shift=shift)
    return out


def feature_pools(ckpt: Checkpoint, batches: dict[str, sampledata.Batch], settings: engine.DeviceOptions,
                  pca_components: int = 3) -> dict[str, Pool]:
    """Feature tables (PCA fitted on ``batches['reference']``) and accuracies, one per batch."""
    ref_table, pca = features.extract(ckpt, to_tensor(batches["reference"]), settings, pca_components=pca_components)
    pools = {"reference": Pool(ref_table, _accuracy(ref_table, batches["reference"]))}
    for name, batch in batches.items():
        if name != "reference":
            table, _ = features.extract(ckpt, to_tensor(batch), settings, pca=pca)
            pools[name] = Pool(table, _accuracy(table, batch))
    return pools


def _accuracy(table: pd.DataFrame, batch: sampledata.Batch) -> float:
    return float(np.mean(table["predicted"].to_numpy() == np.asarray(batch.labels, dtype=object)))


Decision = Callable[[pd.DataFrame, pd.DataFrame], bool]


def our_rule(threshold: float = drift_rule.DEFAULT_THRESHOLD) -> Decision:
    """The drift step's rule on feature tables (labels unused: production is usually unlabelled)."""
    return lambda ref, cur: drift_rule.decide(drift_rule.feature_pvalues(ref, cur), threshold=threshold).detected


def detection_rate(reference: pd.DataFrame, pool: pd.DataFrame, *, n: int, trials: int, seed: int,
                   decide: Decision, replace: bool = False) -> float:
    """Share of ``trials`` samples of ``n`` rows from ``pool`` that ``decide`` flags. Pure."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        idx = rng.choice(len(pool), size=n, replace=replace or n > len(pool))
        hits += bool(decide(reference, pool.iloc[idx].reset_index(drop=True)))
    return hits / trials

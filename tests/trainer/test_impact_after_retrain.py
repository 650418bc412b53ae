"""After `make demo`'s retrain rolls out, the new model's checks on the bee mix raise no drift (issue 14,
"Must show"), at the rate the claim needs: at most 5% of checks.

The model is the demo's retrain, made as the demo makes it: ``make-sample-data`` (``sampledata``),
then the prepare and train stages with ``data.source`` = the ``extended`` folder (cats, dogs and
bees), ``train.num_classes=3`` and params.yaml's defaults (the demo's first candidate). The traffic
is the demo's: its 1,000-image bee-mix folder (``hack.demo.PRODUCTION``, drawn like the training
data: 30% bees, the production stream) in windows of ``hack.demo.WINDOW`` images, the newest
requests a check reads. Each check is decided as ``test_impact_model`` decides one (feature tables,
``drift_rule.decide`` on scipy's p-values, the novelty test, the estimate, the ``impact`` trigger).

Which test proves what: tests/demo/test_demo.py runs a few such checks as real drift pods on the
server's capture after a real rollout and requires every one clean; this file gives the rate over
100 windows for the demo's model; tests/trainer/test_impact_model.py the rate on iid traffic for
the 2-class model. Why it failed before, when the reference was the validation split alone (90
images, printed below: the same checks against it): the novelty threshold is the largest of the
reference's own distances, so it is low for an unlucky split (the demo's new model at e7d871a flagged
novelty in its checks of the bee mix), and the estimate's
reference accuracy was val_acc of the epoch picked on those same images, an optimistic one (the
estimated drop then exceeds 0.05 on fresh traffic). The model file now carries the validation split
plus ``data.reference_per_class`` more images, and the reference accuracy is measured on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from freshness_trainer import drift_rule, drift_step, engine, features, impact, model, params, sampledata
from freshness_trainer.stages import prepare, train

from hack.demo import PRODUCTION, WINDOW
from tests.trainer.conftest import ROOT
from tests.trainer.test_impact_model import upper

TRIALS = 100
ACCURACY_DROP = 0.05  # spec.drift.accuracyDrop's default; the demo keeps it
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Retrained:
    ckpt: model.Checkpoint
    val: int  # the held-out images' first ``val`` rows are the validation split
    pool: features.Extracted  # the bee mix through the model (PCA of the full reference)


@pytest.fixture(scope="module")
def retrained(tmp_path_factory: pytest.TempPathFactory) -> Retrained:
    root = tmp_path_factory.mktemp("retrain")
    sample = root / "data"
    sampledata.make_sample_data(sample, production=0)  # the labelled folders only; the traffic is rendered below
    doc = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    doc["data"]["source"], doc["train"]["num_classes"] = str(sample / "extended"), 3
    p = params.parse(doc)
    counts = prepare.run(p, out=root / "prepared")
    train.run(p, data_dir=root / "prepared", model_path=root / "model.pt", metrics_path=root / "train.json",
              device="cpu")
    ckpt = model.load(str(root / "model.pt"))
    assert ckpt.heldout is not None and ckpt.calibration is not None
    # The demo's production/new-class folder: make-sample-data --production PRODUCTION, seed 0.
    mix = sampledata.render(sampledata.production_counts(PRODUCTION, new_share=sampledata.NEW_CLASS_SHARE),
                            half="production", seed=0)
    images = torch.from_numpy(mix.images).permute(0, 3, 1, 2).contiguous()
    ref = features.reference_table(ckpt, ckpt.heldout)
    pool = features.extract_all(ckpt, images, engine.DeviceOptions.for_device("cpu"), pca=ref.pca)
    return Retrained(ckpt, sum(counts["val"].values()), pool)


def _rates(r: Retrained, embeddings: np.ndarray, table: pd.DataFrame, reference_accuracy: float
           ) -> tuple[int, int, int]:
    """(distribution, novelty, retrain under ``impact``) counts over TRIALS windows of WINDOW images."""
    assert r.ckpt.calibration is not None
    cal = impact.Calibration.from_json(dict(r.ckpt.calibration))
    ref_scores, pool_scores = impact.novelty_scores(embeddings, r.pool.embeddings)
    rng = np.random.default_rng(14)
    counts = np.zeros(3, dtype=np.int64)
    for _ in range(TRIALS):
        rows = rng.choice(len(r.pool.embeddings), WINDOW, replace=False)  # the loop is shuffled (loadgen)
        cur = r.pool.table.iloc[rows].reset_index(drop=True)
        verdict = drift_rule.decide(drift_rule.feature_pvalues(table, cur))
        nov, novel = impact.novelty_test(ref_scores, pool_scores[rows])
        est = impact.window_estimate(cal, cur["confidence"].to_numpy(), nov, novel)
        decision = impact.trigger("impact", verdict.detected, est, reference_accuracy, ACCURACY_DROP, nov)
        counts += (verdict.detected, nov.detected, decision.retrain)
    dist, novel_hits, retrain = (int(c) for c in counts)
    return dist, novel_hits, retrain


def test_the_retrained_models_checks_on_the_bee_mix_raise_no_drift(retrained: Retrained) -> None:
    h = retrained.ckpt.heldout
    assert h is not None and len(h) > 3 * retrained.val, "the reference split is the larger part of the held-out"
    ref = features.reference_table(retrained.ckpt, h)
    dist, novel, retrain = _rates(retrained, ref.embeddings, ref.table,
                                  drift_step.estimate_reference(retrained.ckpt) or 0.0)
    # The cause, for comparison (printed, not asserted: how unlucky 90 images are varies by model).
    val_only = features.reference_table(retrained.ckpt, model.HeldOut(
        h.embeddings[:retrained.val], h.logits[:retrained.val], h.labels[:retrained.val],
        {k: v[:retrained.val] for k, v in h.stats.items()}))
    old = _rates(retrained, val_only.embeddings, val_only.table, float(retrained.ckpt.metrics["val_acc"]))
    print(f"{TRIALS} checks of {WINDOW} bee-mix requests against {len(h)} held-out images: distribution {dist}, "
          f"novelty {novel}, retrain (impact) {retrain} (95% interval up to {upper(retrain, TRIALS):.3f}); "
          f"against the {retrained.val}-image validation split alone: distribution {old[0]}, novelty {old[1]}, "
          f"retrain {old[2]}")
    for name, hits in (("novelty", novel), ("impact", retrain)):
        assert hits / TRIALS <= 0.05, f"{name}: {hits} of {TRIALS} checks of the retrained model on the bee mix fired"


"""The label-free signals on a really trained model (issue 14, "Must show"): the calibration is
reliable out of sample, and checks of the model on fresh traffic drawn like its training data raise
no drift against its held-out reference, where its training images would.

The model is the ``base`` experiment of the project fixture (``dvc exp run``, default params: the
model a retrain rolls out). The drift step's decision is applied as ``checks.run`` applies it (the
feature tables, ``drift_rule.decide``, ``impact.novelty_flags`` and ``impact.window_estimate``, the trigger
policy) to many fresh batches; the per-feature p-values come from scipy, which equal Evidently's
(tests/trainer/test_drift_quality.py), because a full Evidently run per check would take minutes.
A trainer-level test, not a cluster test: the operator's side (reference = the serving model's own
held-out split, after a rollout too) is the model file's, and a cluster run of 100 checks would take
an hour on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from freshness_trainer import drift_rule, drift_step, engine, features, impact, model, sampledata
from freshness_trainer.data import list_images, load_images
from scipy.stats import beta

from tests.trainer.conftest import Project

POOL = 1500  # fresh production images like the training data (iid)
N = 200  # the operator's default minSamples
TRIALS = 100


@dataclass(frozen=True)
class Side:
    table: pd.DataFrame
    embeddings: np.ndarray
    correct: np.ndarray


@dataclass(frozen=True)
class Fixture:
    ckpt: model.Checkpoint
    heldout: Side
    iid: Side
    training: pd.DataFrame | None  # the training split's feature table (the pre-issue-14 reference)


def _to_tensor(batch: sampledata.Batch) -> torch.Tensor:
    return torch.from_numpy(batch.images).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def trained(project: Project) -> Fixture:
    ckpt = model.load(str(project.serving_model))
    assert ckpt.heldout is not None and ckpt.calibration is not None, "the train stage saves both with the model"
    settings = engine.DeviceOptions.for_device("cpu")
    ref = features.reference_table(ckpt, ckpt.heldout)
    ref_correct = ref.table["predicted"].to_numpy() == np.asarray(ckpt.classes, dtype=object)[ckpt.heldout.labels]
    batch = sampledata.render(sampledata.production_counts(POOL), half="production", seed=11)
    cur = features.extract_all(ckpt, _to_tensor(batch), settings, pca=ref.pca)
    cur_correct = cur.table["predicted"].to_numpy() == np.asarray(batch.labels, dtype=object)
    training = None
    train_dir = project.path / "data" / "prepared" / "train"
    if train_dir.exists():
        images = load_images(list_images(str(train_dir), labelled=True), ckpt.image_size, class_names=ckpt.classes)
        training = features.extract(ckpt, images.images, settings, pca=ref.pca)[0]
    return Fixture(ckpt, Side(ref.table, ref.embeddings, ref_correct), Side(cur.table, cur.embeddings, cur_correct),
                   training)


def upper(hits: int, n: int) -> float:
    """Upper end of the 95% Clopper-Pearson interval of a rate."""
    return 1.0 if hits == n else float(beta.ppf(0.975, hits + 1, n - hits))


def test_the_model_file_carries_its_held_out_images(trained: Fixture, project: Project) -> None:
    """The validation split then the reference split (``data.reference_per_class``), in that order."""
    prepared = project.path / "data" / "prepared"
    val = list_images(str(prepared / "val"), labelled=True)
    ref = list_images(str(prepared / "reference"), labelled=True)
    h = trained.ckpt.heldout
    assert len(ref) > len(val), "the reference split is the larger part of the held-out images"
    assert h is not None and len(h) == len(val) + len(ref) and sorted(set(h.labels.tolist())) == [0, 1]
    assert trained.heldout.correct[:len(val)].mean() == pytest.approx(trained.ckpt.metrics["val_acc"], abs=1e-6)
    assert drift_step.estimate_reference(trained.ckpt) == pytest.approx(trained.heldout.correct.mean(), abs=1e-6)


def test_calibration_is_reliable_on_the_held_out_images_and_out_of_sample(trained: Fixture) -> None:
    cal = impact.Calibration.from_json(dict(trained.ckpt.calibration or {}))
    val_conf = trained.heldout.table["confidence"].to_numpy()
    # Fitted there: the mean calibrated confidence is the held-out accuracy (the estimate's reference).
    val_est = impact.estimate_accuracy(cal, val_conf)
    assert val_est.value == pytest.approx(trained.heldout.correct.mean(), abs=0.01)
    # Out of sample: 1,500 fresh images the fit never saw.
    conf, correct = trained.iid.table["confidence"].to_numpy(), trained.iid.correct
    ece_raw = impact.expected_calibration_error(conf, correct)
    ece = impact.expected_calibration_error(cal.apply(conf), correct)
    est = impact.estimate_accuracy(cal, conf)
    print(f"ECE raw {ece_raw:.4f}, calibrated {ece:.4f}; estimate {est.value:.4f} [{est.low:.4f}, {est.high:.4f}], "
          f"true accuracy {correct.mean():.4f}")
    assert ece <= 0.05, f"ECE {ece:.3f} of the calibrated confidence on fresh images"
    assert abs(est.value - correct.mean()) <= 0.03 and est.low <= correct.mean() <= est.high


def _check(trained: Fixture, rows: np.ndarray, cal: impact.Calibration, reference: pd.DataFrame
           ) -> tuple[bool, bool, bool, impact.Estimate]:
    """One drift check of a batch: (distribution detected, novelty detected, retrain under impact, estimate)."""
    cur = trained.iid.table.iloc[rows].reset_index(drop=True)
    verdict = drift_rule.decide(drift_rule.feature_pvalues(reference, cur))
    nov, novel = impact.novelty_flags(trained.heldout.embeddings, trained.iid.embeddings[rows])
    est = impact.window_estimate(cal, cur["confidence"].to_numpy(), nov, novel)
    decision = impact.trigger("impact", verdict.detected, est, drift_step.estimate_reference(trained.ckpt), 0.05, nov)
    return verdict.detected, nov.detected, decision.retrain, est


def test_checks_of_traffic_like_the_training_data_raise_no_drift(trained: Fixture) -> None:
    """After a rollout, the new model's checks on traffic drawn like its training data: at most 5%
    of them call for a retrain (95% interval), under either trigger policy."""
    cal = impact.Calibration.from_json(dict(trained.ckpt.calibration or {}))
    rng = np.random.default_rng(12)
    counts = np.zeros(3, dtype=np.int64)
    drops = []
    for _ in range(TRIALS):
        rows = rng.choice(POOL, N, replace=False)
        dist, novel, retrain, est = _check(trained, rows, cal, trained.heldout.table)
        counts += (dist, novel, retrain)
        drops.append((drift_step.estimate_reference(trained.ckpt) or 0.0) - est.value)
    n_dist, n_novel, n_retrain = (int(c) for c in counts)
    print(f"{TRIALS} checks of {N} fresh iid images against the held-out reference: distribution {n_dist}, "
          f"novelty {n_novel}, retrain (impact) {n_retrain} (95% interval up to {upper(n_retrain, TRIALS):.3f}); "
          f"estimated drop mean {np.mean(drops):+.4f}")
    for name, hits in (("distribution", n_dist), ("novelty", n_novel), ("impact", n_retrain)):
        assert hits / TRIALS <= 0.05, f"{name}: {hits} of {TRIALS} checks on iid traffic fired"


def test_the_held_out_split_looks_like_fresh_traffic_where_the_training_split_does_not(trained: Fixture) -> None:
    """Why the reference must be held out: the model is more confident on what it trained on than on
    any new image, so a training-split reference makes ``confidence`` (and the outputs) drift."""
    if trained.training is None:
        pytest.skip("the project copy keeps no data/prepared/train")
    fresh = trained.iid.table["confidence"].to_numpy()
    p_training = drift_rule.feature_pvalues(trained.training[["confidence"]], trained.iid.table[["confidence"]])
    p_heldout = drift_rule.feature_pvalues(trained.heldout.table[["confidence"]], trained.iid.table[["confidence"]])
    rng = np.random.default_rng(13)
    flagged = sum(drift_rule.decide(drift_rule.feature_pvalues(
        trained.training, trained.iid.table.iloc[rng.choice(POOL, N, replace=False)].reset_index(drop=True)
    )).detected for _ in range(TRIALS // 2))
    print(f"mean confidence: training {trained.training['confidence'].mean():.4f}, held out "
          f"{trained.heldout.table['confidence'].mean():.4f}, fresh {fresh.mean():.4f}; KS p of confidence vs "
          f"fresh: training {p_training['confidence']:.3g}, held out {p_heldout['confidence']:.3g}; "
          f"training split as reference: {flagged} of {TRIALS // 2} checks at n={N} flag drift")
    assert trained.training["confidence"].mean() > fresh.mean()
    assert p_heldout["confidence"] > 0.01

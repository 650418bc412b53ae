"""The drift step end to end: folders + serving model -> feature tables -> Evidently -> verdict.

The reference is the held-out (validation) split the model file carries (``model.HeldOut``, written
by the train stage): images the serving model never trained on, so traffic like its training data
does not look drifted. Only a model file without one (written before issue 14) is compared with the
``--reference`` folder, which is then read instead. Beside the distribution verdict the step
reports the label-free accuracy estimate and the novelty signal (``impact``).

Touches the filesystem (images, model, report); the decisions are ``drift_rule.decide`` and ``impact`` (pure).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fsspec

from freshness_trainer import data, drift_rule, engine, features, impact, model, partitions, report, scores
from freshness_trainer.errors import TrainerError


@dataclass(frozen=True)
class DriftInputs:
    """What ``freshness-trainer drift`` was asked to compare."""

    reference: str
    current: str
    model: str
    threshold: float = drift_rule.DEFAULT_THRESHOLD
    min_samples: int = 200
    accuracy_drop: float = drift_rule.DEFAULT_ACCURACY_DROP
    report: str = ""
    pca_components: int = 3
    stattest_threshold: float = drift_rule.STATTEST_THRESHOLD
    """p-value under which one feature counts as drifted: the verdict's share and top features,
    Evidently's per-column report (params.yaml drift.stattest_threshold). The score does not use it."""
    device: str | None = None
    window: timedelta | None = None
    """Of a time-partitioned capture (freshness_trainer.partitions), only samples this recent."""
    newest: int | None = None
    """Of a time-partitioned capture, at most this many of the newest samples."""


@dataclass(frozen=True)
class Impact:
    """The label-free signals of one check (``impact``)."""

    estimate: impact.Estimate | None
    """Estimated accuracy on the window; None for a model file without a calibration."""
    reference_accuracy: float | None
    """The model's accuracy on its held-out split (``val_acc``)."""
    novelty: impact.Novelty
    reference_kind: str
    """``heldOut`` (the model's own validation split) or ``folder`` (``--reference``)."""


@dataclass(frozen=True)
class DriftOutcome:
    verdict: drift_rule.Verdict
    samples: int
    reference_samples: int
    report: str
    window: partitions.Window | None = None
    """The samples used when the current data was a time-partitioned capture."""
    impact: Impact | None = None


def _load(uri: str, ckpt: model.Checkpoint, device: engine.DeviceOptions, *, reference: bool) -> data.ImageSet:
    index = data.list_images(uri, labelled=True if reference else None, min_classes=2 if reference else 1)
    return _decode(index, ckpt, device)


def _decode(index: data.ImageIndex, ckpt: model.Checkpoint, device: engine.DeviceOptions) -> data.ImageSet:
    from freshness_trainer import fastpath

    return fastpath.load(index, ckpt.image_size, device.device, class_names=ckpt.classes)


def current_window(inputs: DriftInputs, now: datetime) -> tuple[data.ImageIndex, partitions.Window] | None:
    """The window of a time-partitioned capture (unlabelled), or None for an image folder as before."""
    if not partitions.is_partitioned(inputs.current):
        return None
    window = partitions.list_window(inputs.current, now=now, window=inputs.window, newest=inputs.newest)
    fs, _ = fsspec.core.url_to_fs(inputs.current)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return data.ImageIndex(inputs.current, window.files, [], None, protocol), window


@dataclass(frozen=True)
class Tables:
    """Both sides of a check as feature tables with their embeddings."""

    reference: features.Extracted
    current: features.Extracted
    ref: data.ImageSet | None
    """The reference images, when read from the ``--reference`` folder (None: the model's held-out split)."""
    cur: data.ImageSet
    window: partitions.Window | None


def feature_tables(inputs: DriftInputs, ckpt: model.Checkpoint, settings: engine.DeviceOptions) -> Tables:
    """Feature tables of the reference and current data (PCA fitted on the reference).

    The reference is the model's held-out split when the model file has one, else the folder.
    Current data that is a time-partitioned capture is read through its window only.
    """
    ref = None if ckpt.heldout is not None else _load(inputs.reference, ckpt, settings, reference=True)
    windowed = current_window(inputs, datetime.now(UTC))
    cur = _decode(windowed[0], ckpt, settings) if windowed else _load(inputs.current, ckpt, settings, reference=False)
    if len(cur) < inputs.min_samples:
        raise TrainerError(
            "TooFewSamples",
            f"current data {inputs.current} has {len(cur)} images, fewer than --min-samples {inputs.min_samples}",
        )
    if ckpt.heldout is not None:
        reference = features.reference_table(ckpt, ckpt.heldout, inputs.pca_components)
    else:
        assert ref is not None
        reference = features.extract_all(ckpt, ref.images, settings, pca_components=inputs.pca_components)
    current = features.extract_all(ckpt, cur.images, settings, pca=reference.pca)
    return Tables(reference, current, ref, cur, windowed[1] if windowed else None)


def signals(ckpt: model.Checkpoint, t: Tables) -> Impact:
    """The accuracy estimate and the novelty signal of one check. Pure given the tables."""
    cal = impact.Calibration.from_json(ckpt.calibration) if ckpt.calibration is not None else None
    confidence = t.current.table["confidence"].to_numpy()
    both = t.reference.early is not None and t.current.early is not None
    novelty, novel = impact.novelty_flags(t.reference.embeddings, t.current.embeddings,
                                          reference_early=t.reference.early if both else None,
                                          production_early=t.current.early if both else None)
    estimate = impact.window_estimate(cal, confidence, novelty, novel) if cal is not None else None
    return Impact(estimate, estimate_reference(ckpt), novelty, "folder" if t.ref is not None else "heldOut")


def estimate_reference(ckpt: model.Checkpoint) -> float | None:
    """The accuracy the estimate is compared with: the model's on its held-out images, where the
    calibration was fitted (their mean calibrated confidence); ``val_acc`` without them. The held-out
    set includes the reference split (``data.reference_per_class``), so this is not ``val_acc``, the
    best epoch's on the validation split alone (picked on it, and on fewer images)."""
    if ckpt.heldout is not None and len(ckpt.heldout):
        return scores.score(ckpt.heldout.logits, ckpt.heldout.labels, ckpt.classes).accuracy
    return ckpt.metrics.get("val_acc")


def _accuracy(ckpt: model.Checkpoint, t: Tables, settings: engine.DeviceOptions) -> drift_rule.Accuracy | None:
    """Serving accuracy on labelled current images vs the reference accuracy: the estimate's
    (``estimate_reference``: on the held-out images, else val_acc at training), so a measured and an
    estimated drop are drops from the same figure."""
    cur = t.cur
    if cur.labels is None:
        return None
    logits = engine.predict(ckpt.model, cur.images, batch_size=256, settings=settings)
    current = scores.score(logits, cur.labels, ckpt.classes).accuracy
    reference = estimate_reference(ckpt)
    if reference is None:  # an older model file: fall back to accuracy on the reference images
        assert t.ref is not None and t.ref.labels is not None
        ref_logits = engine.predict(ckpt.model, t.ref.images, batch_size=256, settings=settings)
        reference = scores.score(ref_logits, t.ref.labels, ckpt.classes).accuracy
    return drift_rule.Accuracy(current=current, reference=reference)


def run(inputs: DriftInputs) -> DriftOutcome:
    """Check drift; writes the HTML report to ``inputs.report`` when given."""
    ckpt = model.load(inputs.model)
    settings = engine.DeviceOptions.for_device(inputs.device)
    ckpt.model.to(settings.device)
    t = feature_tables(inputs, ckpt, settings)
    ref_table, cur_table = t.reference.table, t.current.table
    found = signals(ckpt, t)
    with tempfile.TemporaryDirectory() as tmp:
        html = os.path.join(tmp, "report.html") if inputs.report else None
        alpha = inputs.stattest_threshold
        pvalues = drift_rule.evidently_pvalues(ref_table, cur_table, alpha=alpha, html=html)
        verdict = drift_rule.decide(
            pvalues, threshold=inputs.threshold, accuracy=_accuracy(ckpt, t, settings),
            accuracy_drop=inputs.accuracy_drop, alpha=alpha,
        )
        if html:
            span = t.window.describe() if t.window is not None else None
            shown = f"{span.get('start', '?')} to {span.get('end', '?')}" if span else None
            reference_name = (inputs.reference if t.ref is not None
                              else f"held-out images (validation and reference split) of {inputs.model}")
            context = report.Context(
                len(t.cur), len(ref_table), inputs.current, reference_name, window=shown,
                allowed_drop=inputs.accuracy_drop,
            )
            sources = report.relative(t.cur.files, inputs.current)
            samples = report.gallery(t.reference.embeddings, t.current.embeddings, t.cur.images, cur_table, sources)
            with open(html, encoding="utf-8") as f:
                document = report.render(verdict, context, ref_table, cur_table, samples, f.read(), signals=found)
            report.write(inputs.report, document)
    return DriftOutcome(verdict, len(t.cur), len(ref_table), inputs.report, t.window, found)

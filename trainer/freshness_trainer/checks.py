"""The drift step end to end: folders + serving model -> feature tables -> Evidently -> verdict.

Touches the filesystem (images, model, report); the decision itself is ``drift.decide`` (pure).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import fsspec
import pandas as pd

from freshness_trainer import data, drift, engine, evaluation, features, model, partitions, report
from freshness_trainer.errors import TrainerError


@dataclass(frozen=True)
class DriftInputs:
    """What ``freshness-trainer drift`` was asked to compare."""

    reference: str
    current: str
    model: str
    threshold: float = drift.DEFAULT_THRESHOLD
    min_samples: int = 200
    accuracy_drop: float = drift.DEFAULT_ACCURACY_DROP
    report: str = ""
    pca_components: int = 3
    device: str | None = None
    window: timedelta | None = None
    """Of a time-partitioned capture (freshness_trainer.partitions), only samples this recent."""
    newest: int | None = None
    """Of a time-partitioned capture, at most this many of the newest samples."""


@dataclass(frozen=True)
class DriftOutcome:
    verdict: drift.Verdict
    samples: int
    reference_samples: int
    report: str
    window: partitions.Window | None = None
    """The samples used when the current data was a time-partitioned capture."""


def _load(uri: str, ckpt: model.Checkpoint, device: engine.Settings, *, reference: bool) -> data.ImageSet:
    index = data.list_images(uri, labelled=True if reference else None, min_classes=2 if reference else 1)
    return _decode(index, ckpt, device)


def _decode(index: data.ImageIndex, ckpt: model.Checkpoint, device: engine.Settings) -> data.ImageSet:
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


def feature_tables(inputs: DriftInputs, ckpt: model.Checkpoint, settings: engine.Settings
                   ) -> tuple[pd.DataFrame, pd.DataFrame, data.ImageSet, data.ImageSet, partitions.Window | None]:
    """Feature tables of the reference and current data (PCA fitted on the reference).

    Current data that is a time-partitioned capture is read through its window only.
    """
    ref = _load(inputs.reference, ckpt, settings, reference=True)
    windowed = current_window(inputs, datetime.now(UTC))
    cur = _decode(windowed[0], ckpt, settings) if windowed else _load(inputs.current, ckpt, settings, reference=False)
    if len(cur) < inputs.min_samples:
        raise TrainerError(
            "TooFewSamples",
            f"current data {inputs.current} has {len(cur)} images, fewer than --min-samples {inputs.min_samples}",
        )
    ref_table, pca = features.extract(ckpt, ref.images, settings, pca_components=inputs.pca_components)
    cur_table, _ = features.extract(ckpt, cur.images, settings, pca=pca)
    return ref_table, cur_table, ref, cur, (windowed[1] if windowed else None)


def _accuracy(ckpt: model.Checkpoint, ref: data.ImageSet, cur: data.ImageSet, settings: engine.Settings
              ) -> drift.Accuracy | None:
    """Serving accuracy on labelled current images vs the reference accuracy (val_acc at training)."""
    if cur.labels is None:
        return None
    logits = engine.predict(ckpt.model, cur.images, batch_size=256, settings=settings)
    current = evaluation.score(logits, cur.labels, ckpt.classes).accuracy
    reference = ckpt.metrics.get("val_acc")
    if reference is None:  # an older model file: fall back to accuracy on the reference images
        assert ref.labels is not None
        ref_logits = engine.predict(ckpt.model, ref.images, batch_size=256, settings=settings)
        reference = evaluation.score(ref_logits, ref.labels, ckpt.classes).accuracy
    return drift.Accuracy(current=current, reference=reference)


def run(inputs: DriftInputs) -> DriftOutcome:
    """Check drift; writes the HTML report to ``inputs.report`` when given."""
    ckpt = model.load(inputs.model)
    settings = engine.Settings.for_device(inputs.device)
    ckpt.model.to(settings.device)
    ref_table, cur_table, ref, cur, window = feature_tables(inputs, ckpt, settings)
    with tempfile.TemporaryDirectory() as tmp:
        html = os.path.join(tmp, "report.html") if inputs.report else None
        pvalues = drift.evidently_pvalues(ref_table, cur_table, html=html)
        verdict = drift.decide(
            pvalues, threshold=inputs.threshold, accuracy=_accuracy(ckpt, ref, cur, settings),
            accuracy_drop=inputs.accuracy_drop,
        )
        if html:
            span = window.describe() if window is not None else None
            shown = f"{span.get('start', '?')} to {span.get('end', '?')}" if span else None
            context = report.Context(
                len(cur), len(ref), inputs.current, inputs.reference, window=shown, allowed_drop=inputs.accuracy_drop
            )
            sources = report.relative(cur.files, inputs.current)
            samples = report.gallery(ckpt, settings, ref.images, cur.images, cur_table, sources)
            with open(html, encoding="utf-8") as f:
                document = report.render(verdict, context, ref_table, cur_table, samples, f.read())
            report.write(inputs.report, document)
    return DriftOutcome(verdict, len(cur), len(ref), inputs.report, window)

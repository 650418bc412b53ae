"""Stage ``train``: AlexNet on ``data/prepared/train`` -> ``models/model.pt`` + ``reports/train.json``.

On a CUDA machine the fast path runs (GPU JPEG decode, data cached on the GPU, bf16 autocast,
channels_last, ``train.compile``); elsewhere the plain CPU path. The validation split is scored
after every epoch and the best epoch's weights are kept (``engine.fit``). The model file also
records the validation metrics, which the drift step uses as the serving model's reference
accuracy, the calibration of its confidence fitted on the validation split (the drift step's
label-free accuracy estimate) and the validation split's features (its reference: images the
model never trained on); ``freshness_trainer.impact`` and ``model.HeldOut``. ``reports/train.json``
carries ``learned`` (1/0, ``scores.learned``): 0 marks a model at chance, which the operator's
gate refuses.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from freshness_trainer import data, engine, fastpath, features, impact, model, params, scores
from freshness_trainer.errors import TrainerError
from freshness_trainer.stages import run_main, write_json

DATA = Path("data/prepared")
MODEL = Path("models/model.pt")
METRICS = Path("reports/train.json")


def run(p: params.Params, data_dir: Path = DATA, model_path: Path = MODEL, metrics_path: Path = METRICS,
        device: str | None = None) -> dict[str, float]:
    """Train, save the model file and the training metrics; returns the metrics."""
    t = p.train
    settings = engine.DeviceOptions.for_device(device, compile=t.compile)
    train_index = data.list_images(str(data_dir / "train"), labelled=True, min_classes=2)
    if len(train_index.classes) != t.num_classes:
        raise TrainerError(
            "ClassCountMismatch",
            f"train.num_classes={t.num_classes} but {data_dir / 'train'} has {len(train_index.classes)} classes",
        )
    started = time.perf_counter()
    train_set = fastpath.load(train_index, t.image_size, settings.device)
    val_set = fastpath.load(data.list_images(str(data_dir / "val"), labelled=True), t.image_size, settings.device,
                            class_names=train_set.classes)
    assert train_set.labels is not None and val_set.labels is not None
    torch.manual_seed(t.seed)
    net = model.build(t.model_name, t.num_classes, t.weights, t.hidden_units, t.dropout)
    fitted = engine.fit(
        net, train_set.images, train_set.labels, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
        batch_size=t.batch_size, epochs=t.epochs, seed=t.seed, settings=settings, warmup_epochs=t.warmup_epochs,
        label_smoothing=t.label_smoothing, val_images=val_set.images, val_labels=val_set.labels,
    )
    elapsed = time.perf_counter() - started
    logits = engine.predict(fitted.model, val_set.images, batch_size=p.evaluate.batch_size, settings=settings)
    scored = scores.score(logits, val_set.labels, train_set.classes)
    ckpt = model.Checkpoint(fitted.model, train_set.classes, t.image_size, t.model_name, scored.metrics())
    held = features.held_out(ckpt, val_set.images, val_set.labels, settings)
    prob = features.softmax(held.logits.double().numpy())
    correct = prob.argmax(axis=1) == held.labels.numpy()
    calibration = impact.fit_calibration(prob.max(axis=1), correct)
    model.save(dataclasses.replace(ckpt, calibration=calibration.to_json(), heldout=held), str(model_path))
    metrics = {
        "train_loss": round(fitted.losses[fitted.best_epoch - 1], 6) if fitted.losses else 0.0,
        "best_epoch": fitted.best_epoch,
        "train_seconds": round(elapsed, 3),
        "train_images_per_second": round(len(train_set) * t.epochs / max(elapsed, 1e-9), 2),
        "learned": scored.metrics()["learned"],
    }
    write_json(metrics_path, metrics)
    return metrics


def main() -> None:
    run_main("train", lambda: run(params.load()))


if __name__ == "__main__":
    main()

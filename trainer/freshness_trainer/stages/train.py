"""Stage ``train``: AlexNet on ``data/prepared/train`` -> ``models/model.pt`` + ``reports/train.json``.

On a CUDA machine the fast path runs (GPU JPEG decode, data cached on the GPU, bf16 autocast,
channels_last, ``train.compile``); elsewhere the plain CPU path. The validation split is scored
after every epoch and the best epoch's weights are kept (``engine.fit``). The model file also
records the validation metrics, which the drift step uses as the serving model's reference
accuracy, and its outputs on the held-out images (the validation split plus ``data/prepared/reference``
when the prepare stage wrote one, ``data.reference_per_class``): the drift step's reference, images
the model never trained on, and the calibration of its confidence fitted on them (the drift step's
label-free accuracy estimate); ``freshness_trainer.impact`` and ``model.HeldOut``. The reference
split is scored once, after training (forward only), so it does not slow training. ``reports/train.json``
carries ``learned`` (1/0, ``scores.learned``): 0 marks a model at chance, which the operator's
gate refuses.

A multi-process candidate (``distributed.Group`` in the environment): ``main`` starts torchrun
with this module, each process joins the group (DDP, ``engine.fit``), and rank 0 alone scores,
writes ``models/model.pt`` and ``reports/train.json`` (with ``world_size``); the others write
nothing. ``train.batch_size`` stays the global batch.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import torch

from freshness_trainer import data, distributed, engine, fastpath, features, impact, model, params, scores
from freshness_trainer.errors import TrainerError
from freshness_trainer.stages import run_main, write_json

DATA = Path("data/prepared")
MODEL = Path("models/model.pt")
METRICS = Path("reports/train.json")


def run(p: params.Params, data_dir: Path = DATA, model_path: Path = MODEL, metrics_path: Path = METRICS,
        device: str | None = None) -> dict[str, float]:
    """Train, save the model file and the training metrics; returns the metrics (rank 0; others: {})."""
    t = p.train
    world = distributed.World.from_env()
    if t.batch_size % world.size:
        raise TrainerError("InvalidParam", f"train.batch_size={t.batch_size} is the global batch: it must divide by "
                                           f"the {world.size} training processes (nodes x gpusPerNode)")
    settings = engine.DeviceOptions.for_device(world.device(device), compile=t.compile)
    backend = world.init(settings.device)
    try:
        return _run(p, world, settings, data_dir, model_path, metrics_path, backend)
    finally:
        world.close()


def _run(p: params.Params, world: distributed.World, settings: engine.DeviceOptions, data_dir: Path, model_path: Path,
         metrics_path: Path, backend: str | None) -> dict[str, float]:
    t = p.train
    if world.size > 1:
        print(f"train: rank {world.rank} of world size {world.size} ({backend}, {settings.device})", file=sys.stderr,
              flush=True)
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
    torch.manual_seed(t.seed)  # every rank builds the same initial weights (DDP also broadcasts rank 0's)
    net = model.build(t.model_name, t.num_classes, t.weights, t.hidden_units, t.dropout)
    fit_started = time.perf_counter()
    fitted = engine.fit(
        net, train_set.images, train_set.labels, optimizer=t.optimizer, lr=t.lr, momentum=t.momentum,
        batch_size=t.batch_size, epochs=t.epochs, seed=t.seed, settings=settings, warmup_epochs=t.warmup_epochs,
        label_smoothing=t.label_smoothing, val_images=val_set.images, val_labels=val_set.labels,
        rank=world.rank, world_size=world.size,
    )
    elapsed, fit_seconds = time.perf_counter() - started, time.perf_counter() - fit_started
    if not world.main:
        print(f"train: rank {world.rank} done; rank 0 writes the model and the metrics", file=sys.stderr, flush=True)
        return {}
    logits = engine.predict(fitted.model, val_set.images, batch_size=p.evaluate.batch_size, settings=settings)
    scored = scores.score(logits, val_set.labels, train_set.classes)
    ckpt = model.Checkpoint(fitted.model, train_set.classes, t.image_size, t.model_name, scored.metrics())
    held_images, held_labels = val_set.images, val_set.labels
    if (data_dir / "reference").is_dir():
        ref_set = fastpath.load(data.list_images(str(data_dir / "reference"), labelled=True), t.image_size,
                                settings.device, class_names=train_set.classes)
        assert ref_set.labels is not None
        held_images = torch.cat([val_set.images, ref_set.images.to(val_set.images.device)])
        held_labels = torch.cat([val_set.labels, ref_set.labels.to(val_set.labels.device)])
    held = features.held_out(ckpt, held_images, held_labels, settings)
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
        "world_size": world.size,
        "seconds_per_epoch": round(fit_seconds / max(t.epochs, 1), 3),  # training and rank 0's scoring
    }
    write_json(metrics_path, metrics)
    return metrics


def main() -> None:
    group = distributed.Group.from_env()
    if group is not None and not distributed.under_torchrun():
        # This process is the launcher: torchrun runs this module once per rank and fails if any rank does.
        print(f"train: torchrun {group.nnodes} node(s) x {group.nproc_per_node}, this is node {group.node_rank}",
              file=sys.stderr, flush=True)
        raise SystemExit(subprocess.run(group.torchrun_argv(MODULE), check=False).returncode)
    run_main("train", lambda: run(params.load()))


MODULE = "freshness_trainer.stages.train"


if __name__ == "__main__":
    main()

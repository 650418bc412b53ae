"""Stage ``prepare``: materialise the data as ``data/prepared/{train,val,reference}/<class>/``.

``data.source`` names an image folder (a subfolder per class) at a local path or fsspec URI; its
files are checked (each must decode) and copied, split per class by ``data.val_fraction`` with
``data.seed``. An empty ``data.source`` generates the built-in sample set instead (see
``freshness_trainer.sampledata``): cats and dogs, plus bees when ``train.num_classes`` is 3 — so
``dvc exp run -S train.num_classes=3`` is the tutorial's "bees are labelled now, retrain" step.

``data.reference_per_class`` images per class go to ``reference/``: the drift reference the train
stage records with the model (never trained on, not used to pick the epoch). The sample set renders
them after the 120 per class it splits into train/val, so those are the same images whatever the
reference size; with ``data.source`` they are cut from each class (shuffled with ``data.seed``)
before the train/val split, and each class must keep at least 2 images for train and val.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from freshness_trainer import data, params, sampledata
from freshness_trainer.errors import TrainerError
from freshness_trainer.stages import run_main, write_json

OUT = Path("data/prepared")
SAMPLE_PER_CLASS = 120
"""Images per class of the sample set's train/val split."""


def split(n: int, val_fraction: float, seed: int, salt: int) -> tuple[list[int], list[int]]:
    """Shuffle ``range(n)`` and cut off the validation share (at least one each side). Pure."""
    order = np.random.default_rng([seed, salt]).permutation(n).tolist()
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return order[n_val:], order[:n_val]


def _sample(p: params.Params, out: Path) -> dict[str, dict[str, int]]:
    classes = [*sampledata.BASE_CLASSES, sampledata.NEW_CLASS][: p.train.num_classes]
    if p.train.num_classes > len(sampledata.CLASS_DIGITS):
        raise TrainerError(
            "ClassCountMismatch",
            f"train.num_classes={p.train.num_classes} but the built-in sample set has at most "
            f"{len(sampledata.CLASS_DIGITS)} classes; set data.source to your image folder",
        )
    n_ref = p.data.reference_per_class
    # render() draws each class's images in sequence: the first 120 do not depend on n_ref.
    batch = sampledata.render({c: SAMPLE_PER_CLASS + n_ref for c in classes}, half="reference", seed=p.data.seed)
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}, "reference": {}}
    for salt, c in enumerate(classes):
        idx = [i for i, label in enumerate(batch.labels) if label == c]
        train, val = split(SAMPLE_PER_CLASS, p.data.val_fraction, p.data.seed, salt)
        ref = list(range(SAMPLE_PER_CLASS, SAMPLE_PER_CLASS + n_ref))
        for part, chosen in (("train", train), ("val", val), ("reference", ref)):
            if not chosen:
                continue
            sub = sampledata.Batch(batch.images[[idx[i] for i in chosen]], [c] * len(chosen))
            sampledata.write_image_folder(sub, out / part)
            counts[part][c] = len(chosen)
    return counts


def _copy(p: params.Params, out: Path) -> dict[str, dict[str, int]]:
    index = data.list_images(p.data.source, labelled=True, min_classes=2)
    if len(index.classes) != p.train.num_classes:
        raise TrainerError(
            "ClassCountMismatch",
            f"train.num_classes={p.train.num_classes} but {p.data.source} has {len(index.classes)} classes "
            f"({', '.join(index.classes)})",
        )
    assert index.labels is not None
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}, "reference": {}}
    n_ref = p.data.reference_per_class
    for ci, c in enumerate(index.classes):
        files = [f for f, label in zip(index.files, index.labels, strict=True) if label == ci]
        if n_ref and len(files) - n_ref < 2:
            raise TrainerError(
                "InvalidParam",
                f"data.reference_per_class={n_ref} but class {c!r} of {p.data.source} has {len(files)} images; "
                "at least 2 must remain for the train and val splits (lower it, or 0: the val split is the reference)",
            )
        order = np.random.default_rng([p.data.seed, ci, 1]).permutation(len(files)).tolist()
        ref, rest = [files[i] for i in order[:n_ref]], [files[i] for i in sorted(order[n_ref:])]
        files = rest
        train, val = split(len(files), p.data.val_fraction, p.data.seed, ci)
        for part, picked in (("train", [files[i] for i in train]), ("val", [files[i] for i in val]),
                             ("reference", ref)):
            if not picked:
                continue
            folder = out / part / c
            folder.mkdir(parents=True, exist_ok=True)
            for j, (name, blob) in enumerate(zip(picked, data.read_bytes(index, picked), strict=True)):
                data.decode(blob, name, 8)  # fail here, naming the file, rather than mid-training
                (folder / f"{j:05d}{Path(name).suffix.lower()}").write_bytes(blob)
            counts[part][c] = len(picked)
    return counts


def run(p: params.Params, out: Path = OUT) -> dict[str, dict[str, int]]:
    """Write the prepared split; returns image counts per part and class."""
    if out.exists():
        shutil.rmtree(out)
    counts = _sample(p, out) if not p.data.source else _copy(p, out)
    write_json(out / "counts.json", counts)
    return counts


def main() -> None:
    run_main("prepare", lambda: run(params.load()))


if __name__ == "__main__":
    main()

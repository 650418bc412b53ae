"""Stage ``evaluate``: score ``models/model.pt`` on ``data/prepared/val``.

Writes ``reports/eval.json`` (val_acc, val_loss, val_acc_<class>) and ``reports/confusion.json``
(one ``{actual, predicted}`` row per image, DVC's ``confusion`` template).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from freshness_trainer import data, engine, model, params, scores
from freshness_trainer.stages import run_main, write_json

MODEL = Path("models/model.pt")
DATA = Path("data/prepared/val")
METRICS = Path("reports/eval.json")
PLOT = Path("reports/confusion.json")


def score_folder(model_uri: str, data_uri: str, batch_size: int, device: str | None = None
                 ) -> tuple[scores.Scores, list[dict[str, str]]]:
    """Scores of a model file on a labelled image folder, plus the confusion rows. Touches files."""
    ckpt = model.load(model_uri)
    settings = engine.DeviceOptions.for_device(device)
    index = data.list_images(data_uri, labelled=True)
    images = data.load_images(index, ckpt.image_size, class_names=ckpt.classes)
    assert images.labels is not None
    logits = engine.predict(ckpt.model.to(settings.device), images.images, batch_size=batch_size, settings=settings)
    scored = scores.score(logits, images.labels, ckpt.classes)
    # Classes the model cannot predict (a 2-class serving model on data with bees) score 0.
    unknown = {c: 0.0 for c in index.classes if c not in ckpt.classes}
    scored = dataclasses.replace(scored, per_class={**scored.per_class, **unknown})
    return scored, scores.confusion_rows(logits, images.labels, ckpt.classes)


def run(p: params.Params, model_path: Path = MODEL, data_dir: Path = DATA, metrics_path: Path = METRICS,
        plot_path: Path = PLOT) -> dict[str, float]:
    """Evaluate and write the metrics and the confusion plot; returns the metrics."""
    scored, rows = score_folder(str(model_path), str(data_dir), p.evaluate.batch_size)
    metrics = scored.metrics()
    write_json(metrics_path, metrics)
    write_json(plot_path, rows)
    return metrics


def main() -> None:
    run_main("evaluate", lambda: run(params.load()))


if __name__ == "__main__":
    main()

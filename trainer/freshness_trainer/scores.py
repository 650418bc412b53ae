"""Scores of a classifier: accuracy, per-class accuracy, loss, the confusion matrix and whether the
model learned at all. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

# A model within this many points of chance accuracy (1/classes) has not learned.
CHANCE_MARGIN = 0.05


def learned(accuracy: float, per_class: dict[str, float]) -> bool:
    """False for a model at chance: some class never predicted right, or ``accuracy`` within
    ``CHANCE_MARGIN`` of 1/classes (e.g. one that predicts one class for everything). Pure."""
    if not per_class:
        return False
    return min(per_class.values()) > 0.0 and accuracy > 1.0 / len(per_class) + CHANCE_MARGIN


@dataclass(frozen=True)
class Scores:
    """How a model did on labelled images. ``confusion[actual][predicted]`` counts images."""

    accuracy: float
    loss: float
    per_class: dict[str, float]
    confusion: list[list[int]]
    samples: int

    def metrics(self, prefix: str = "val_") -> dict[str, float]:
        """Flat numeric metrics as DVC and the result contract record them (``val_acc`` ...), with
        ``learned`` (1 or 0, see :func:`learned`), which the operator's gate refuses at 0."""
        out = {f"{prefix}acc": round(self.accuracy, 6), f"{prefix}loss": round(self.loss, 6)}
        out.update({f"{prefix}acc_{c}": round(a, 6) for c, a in self.per_class.items()})
        out["learned"] = 1.0 if learned(self.accuracy, self.per_class) else 0.0
        return out


def score(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> Scores:
    """Score logits against labels; a label of -1 (a class the model lacks) is always wrong."""
    if len(labels) == 0:
        return Scores(0.0, 0.0, {c: 0.0 for c in classes}, [[0] * len(classes) for _ in classes], 0)
    pred = logits.argmax(1)
    known = labels >= 0
    correct = (pred == labels) & known
    loss = F.cross_entropy(logits[known], labels[known]).item() if bool(known.any()) else float("nan")
    k = len(classes)
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels[known], pred[known]), torch.ones_like(pred[known]), accumulate=True)
    per_class = {}
    for i, c in enumerate(classes):
        n = int(confusion[i].sum())
        per_class[c] = float(confusion[i, i]) / n if n else 0.0
    return Scores(float(correct.float().mean()), loss, per_class, confusion.tolist(), len(labels))


def confusion_rows(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> list[dict[str, Any]]:
    """One row per image, ``{"actual": class, "predicted": class}``: DVC's ``confusion`` plot input."""
    pred = logits.argmax(1).tolist()
    return [
        {"actual": classes[a] if a >= 0 else "unknown", "predicted": classes[p]}
        for a, p in zip(labels.tolist(), pred, strict=True)
    ]

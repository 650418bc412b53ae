"""torchvision AlexNet and the model file (``model.pt``) the stages, drift and serving share.

The file is a plain ``torch.save`` dict of tensors and primitives, loadable with
``weights_only=True``: ``state_dict``, ``model_name``, ``classes``, ``image_size``, ``mean``,
``std`` and ``metrics`` (the validation metrics at training time; drift compares production
accuracy with ``metrics['val_acc']``). Written by the train stage since issue 14, and optional so
older files still load:

* ``calibration``: ``freshness_trainer.impact.Calibration.to_json()`` fitted on the held-out images
  (the drift step's label-free accuracy estimate);
* ``heldout``: the held-out images as the drift step's reference, images the model never trained
  on (the validation split, then the prepare stage's reference split when there is one; older files:
  the validation split alone): ``embeddings`` (N x d, float16), ``logits`` (N x classes), ``labels`` and ``stats`` (the
  image statistics of ``features.IMAGE_STATS``), at most ``MAX_HELDOUT_ROWS`` rows, and (since the
  third novelty test) ``early`` (``features.early_features``, float16; absent in older files, whose
  drift checks run the two other novelty tests).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import fsspec
import torch
import torchvision
from torch import nn

from freshness_trainer.errors import TrainerError

# ImageNet statistics, as torchvision's reference recipes use.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


MAX_HELDOUT_ROWS = 2000
"""At most this many held-out images are kept as the reference (4096-d float16: 16 MB)."""


@dataclass(frozen=True)
class HeldOut:
    """The serving model's outputs on images it never trained on (validation + reference split)."""

    embeddings: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    stats: dict[str, torch.Tensor]
    early: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def to_doc(self) -> dict[str, Any]:
        rows = torch.linspace(0, max(len(self) - 1, 0), min(len(self), MAX_HELDOUT_ROWS)).round().long()
        doc = {"embeddings": self.embeddings[rows].to("cpu", torch.float16),
               "logits": self.logits[rows].to("cpu", torch.float32), "labels": self.labels[rows].to("cpu", torch.long),
               "stats": {k: v[rows].to("cpu", torch.float64) for k, v in self.stats.items()}}
        if self.early is not None:
            doc["early"] = self.early[rows].to("cpu", torch.float16)
        return doc

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> HeldOut:
        early = doc.get("early")
        return HeldOut(doc["embeddings"].float(), doc["logits"].float(), doc["labels"].long(),
                       {str(k): v.double() for k, v in dict(doc["stats"]).items()},
                       None if early is None else early.float())


@dataclass
class Checkpoint:
    """A trained model with what is needed to feed it and to judge it."""

    model: nn.Module
    classes: list[str]
    image_size: int
    model_name: str = "alexnet"
    metrics: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    heldout: HeldOut | None = None


def build(model_name: str, num_classes: int, weights: str = "", hidden_units: int = 4096, dropout: float = 0.5
          ) -> nn.Module:
    """torchvision AlexNet with ``num_classes`` outputs; ``weights``: optional local state_dict file.

    ``hidden_units`` below 4096 narrows the two hidden layers of the classifier (the convolutional
    trunk is unchanged); 4096 is torchvision's AlexNet exactly. ``dropout`` is torchvision's
    ``alexnet(dropout=...)``, the dropout before both hidden layers (0.5 there).

    A weights file for another number of classes (e.g. ImageNet's 1000) loads everything but the
    last layer, which stays freshly initialised: the usual fine-tuning start.
    """
    if model_name != "alexnet":
        raise TrainerError("InvalidParam", f"train.model_name={model_name!r}: only 'alexnet' is supported")
    model = torchvision.models.alexnet(weights=None, num_classes=num_classes, dropout=dropout)
    if hidden_units != 4096:
        head = model.classifier
        assert isinstance(head, nn.Sequential)
        first = head[1]
        assert isinstance(first, nn.Linear)
        in_features = first.in_features
        head[1] = nn.Linear(in_features, hidden_units)
        head[4] = nn.Linear(hidden_units, hidden_units)
        head[6] = nn.Linear(hidden_units, num_classes)
    init_weights(model)
    if weights:
        state = _read_state(weights)
        own = model.state_dict()
        keep = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not keep:
            raise TrainerError("InvalidModel", f"weights file {weights} has no AlexNet tensors")
        model.load_state_dict(keep, strict=False)
    return model


def init_weights(model: nn.Module) -> None:
    """He (Kaiming) normal init for the ReLU layers, N(0, 0.01) for the output layer, zero biases:
    torchvision's init for its ReLU CNNs (VGG, ResNet). AlexNet's own default (PyTorch's
    ``kaiming_uniform_(a=sqrt(5))``, weight variance 1/(3 fan_in)) shrinks the activations about
    threefold per layer (in variance) through its seven ReLU layers, so training starts slower."""
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    for m in layers[:-1]:
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    nn.init.normal_(layers[-1].weight, 0.0, 0.01)
    if layers[-1].bias is not None:
        nn.init.zeros_(layers[-1].bias)


def _read_state(uri: str) -> dict[str, torch.Tensor]:
    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise TrainerError("ModelNotFound", f"model file {uri} not found") from exc
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise TrainerError("InvalidModel", f"model file {uri} is not a torch file: {exc}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise TrainerError("InvalidModel", f"model file {uri} holds no state_dict")
    return obj


def save(ckpt: Checkpoint, path: str) -> None:
    """Write the model file (to a local path or fsspec URI)."""
    state = {k: v.detach().to("cpu", torch.float32) for k, v in unwrap(ckpt.model).state_dict().items()}
    doc: dict[str, Any] = {
        "state_dict": state,
        "model_name": ckpt.model_name,
        "classes": list(ckpt.classes),
        "image_size": ckpt.image_size,
        "mean": list(MEAN),
        "std": list(STD),
        "metrics": {k: float(v) for k, v in ckpt.metrics.items()},
    }
    if ckpt.calibration is not None:
        doc["calibration"] = dict(ckpt.calibration)
    if ckpt.heldout is not None:
        doc["heldout"] = ckpt.heldout.to_doc()
    with fsspec.open(path, "wb") as fh:
        torch.save(doc, fh)


def load(uri: str) -> Checkpoint:
    """Read a model file written by :func:`save`; TrainerError names a missing or bad file."""
    try:
        with fsspec.open(uri, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:
        raise TrainerError("ModelNotFound", f"model file {uri} not found") from exc
    try:
        doc = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        classes = [str(c) for c in doc["classes"]]
        hidden = int(doc["state_dict"]["classifier.1.weight"].shape[0])
        model = build(str(doc.get("model_name", "alexnet")), len(classes), hidden_units=hidden)
        model.load_state_dict(doc["state_dict"])
        heldout = HeldOut.from_doc(doc["heldout"]) if "heldout" in doc else None
        calibration = dict(doc["calibration"]) if "calibration" in doc else None
    except TrainerError:
        raise
    except Exception as exc:
        raise TrainerError("InvalidModel", f"model file {uri} is not a freshness model file: {exc}") from exc
    model.eval()
    metrics = {str(k): float(v) for k, v in dict(doc.get("metrics", {})).items()}
    return Checkpoint(model, classes, int(doc["image_size"]), str(doc.get("model_name", "alexnet")), metrics,
                      calibration, heldout)


def unwrap(model: nn.Module) -> nn.Module:
    """The module under ``torch.compile``'s wrapper, whose state_dict keys are unprefixed."""
    inner = getattr(model, "_orig_mod", model)
    return inner if isinstance(inner, nn.Module) else model


def penultimate(model: nn.Module) -> nn.Module:
    """AlexNet up to the last hidden layer's ReLU (4096 features): the drift step's embedding."""
    net = unwrap(model)
    classifier = net.classifier
    assert isinstance(classifier, nn.Sequential)
    return nn.Sequential(net.features, net.avgpool, nn.Flatten(1), *list(classifier)[:-1])  # type: ignore[arg-type]


def head(model: nn.Module) -> nn.Module:
    """AlexNet's last layer: logits from the ``penultimate`` features."""
    classifier = unwrap(model).classifier
    assert isinstance(classifier, nn.Sequential)
    last: nn.Module = classifier[-1]
    return last

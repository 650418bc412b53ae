"""Images -> a table of drift features (docs/architecture.md §4).

Two groups of columns, one row per image:

* from the serving model: ``prob_<class>`` (softmax), ``confidence`` (top probability),
  ``predicted`` (class name, categorical) and ``pc1..pcK`` (principal components of the last
  hidden layer, the PCA fitted on the reference images only);
* simple image statistics (``IMAGE_STATS``): brightness, contrast, saturation, sharpness (mean
  absolute Laplacian), noise (Immerkaer's estimator), edge orientation (share of horizontal
  gradient energy) and the mean of each colour channel.

The PCA is part of the feature map: fit it once on the reference and reuse it for every current
batch, so reference and current columns mean the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from freshness_trainer import engine
from freshness_trainer.model import Checkpoint, HeldOut, penultimate, unwrap
from freshness_trainer.model import head as model_head

IMAGE_STATS = ("brightness", "contrast", "saturation", "sharpness", "noise", "edge_h_share", "red", "green", "blue")
CATEGORICAL = ("predicted",)

_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_NOISE = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Pca:
    """A PCA fitted on reference embeddings: ``(x - mean) @ components.T``."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]

    @staticmethod
    def fit(x: NDArray[np.float64], k: int, max_rows: int = 4096) -> Pca:
        # A few principal directions are well estimated from a few thousand rows; the SVD of a
        # large reference (N x 4096) would cost more than the whole forward pass.
        if len(x) > max_rows:
            x = x[np.linspace(0, len(x) - 1, max_rows).round().astype(np.int64)]
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        comps = vt[: min(k, vt.shape[0])]
        # Fix each component's sign so the feature map does not flip between runs.
        signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
        return Pca(mean, comps * signs[:, None])

    def transform(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray((x - self.mean) @ self.components.T, dtype=np.float64)


def _filter(gray: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    return F.conv2d(gray, kernel.to(gray.device, gray.dtype).view(1, 1, 3, 3))


@torch.no_grad()
def image_statistics(images: torch.Tensor, batch_size: int = 512) -> dict[str, NDArray[np.float64]]:
    """Per-image statistics of uint8 (N, 3, H, W) images, computed in batches on their device."""
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in IMAGE_STATS}
    for idx in engine.batches(len(images), batch_size):
        x = images[idx.to(images.device)].float() / 255.0
        gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
        h, w = gray.shape[-2:]
        gx, gy = _filter(gray, _SOBEL_X), _filter(gray, _SOBEL_X.T)
        ex, ey = gx.pow(2).flatten(1).sum(1), gy.pow(2).flatten(1).sum(1)
        stats = {
            "brightness": gray.flatten(1).mean(1),
            "contrast": gray.flatten(1).std(1),
            "saturation": (x.amax(1) - x.amin(1)).flatten(1).mean(1),
            "sharpness": _filter(gray, _LAPLACE).abs().flatten(1).mean(1),
            "noise": _filter(gray, _NOISE).abs().flatten(1).sum(1) * math.sqrt(math.pi / 2) / (6 * (h - 2) * (w - 2)),
            "edge_h_share": ex / (ex + ey + 1e-12),
            "red": x[:, 0].flatten(1).mean(1),
            "green": x[:, 1].flatten(1).mean(1),
            "blue": x[:, 2].flatten(1).mean(1),
        }
        for k, v in stats.items():
            parts[k].append(v.double().cpu())
    return {k: torch.cat(v).numpy() if v else np.zeros(0) for k, v in parts.items()}


@torch.no_grad()
def model_outputs(ckpt: Checkpoint, images: torch.Tensor, settings: engine.DeviceOptions, batch_size: int = 256
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(embeddings of the last hidden layer, logits) for uint8 images, one forward pass."""
    trunk = engine.prepare_model(penultimate(ckpt.model), settings).eval()
    head = model_head(ckpt.model).to(settings.device)
    embs, logits = [], []
    for idx in engine.batches(len(images), batch_size):
        with torch.autocast(settings.device.type, dtype=torch.bfloat16, enabled=settings.amp):
            emb = trunk(engine.normalize(images[idx.to(images.device)], settings)).float()
            logits.append(head(emb).float().cpu())
        embs.append(emb.cpu())
    if not embs:
        return np.zeros((0, 0)), np.zeros((0, len(ckpt.classes)))
    return torch.cat(embs).double().numpy(), torch.cat(logits).double().numpy()


EARLY_GRID = 3
"""``early_features`` average-pools the maps to this many cells a side (where in the image a stroke is)."""


@torch.no_grad()
def early_features(ckpt: Checkpoint, images: torch.Tensor, settings: engine.DeviceOptions, batch_size: int = 256
                   ) -> NDArray[np.float64] | None:
    """The third novelty test's features: the output of the trunk's second pooling layer (AlexNet's
    ``features[5]``: conv1, conv2 and their ReLU and max-pooling), average-pooled to
    ``EARLY_GRID`` x ``EARLY_GRID`` and flattened, computed on each image **standardised by its
    own mean and standard deviation** (over all pixels and channels) instead of the training
    normalisation. Early layers see texture and local shape, where a new class differs from the
    known ones more than in the last hidden layer; the standardisation makes them blind to a
    change of brightness or contrast (an affine change of every pixel value, harmless to the
    model), which otherwise moves them as far as a new class does (benchmarks/novelty_candidates.py).
    None for a model without a ``features`` trunk of at least two pooling layers."""
    net = unwrap(ckpt.model)
    trunk = getattr(net, "features", None)
    if not isinstance(trunk, torch.nn.Sequential):
        return None
    pools = [i for i, layer in enumerate(trunk) if isinstance(layer, torch.nn.MaxPool2d)]
    if len(pools) < 2:
        return None
    early = trunk[: pools[1] + 1].to(settings.device).eval()
    parts = []
    for idx in engine.batches(len(images), batch_size):
        x = images[idx.to(images.device)].to(settings.device).float() / 255.0
        flat = x.flatten(1)
        x = (x - flat.mean(1).view(-1, 1, 1, 1)) / flat.std(1).clamp_min(1e-3).view(-1, 1, 1, 1)
        y = F.adaptive_avg_pool2d(early(x), EARLY_GRID)
        parts.append(torch.flatten(y, 1).double().cpu())
    return torch.cat(parts).numpy() if parts else np.zeros((0, 0))


def softmax(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise softmax. Pure."""
    z = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), dtype=np.float64)


def table(ckpt: Checkpoint, embeddings: NDArray[np.float64], logits: NDArray[np.float64],
          stats: dict[str, NDArray[np.float64]], pca: Pca) -> pd.DataFrame:
    """The drift feature table for one set of images. Pure."""
    prob = softmax(logits)
    cols: dict[str, object] = {f"prob_{c}": prob[:, i] for i, c in enumerate(ckpt.classes)}
    cols["confidence"] = prob.max(axis=1)
    cols["predicted"] = np.asarray(ckpt.classes, dtype=object)[prob.argmax(axis=1)]
    for i, pc in enumerate(pca.transform(embeddings).T):
        cols[f"pc{i + 1}"] = pc
    cols.update(stats)
    return pd.DataFrame(cols)


def extract(ckpt: Checkpoint, images: torch.Tensor, settings: engine.DeviceOptions, *,
            pca: Pca | None = None, pca_components: int = 3) -> tuple[pd.DataFrame, Pca]:
    """Feature table of uint8 images; fits the PCA when none is given (do that on the reference)."""
    out = extract_all(ckpt, images, settings, pca=pca, pca_components=pca_components)
    return out.table, out.pca


@dataclass(frozen=True)
class Extracted:
    """A feature table with the embeddings it came from (the novelty signal needs them)."""

    table: pd.DataFrame
    pca: Pca
    embeddings: NDArray[np.float64]
    early: NDArray[np.float64] | None = None
    """``early_features`` of the same images (None: the model has none, or the reference is older)."""


def extract_all(ckpt: Checkpoint, images: torch.Tensor, settings: engine.DeviceOptions, *,
                pca: Pca | None = None, pca_components: int = 3) -> Extracted:
    """``extract`` that also returns the embeddings."""
    emb, logits = model_outputs(ckpt, images, settings)
    if pca is None:
        pca = Pca.fit(emb, pca_components)
    return Extracted(table(ckpt, emb, logits, image_statistics(images.to(settings.device)), pca), pca, emb,
                     early_features(ckpt, images, settings))


def held_out(ckpt: Checkpoint, images: torch.Tensor, labels: torch.Tensor, settings: engine.DeviceOptions) -> HeldOut:
    """The model's outputs on its held-out images (validation + reference split): the reference the
    drift step uses (item 3 of issue 14)."""
    emb, logits = model_outputs(ckpt, images, settings)
    stats = image_statistics(images.to(settings.device))
    early = early_features(ckpt, images, settings)
    return HeldOut(torch.from_numpy(emb).float(), torch.from_numpy(logits).float(), labels.cpu().long(),
                   {k: torch.from_numpy(v) for k, v in stats.items()},
                   None if early is None else torch.from_numpy(early).float())


def reference_table(ckpt: Checkpoint, held: HeldOut, pca_components: int = 3) -> Extracted:
    """The feature table of a held-out reference stored in the model file (PCA fitted on it). Pure."""
    emb = held.embeddings.double().numpy()
    pca = Pca.fit(emb, pca_components)
    stats = {k: v.double().numpy() for k, v in held.stats.items()}
    early = None if held.early is None else held.early.double().numpy()
    return Extracted(table(ckpt, emb, held.logits.double().numpy(), stats, pca), pca, emb, early)

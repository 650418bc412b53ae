"""The GPU fast path: decode a JPEG folder on the GPU once and keep it there.

``load`` turns an ``ImageIndex`` into the uint8 (N, 3, S, S) tensor the loops in ``engine`` eat:

* on CUDA, files are read as bytes, JPEGs decoded in batches by nvJPEG
  (``torchvision.io.decode_jpeg(..., device="cuda")``), resized on the GPU and cached there when
  they fit in a share of free memory (else parked in pinned host memory and copied per batch);
  the rest (augmentation, bf16 autocast, channels_last, optional torch.compile) is ``engine``
  with ``Settings.for_device("cuda")``;
* without CUDA it falls back to the plain CPU decode of ``data.load_images``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision.io

from freshness_trainer import data
from freshness_trainer.data import ImageIndex, ImageSet
from freshness_trainer.errors import TrainerError

DECODE_BATCH = 512
# Keep the decoded set on the GPU only if it takes at most this share of the free memory.
GPU_CACHE_SHARE = 0.5


def _is_jpeg(name: str) -> bool:
    return name.lower().endswith((".jpg", ".jpeg"))


def _decode_batch(blobs: list[bytes], names: list[str], size: int, device: torch.device) -> torch.Tensor:
    tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]
    jpeg = [i for i, n in enumerate(names) if _is_jpeg(n)]
    out: list[torch.Tensor | None] = [None] * len(blobs)
    if jpeg:
        try:
            decoded = torchvision.io.decode_jpeg(
                [tensors[i] for i in jpeg], mode=torchvision.io.ImageReadMode.RGB, device=device
            )
        except RuntimeError as exc:
            raise TrainerError("CorruptImage", f"cannot decode a JPEG among {names[jpeg[0]]}...: {exc}") from exc
        for i, img in zip(jpeg, decoded, strict=True):
            out[i] = img
    for i, t in enumerate(tensors):
        if out[i] is None:
            try:
                out[i] = torchvision.io.decode_image(t, mode=torchvision.io.ImageReadMode.RGB).to(device)
            except RuntimeError as exc:
                raise TrainerError("CorruptImage", f"cannot decode image {names[i]}: {exc}") from exc
    resized = [_resize(img, size) for img in out if img is not None]
    return torch.stack(resized)


def _resize(img: torch.Tensor, size: int) -> torch.Tensor:
    if img.shape[-2:] == (size, size):
        return img
    x = F.interpolate(img.unsqueeze(0).float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).squeeze(0)


def _fits_on_gpu(n: int, size: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return n * 3 * size * size <= GPU_CACHE_SHARE * free


def load(index: ImageIndex, size: int, device: torch.device, *, class_names: list[str] | None = None) -> ImageSet:
    """Decode the folder at ``size`` px for training/inference on ``device`` (GPU decode on CUDA)."""
    if device.type != "cuda":
        return data.load_images(index, size, class_names=class_names)
    keep_on_gpu = _fits_on_gpu(len(index), size, device)
    parts = []
    for i in range(0, len(index), DECODE_BATCH):
        names = index.files[i : i + DECODE_BATCH]
        batch = _decode_batch(data.read_bytes(index, names), names, size, device)
        parts.append(batch if keep_on_gpu else batch.cpu().pin_memory())
    images = torch.cat(parts)
    labels, classes = data.labels_for(index, class_names)
    return ImageSet(images, labels, classes, list(index.files))

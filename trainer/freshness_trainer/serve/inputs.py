"""Request payloads -> one image batch the model takes, or ``BadInput`` naming what is wrong. Pure.

Accepted (docs/serving.md):

- encoded images: JPEG or PNG bytes (v2 ``BYTES`` tensor of shape ``[N]``: raw bytes with the
  binary extension, base64 strings in JSON; v1 ``{"instances": [{"b64": "..."}]}``), resized to the
  model's input size exactly as the trainer's ``data.decode`` does;
- tensors in the layout ``engine.predict`` takes, ``[N, 3, S, S]`` (channels first, S = the
  model's ``image_size``): ``UINT8`` 0-255, or ``FP32`` in [0, 1]. v1 instances may be such nested
  lists, ``[3, S, S]`` each.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from freshness_trainer import data
from freshness_trainer.errors import TrainerError

FORMATS = {"JPEG": ".jpg", "PNG": ".png"}


class BadInput(ValueError):
    """A request the server refuses (HTTP 400); the message says what is wrong and what is allowed."""


@dataclass(frozen=True)
class Limits:
    image_size: int
    max_batch: int = 64
    max_image_pixels: int = 40_000_000


@dataclass(frozen=True)
class Original:
    """What capture writes for one input: encoded bytes with their suffix, or an (S, S, 3) uint8 array."""

    encoded: bytes = b""
    suffix: str = ""
    pixels: np.ndarray | None = None


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor
    """(N, 3, S, S): uint8, or float32 in [0, 1]; what ``engine.predict`` takes."""
    originals: list[Original] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _check_count(n: int, limits: Limits) -> None:
    if n == 0:
        raise BadInput("the request holds no images")
    if n > limits.max_batch:
        raise BadInput(f"the request holds {n} images; at most {limits.max_batch} per request (FRESHNESS_MAX_BATCH)")


def decode_one(blob: bytes, index: int, limits: Limits) -> tuple[np.ndarray, Original]:
    """One JPEG/PNG -> (S, S, 3) uint8, checking the format and pixel count before decoding."""
    try:
        with Image.open(io.BytesIO(blob)) as img:
            fmt, (w, h) = img.format, img.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise BadInput(f"image {index} is not an image: expected JPEG or PNG bytes") from None
    if fmt not in FORMATS:
        raise BadInput(f"image {index} is {fmt}: expected JPEG or PNG")
    if w * h > limits.max_image_pixels:
        raise BadInput(f"image {index} is {w}x{h} pixels; at most {limits.max_image_pixels} in all "
                       "(FRESHNESS_MAX_IMAGE_PIXELS)")
    try:
        arr = data.decode(blob, f"image {index}", limits.image_size)
    except TrainerError as exc:
        raise BadInput(exc.message) from None
    return arr, Original(encoded=blob, suffix=FORMATS[fmt])


def from_encoded(blobs: Sequence[bytes], limits: Limits) -> Batch:
    _check_count(len(blobs), limits)
    decoded = [decode_one(b, i, limits) for i, b in enumerate(blobs)]
    images = torch.from_numpy(np.stack([a for a, _ in decoded])).permute(0, 3, 1, 2).contiguous()
    return Batch(images, [o for _, o in decoded])


def from_b64(items: Sequence[Any], limits: Limits, what: str) -> Batch:
    blobs = []
    for i, s in enumerate(items):
        if isinstance(s, bytes):
            blobs.append(s)
            continue
        if not isinstance(s, str):
            raise BadInput(f"{what} {i}: expected a base64 string, got {type(s).__name__}")
        try:
            blobs.append(base64.b64decode(s, validate=True))
        except (binascii.Error, ValueError):
            raise BadInput(f"{what} {i} is not valid base64") from None
    return from_encoded(blobs, limits)


def from_array(arr: np.ndarray, limits: Limits, what: str = "tensor") -> Batch:
    """A ``[N, 3, S, S]`` uint8 or float32 array -> Batch; float values must lie in [0, 1]."""
    s = limits.image_size
    if arr.ndim != 4 or tuple(arr.shape[1:]) != (3, s, s):
        raise BadInput(f"{what} has shape {list(arr.shape)}; expected [N, 3, {s}, {s}] (channels first)")
    _check_count(int(arr.shape[0]), limits)
    if arr.dtype == np.uint8:
        images = torch.from_numpy(np.ascontiguousarray(arr))
        pixels = arr.transpose(0, 2, 3, 1)
    elif arr.dtype == np.float32:
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise BadInput(f"{what}: FP32 values must be finite and within [0, 1]")
        images = torch.from_numpy(np.ascontiguousarray(arr))
        pixels = np.rint(arr * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)
    else:
        raise BadInput(f"{what} has datatype {arr.dtype}; expected UINT8 or FP32")
    return Batch(images, [Original(pixels=np.ascontiguousarray(p)) for p in pixels])


def from_v1(body: Any, limits: Limits) -> Batch:
    """``{"instances": [...]}``: all ``{"b64": ...}`` objects, or all ``[3, S, S]`` nested lists."""
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
        raise BadInput('expected a JSON object {"instances": [...]} (v1 protocol)')
    instances = body["instances"]
    _check_count(len(instances), limits)
    if all(isinstance(x, dict) for x in instances):
        if not all(set(x) == {"b64"} for x in instances):
            raise BadInput('each instance object must be {"b64": "<base64 JPEG or PNG>"}')
        return from_b64([x["b64"] for x in instances], limits, "instance")
    try:
        arr = np.asarray(instances)
    except ValueError:
        raise BadInput("instances are neither {\"b64\": ...} objects nor equal-shaped number arrays") from None
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise BadInput("integer pixel values must be within 0-255")
        arr = arr.astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = arr.astype(np.float32)
    else:
        raise BadInput("instances are neither {\"b64\": ...} objects nor number arrays")
    return from_array(arr, limits, "instances")


def from_v2(name: str, datatype: str, shape: Sequence[int], values: Any, limits: Limits) -> Batch:
    """One v2 input tensor. ``values``: its data as the SDK gives it (a list or a numpy array)."""
    what = f"input {name!r}"
    if datatype == "BYTES":
        flat = np.asarray(values, dtype=object).reshape(-1).tolist()
        if list(shape) != [len(flat)]:
            raise BadInput(f"{what}: a BYTES input must have shape [N] (one encoded image each), got {list(shape)}")
        return from_b64(flat, limits, f"{what} element")
    dtypes = {"UINT8": np.uint8, "FP32": np.float32}
    if datatype not in dtypes:
        raise BadInput(f"{what} has datatype {datatype}; expected BYTES (JPEG/PNG), UINT8 or FP32")
    try:
        arr = np.asarray(values, dtype=dtypes[datatype]).reshape(list(shape))
    except (ValueError, TypeError, OverflowError):
        raise BadInput(f"{what}: data does not fit shape {list(shape)} as {datatype}") from None
    return from_array(arr, limits, what)

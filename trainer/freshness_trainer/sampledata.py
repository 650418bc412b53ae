"""A small, deterministic image-folder data set that tells the tutorial's story, made offline.

The DVC tutorial "Preventing Stale Models in Production" trains AlexNet on cats and dogs; later,
bees show up in production. We cannot download that data, so we build a stand-in from images that
ship inside installed packages:

* the **objects** are handwritten digits from scikit-learn's ``load_digits`` (8x8, ~180 per digit),
  upscaled, given a random colour, size and position: ``cats`` are 0s, ``dogs`` are 1s and the new
  class, ``bees``, are 7s;
* the **backgrounds** are random crops of photographs shipped with scikit-image (``data.astronaut``,
  ``chelsea``, ``coffee``, ``rocket``, ``brick``, ``grass``, ...), shared by every class so the
  background says nothing about the label.

Images are 64x64 RGB PNGs. Reference and production images are drawn from the same generator
(every digit of the class, a random background, colour, size and place) with separate random
streams, so ``production/iid`` is a genuinely independent sample of the training distribution.
(Splitting the ~180 digits per class into a reference and a production half made "iid"
production measurably different from the reference once samples reached ~1,000 images: each half
is a finite set of writers.)

Layout written by :func:`make_sample_data` (``freshness-trainer make-sample-data OUT``)::

    OUT/reference/{cats,dogs}/              what the serving model is trained on (2 classes)
    OUT/extended/{cats,dogs,bees}/          the retraining set once bees are labelled (3 classes)
    OUT/production/iid/{cats,dogs}/         fresh production images, same distribution: no drift
    OUT/production/new-class/{cats,dogs,bees}/   30% bees: the tutorial's drift
    OUT/production/noise/{cats,dogs}/       covariate shifts of the iid images: Gaussian noise,
    OUT/production/blur/{cats,dogs}/          Gaussian blur, darker images (brightness) and
    OUT/production/brightness/{cats,dogs}/    rotation by 60-120 degrees
    OUT/production/rotation/{cats,dogs}/
    OUT/manifest.json                       counts, seed and shift settings

Production folders keep their labels (a subfolder per class) so the drift step can also report the
serving model's accuracy on them. Everything is a pure function of ``seed``: same seed, same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

SIZE = 64
CLASS_DIGITS: dict[str, int] = {"cats": 0, "dogs": 1, "bees": 7}
BASE_CLASSES = ("cats", "dogs")
NEW_CLASS = "bees"
SHIFTS = ("noise", "blur", "brightness", "rotation")
# Severity of each covariate shift at strength 1.0 (images are floats in [0, 1]):
# noise = std of additive Gaussian noise, blur = Gaussian sigma in pixels, brightness = multiplier,
# rotation = the angle range in degrees (either direction).
SHIFT_SETTINGS: dict[str, float] = {"noise": 0.25, "blur": 2.0, "brightness": 0.4, "rotation": 90.0}
NEW_CLASS_SHARE = 0.3
_BACKGROUNDS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "rocket",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "cell", "clock",
)

Images = NDArray[np.uint8]


@dataclass(frozen=True)
class Batch:
    """Rendered images (N, 64, 64, 3) uint8 and their class names, in the same order."""

    images: Images
    labels: list[str]


@cache
def _digits() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


@cache
def _backgrounds() -> tuple[NDArray[np.float32], ...]:
    import skimage.data

    photos = []
    for name in _BACKGROUNDS:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        photos.append(np.ascontiguousarray(img[..., :3]))
    return tuple(photos)


def _digit_pool(digit: int, half: str, seed: int) -> NDArray[np.int64]:
    """All of one digit's images, in an order fixed by the seed and the half."""
    images, target = _digits()
    del images
    idx = np.flatnonzero(target == digit)
    return np.random.default_rng([seed, digit, 0 if half == "reference" else 1]).permutation(idx)


def _resize(img: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    zoom = (size / img.shape[0], size / img.shape[1]) + (1,) * (img.ndim - 2)
    out = ndimage.zoom(img, zoom, order=1, prefilter=False)
    return np.asarray(out[:size, :size], dtype=np.float32)


def _background(rng: np.random.Generator) -> NDArray[np.float32]:
    photo = _backgrounds()[rng.integers(len(_BACKGROUNDS))]
    h, w = photo.shape[:2]
    crop = int(rng.integers(SIZE, min(h, w, 4 * SIZE) + 1))
    y, x = int(rng.integers(h - crop + 1)), int(rng.integers(w - crop + 1))
    patch = _resize(photo[y : y + crop, x : x + crop], SIZE)
    # Muted backgrounds keep the object visible without making the colour of the photo a cue.
    return 0.1 + 0.5 * patch


def _object(digit_image: NDArray[np.float32], rng: np.random.Generator) -> tuple[NDArray[np.float32], ...]:
    """An alpha mask of the digit at a random size and place, and a random bright colour."""
    side = int(rng.integers(34, 52))
    mask = np.clip(_resize(ndimage.gaussian_filter(digit_image, 0.4), side), 0.0, 1.0)
    alpha = np.zeros((SIZE, SIZE), np.float32)
    y, x = (int(v) for v in rng.integers(0, SIZE - side + 1, size=2))
    alpha[y : y + side, x : x + side] = mask
    hue = rng.uniform(0, 2 * np.pi)
    colour = 0.75 + 0.25 * np.cos(hue + np.array([0.0, 2.1, 4.2], np.float32))
    return alpha[..., None], colour.astype(np.float32)


def apply_shift(
    img: NDArray[np.float32], shift: str, rng: np.random.Generator, strength: float = 1.0
) -> NDArray[np.float32]:
    """One covariate shift of a float RGB image in [0, 1]. Pure given ``rng``."""
    level = SHIFT_SETTINGS[shift] * strength
    if shift == "noise":
        out = img + rng.normal(0.0, level, img.shape).astype(np.float32)
    elif shift == "blur":
        out = ndimage.gaussian_filter(img, sigma=(level, level, 0))
    elif shift == "brightness":
        out = img * (1.0 - (1.0 - SHIFT_SETTINGS["brightness"]) * strength)
    elif shift == "rotation":
        angle = rng.uniform(level * 2 / 3, level * 4 / 3) * rng.choice([-1.0, 1.0])
        out = ndimage.rotate(img, angle, axes=(1, 0), reshape=False, order=1, mode="reflect")
    else:
        raise ValueError(f"unknown shift {shift!r}; known: {', '.join(SHIFTS)}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def render(
    counts: Mapping[str, int], *, half: str, seed: int, shift: str | None = None, strength: float = 1.0,
    class_digits: Mapping[str, int] = CLASS_DIGITS,
) -> Batch:
    """Render ``counts[class]`` images per class from the reference or production stream, optionally
    shifted; ``class_digits`` says which digit draws each class (a benchmark adds classes of its own).
    Pure."""
    digits, _ = _digits()
    images: list[Images] = []
    labels: list[str] = []
    shift_code = 0 if shift is None else 1 + SHIFTS.index(shift)
    for name, n in sorted(counts.items()):
        pool = _digit_pool(class_digits[name], half, seed)
        # One stream per (class, half, shift): the extended set is the reference set plus bees.
        rng = np.random.default_rng([seed, class_digits[name], 0 if half == "reference" else 1, shift_code])
        for i in range(n):
            bg = _background(rng)
            alpha, colour = _object(digits[pool[i % len(pool)]], rng)
            img = bg * (1.0 - alpha) + colour * alpha
            if shift is not None:
                img = apply_shift(img, shift, rng, strength)
            images.append(np.round(img * 255.0).astype(np.uint8))
            labels.append(name)
    return Batch(np.stack(images) if images else np.zeros((0, SIZE, SIZE, 3), np.uint8), labels)


def production_counts(n: int, classes: Sequence[str] = BASE_CLASSES, new_share: float = 0.0) -> dict[str, int]:
    """Split ``n`` production images evenly over ``classes``, with ``new_share`` of them bees."""
    n_new = round(n * new_share)
    base = n - n_new
    counts = {c: base // len(classes) + (1 if i < base % len(classes) else 0) for i, c in enumerate(classes)}
    if n_new:
        counts[NEW_CLASS] = n_new
    return counts


def write_image_folder(batch: Batch, out: Path, fmt: str = "png") -> None:
    """Write a batch as ``out/<class>/<nnnn>.<fmt>``. Touches the filesystem."""
    for i, (img, label) in enumerate(zip(batch.images, batch.labels, strict=True)):
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.{fmt}", quality=95)


PER_CLASS = 420
"""Labelled images per class of ``reference``/``extended``: 120 to train and validate on plus 300 that
the prepare stage holds out as the drift reference (params.yaml ``data.reference_per_class``)."""


def make_sample_data(out: Path, *, seed: int = 0, per_class: int = PER_CLASS, production: int = 200
                     ) -> dict[str, object]:
    """Write the whole sample set (layout in the module docstring); returns the manifest."""
    plan: dict[str, tuple[dict[str, int], str, str | None]] = {
        "reference": ({c: per_class for c in BASE_CLASSES}, "reference", None),
        "extended": ({c: per_class for c in (*BASE_CLASSES, NEW_CLASS)}, "reference", None),
        "production/iid": (production_counts(production), "production", None),
        "production/new-class": (production_counts(production, new_share=NEW_CLASS_SHARE), "production", None),
    }
    for shift in SHIFTS:
        plan[f"production/{shift}"] = (production_counts(production), "production", shift)
    manifest: dict[str, object] = {"seed": seed, "size": SIZE, "classDigits": CLASS_DIGITS, "shifts": SHIFT_SETTINGS}
    folders: dict[str, dict[str, int]] = {}
    for name, (counts, half, shifted) in plan.items():
        write_image_folder(render(counts, half=half, seed=seed, shift=shifted), out / name)
        folders[name] = counts
    manifest["folders"] = folders
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest

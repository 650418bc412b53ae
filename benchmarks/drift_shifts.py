"""The shifts of the drift-quality benchmark (benchmarks/drift_quality.py): graded, harmless to harmful.

Every shift is generated: production images are fresh renders of the sample set's generator
(``freshness_trainer.sampledata``, production stream), then changed here. Two kinds:

* **covariate** shifts change the pixels of every image of a batch — a pipeline or camera change:
  ``jpeg`` (recompression at quality q), ``brighter``/``darker`` (pixel values times 1 ± f),
  ``contrast`` (distance from the image's mean grey times 1 ± f), ``resize`` (the image resized to
  96 px and back to 64 px with another interpolation filter than the renderer's bilinear),
  ``noise`` (additive Gaussian sensor noise, standard deviation sd of the [0, 1] range), ``blur``
  (Gaussian, standard deviation in pixels) and ``rotation`` (by d·[2/3, 4/3] degrees either way,
  as the sample set's rotation);
* **mixture** shifts replace a share of a batch with other images: ``new-class`` (bees, a class
  the model never saw), ``unseen-class`` (wasps, another one, in the held-out grid) and
  ``other-domain`` (the same cats and dogs as *line drawings*: dark strokes on a plain light paper,
  no photograph behind them — another camera and world than the training images'). A batch of
  share s holds round(s·n) such images, the rest iid.

``SHIFTS`` is the benchmark's grid: several strengths per family, from a change the model does not
notice to one that costs it dozens of accuracy points. ``HOLDOUT_SHIFTS`` is a second grid of
families that played no part in choosing the impact rule's thresholds (gamma, saturation, colour
cast, dead pixels, occlusion, zoom, motion blur, a mirror and another unseen class). Whether a cell
is *harmless* (< 1 point) or *harmful* (≥ 5 points) is decided by the accuracy cost measured in the
run, not by its name.
Everything here is pure given its ``rng``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from freshness_trainer import sampledata
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

Images = NDArray[np.uint8]
Transform = Callable[[Images, float, np.random.Generator], Images]


def _float(images: Images) -> NDArray[np.float32]:
    return images.astype(np.float32) / 255.0


def _uint8(x: NDArray[np.float32]) -> Images:
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def jpeg(images: Images, quality: float, rng: np.random.Generator) -> Images:
    del rng
    out = np.empty_like(images)
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        out[i] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return out


def scale(images: Images, factor: float, rng: np.random.Generator) -> Images:
    del rng
    return _uint8(_float(images) * factor)


def contrast(images: Images, factor: float, rng: np.random.Generator) -> Images:
    del rng
    x = _float(images)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _uint8(mean + (x - mean) * factor)


_FILTERS = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC,
            "box": Image.Resampling.BOX, "lanczos": Image.Resampling.LANCZOS}
RESIZE_FILTERS = tuple(_FILTERS)


def resize(images: Images, filter_index: float, rng: np.random.Generator) -> Images:
    del rng
    resample = _FILTERS[RESIZE_FILTERS[int(filter_index)]]
    size = images.shape[1]
    big = int(size * 1.5)
    out = np.empty_like(images)
    for i, img in enumerate(images):
        up = Image.fromarray(img).resize((big, big), Image.Resampling.BILINEAR)
        out[i] = np.asarray(up.resize((size, size), resample))
    return out


def noise(images: Images, sigma: float, rng: np.random.Generator) -> Images:
    x = _float(images)
    return _uint8(x + rng.normal(0.0, sigma, x.shape).astype(np.float32))


def blur(images: Images, sigma: float, rng: np.random.Generator) -> Images:
    del rng
    return _uint8(ndimage.gaussian_filter(_float(images), sigma=(0, sigma, sigma, 0)))


def rotation(images: Images, degrees: float, rng: np.random.Generator) -> Images:
    x = _float(images)
    out = np.empty_like(x)
    for i in range(len(x)):
        angle = rng.uniform(degrees * 2 / 3, degrees * 4 / 3) * rng.choice([-1.0, 1.0])
        out[i] = ndimage.rotate(x[i], angle, axes=(1, 0), reshape=False, order=1, mode="reflect")
    return _uint8(out)


# --- the held-out families: none of them was run while the impact rule's thresholds were chosen ---

def gamma(images: Images, g: float, rng: np.random.Generator) -> Images:
    del rng
    return _uint8(_float(images) ** g)


def saturation(images: Images, factor: float, rng: np.random.Generator) -> Images:
    del rng
    x = _float(images)
    grey = x.mean(axis=-1, keepdims=True)
    return _uint8(grey + (x - grey) * factor)


def colour_cast(images: Images, f: float, rng: np.random.Generator) -> Images:
    """A white-balance change: red times 1 + f, blue times 1 - f."""
    del rng
    return _uint8(_float(images) * np.array([1 + f, 1.0, 1 - f], dtype=np.float32))


def salt_pepper(images: Images, p: float, rng: np.random.Generator) -> Images:
    """A share p of the pixels (all channels) dead: black or white with even odds."""
    x = _float(images)
    hit = rng.random(x.shape[:3]) < p
    x[hit] = rng.integers(0, 2, size=int(hit.sum()))[:, None].astype(np.float32)
    return _uint8(x)


def occlusion(images: Images, side: float, rng: np.random.Generator) -> Images:
    """A flat grey square, ``side`` of the image's width, at a random place in each image."""
    x = _float(images)
    size = x.shape[1]
    k = max(1, round(side * size))
    for i in range(len(x)):
        top, left = rng.integers(0, size - k + 1, size=2)
        x[i, top:top + k, left:left + k, :] = rng.uniform(0.0, 1.0)
    return _uint8(x)


def zoom(images: Images, factor: float, rng: np.random.Generator) -> Images:
    """The centre 1/factor of each image, resized back to full size (a closer camera)."""
    del rng
    size = images.shape[1]
    k = round(size / factor)
    lo = (size - k) // 2
    out = np.empty_like(images)
    for i, img in enumerate(images):
        crop = Image.fromarray(img[lo:lo + k, lo:lo + k])
        out[i] = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))
    return out


def motion_blur(images: Images, length: float, rng: np.random.Generator) -> Images:
    """A horizontal smear over ``length`` pixels (camera shake)."""
    del rng
    return _uint8(ndimage.uniform_filter1d(_float(images), size=int(length), axis=2, mode="reflect"))


def mirror(images: Images, value: float, rng: np.random.Generator) -> Images:
    del value, rng
    return np.ascontiguousarray(images[:, :, ::-1, :])


TRANSFORMS: dict[str, Transform] = {
    "jpeg": jpeg, "brighter": scale, "darker": scale, "contrast": contrast, "resize": resize,
    "noise": noise, "blur": blur, "rotation": rotation,
    "gamma": gamma, "saturation": saturation, "colour-cast": colour_cast, "salt-pepper": salt_pepper,
    "occlusion": occlusion, "zoom": zoom, "motion-blur": motion_blur, "mirror": mirror,
}
MIXTURES = ("new-class", "other-domain", "unseen-class")
UNSEEN_CLASS = "wasps"
UNSEEN_DIGITS = {**sampledata.CLASS_DIGITS, UNSEEN_CLASS: 4}
"""The held-out grid's new class: digit 4, which neither the sample set nor its bees draw."""


@dataclass(frozen=True)
class Shift:
    """One cell of the grid: a family and a strength (``value``: the transform's parameter, or the
    share of a mixture); ``label`` is how the table names the strength."""

    family: str
    value: float
    label: str

    @property
    def name(self) -> str:
        return f"{self.family} {self.label}" if self.family != "iid" else "iid"

    @property
    def is_mixture(self) -> bool:
        return self.family in MIXTURES

    def apply(self, images: Images, rng: np.random.Generator) -> Images:
        """The shifted images of a covariate shift (a mixture is drawn, not applied)."""
        if self.family == "iid":
            return images
        if self.is_mixture:
            raise ValueError(f"{self.name} is a mixture: its images are drawn from a pool, not transformed")
        return TRANSFORMS[self.family](images, self.value, rng)


IID = Shift("iid", 0.0, "")


def _grid() -> tuple[Shift, ...]:
    cells = [IID]
    cells += [Shift("jpeg", q, f"q={q}") for q in (30,)]
    cells += [Shift("brighter", 1 + f, f"+{f:.0%}") for f in (0.04,)]
    cells += [Shift("darker", 1 - f, f"-{f:.0%}") for f in (0.04, 0.2, 0.3, 0.4)]
    cells += [Shift("contrast", 1 + f, f"{f:+.0%}") for f in (-0.05, 0.05)]
    cells += [Shift("resize", float(RESIZE_FILTERS.index(f)), f) for f in ("nearest",)]
    cells += [Shift("noise", s, f"sd={s}") for s in (0.01, 0.02, 0.04, 0.08, 0.16)]
    cells += [Shift("blur", s, f"sd={s}px") for s in (2.0, 3.5, 5.0)]
    cells += [Shift("rotation", d, f"{d:.0f}°") for d in (10, 20, 30, 60)]
    cells += [Shift("new-class", s, f"{s:.0%}") for s in (0.1, 0.2, 0.3)]
    cells += [Shift("other-domain", s, f"{s:.0%}") for s in (0.1, 0.25, 0.5)]
    return tuple(cells)


def _holdout_grid() -> tuple[Shift, ...]:
    cells = [IID, Shift("mirror", 0.0, "left-right")]
    cells += [Shift("gamma", g, f"gamma {g}") for g in (0.9, 1.1, 1.6, 2.2)]
    cells += [Shift("saturation", f, f"x{f}") for f in (0.9, 0.5, 0.0)]
    cells += [Shift("colour-cast", f, f"±{f:.0%}") for f in (0.03, 0.15, 0.3)]
    cells += [Shift("salt-pepper", p, f"{p:.1%}") for p in (0.005, 0.02, 0.08)]
    cells += [Shift("occlusion", s, f"{s:.0%} side") for s in (0.15, 0.3, 0.45)]
    cells += [Shift("zoom", f, f"x{f}") for f in (1.1, 1.3, 1.6)]
    cells += [Shift("motion-blur", n, f"{n:.0f}px") for n in (3, 7, 11)]
    cells += [Shift("unseen-class", s, f"{s:.0%}") for s in (0.1, 0.2, 0.3)]
    return tuple(cells)


SHIFTS = _grid()
HOLDOUT_SHIFTS = _holdout_grid()
"""Families never run while the impact rule was tuned (added at the end of that work): a fair test
of thresholds chosen on ``SHIFTS``. ``drift_quality.py --grid holdout``."""
SMOKE_SHIFTS = (IID, Shift("jpeg", 30, "q=30"), Shift("noise", 0.2, "sd=0.2"), Shift("new-class", 0.3, "30%"))
HOLDOUT_SMOKE_SHIFTS = (IID, Shift("mirror", 0.0, "left-right"), Shift("occlusion", 0.45, "45% side"),
                        Shift("unseen-class", 0.3, "30%"))


def line_drawings(counts: dict[str, int], *, seed: int) -> sampledata.Batch:
    """The other domain: the production stream's objects as dark strokes on light, plain paper."""
    batch = sampledata.render(counts, half="production", seed=seed)
    rng = np.random.default_rng([seed, 99])
    x = _float(batch.images)
    # The object is the brightest part of a render (colour >= 0.5 over a background <= 0.6): its
    # soft mask is recovered from the brightness above the background's range.
    grey = x.mean(axis=-1, keepdims=True)
    alpha = np.clip((grey - 0.5) / 0.25, 0.0, 1.0)
    paper = rng.uniform(0.8, 1.0, size=(len(x), 1, 1, 3)).astype(np.float32)
    ink = rng.uniform(0.0, 0.35, size=(len(x), 1, 1, 3)).astype(np.float32)
    return sampledata.Batch(_uint8(paper * (1 - alpha) + ink * alpha), batch.labels)

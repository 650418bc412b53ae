"""Image-folder data sets at local paths and fsspec URIs (a subfolder per class, JPEG or PNG).

``list_images`` finds the files (touches the filesystem, nothing else); ``load_images`` decodes
and resizes them on the CPU into one uint8 tensor. The GPU decode lives in ``fastpath``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import fsspec
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from freshness_trainer.errors import TrainerError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageIndex:
    """The files of an image folder. ``labels`` is None for an unlabelled folder (images at top level)."""

    root: str
    files: list[str]
    classes: list[str]
    labels: list[int] | None
    protocol: str

    def __len__(self) -> int:
        return len(self.files)

    def head(self, n: int) -> ImageIndex:
        """The first ``n`` files (e.g. a warm-up batch)."""
        labels = None if self.labels is None else self.labels[:n]
        return ImageIndex(self.root, self.files[:n], self.classes, labels, self.protocol)

    def counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}


@dataclass(frozen=True)
class ImageSet:
    """Decoded images, (N, 3, S, S) uint8, and their labels (None when the folder had no classes)."""

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str]
    files: list[str] = field(default_factory=list)
    """The source file of each image, in order (the drift report names them)."""

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_SUFFIXES)


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def list_images(uri: str, *, labelled: bool | None = None, min_classes: int = 1) -> ImageIndex:
    """Index an image folder: ``uri/<class>/*.{jpg,jpeg,png}``, or ``uri/*.{...}`` when unlabelled.

    ``labelled=None`` accepts either layout; True requires class subfolders. Raises TrainerError
    (DataNotFound, EmptyDataset, SingleClass) naming the folder.
    """
    fs, root = fsspec.core.url_to_fs(uri)
    if not fs.exists(root) or not fs.isdir(root):
        raise TrainerError("DataNotFound", f"image folder {uri} does not exist or is not a folder")
    entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    subdirs = [e["name"] for e in entries if e["type"] == "directory" and not _base(e["name"]).startswith(".")]
    loose = [e["name"] for e in entries if e["type"] != "directory" and _is_image(e["name"])]
    classes: list[str] = []
    files: list[str] = []
    labels: list[int] = []
    for d in subdirs:
        found = sorted(f for f in fs.find(d) if _is_image(f))
        if found:
            labels.extend([len(classes)] * len(found))
            classes.append(_base(d))
            files.extend(found)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if not files and loose and labelled is not True:
        return ImageIndex(uri, loose, [], None, protocol)
    if not files:
        what = "class subfolders with images" if labelled else "images (JPEG/PNG)"
        raise TrainerError("EmptyDataset", f"image folder {uri} has no {what}")
    if len(classes) < min_classes:
        raise TrainerError(
            "SingleClass" if len(classes) == 1 else "EmptyDataset",
            f"image folder {uri} has {len(classes)} class(es) ({', '.join(classes)}); at least {min_classes} needed",
        )
    return ImageIndex(uri, files, classes, labels, protocol)


def decode(data: bytes, name: str, size: int) -> np.ndarray:
    """Decode one JPEG/PNG to (size, size, 3) uint8 RGB; TrainerError(CorruptImage) names the file."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = img.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise TrainerError("CorruptImage", f"cannot decode image {name}: {exc}") from exc


def read_bytes(index: ImageIndex, files: Sequence[str] | None = None) -> list[bytes]:
    """Read the raw bytes of the index's files through fsspec (one round trip per file)."""
    fs, _ = fsspec.core.url_to_fs(index.root)
    return [fs.cat_file(f) for f in (index.files if files is None else files)]


def load_images(index: ImageIndex, size: int, *, class_names: Sequence[str] | None = None) -> ImageSet:
    """Decode every image of ``index`` at ``size`` px on the CPU.

    ``class_names`` maps the folder's classes onto a model's class list (labels follow the model's
    order); a folder class the model does not know keeps a label of -1 (e.g. bees for a 2-class
    model), which counts as a wrong prediction.
    """
    arrays = [decode(b, f, size) for b, f in zip(read_bytes(index), index.files, strict=True)]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    labels, classes = labels_for(index, class_names)
    return ImageSet(images, labels, classes, list(index.files))


def labels_for(index: ImageIndex, class_names: Sequence[str] | None = None) -> tuple[torch.Tensor | None, list[str]]:
    """The index's labels, remapped onto ``class_names`` when given (unknown classes get -1). Pure."""
    if index.labels is None:
        return None, list(class_names or [])
    if class_names is None:
        return torch.tensor(index.labels, dtype=torch.long), list(index.classes)
    lookup = {c: i for i, c in enumerate(class_names)}
    mapped = [lookup.get(index.classes[i], -1) for i in index.labels]
    return torch.tensor(mapped, dtype=torch.long), list(class_names)

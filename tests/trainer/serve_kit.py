"""Helpers of the serving tests: a model file saved as the trainer saves it, and encoded images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from freshness_trainer import model, sampledata
from PIL import Image

CLASSES = ["cats", "dogs"]


def save_model(path: Path, seed: int = 0) -> Path:
    """An untrained model saved exactly as the trainer saves its models."""
    torch.manual_seed(seed)
    net = model.build("alexnet", len(CLASSES), hidden_units=64)
    model.save(model.Checkpoint(net, CLASSES, sampledata.SIZE), str(path))
    return path


def encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()

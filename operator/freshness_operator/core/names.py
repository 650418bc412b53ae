"""Deterministic child names and label values (so acting twice creates nothing new). Pure."""

from __future__ import annotations

import hashlib

CHECK_NOW = "modelfreshness.io/check-now"  # annotation on a ModelDeployment: a new value asks for a check now
MAX_NAME = 63  # Job names become pod label values, which are limited to 63 characters.
# The serving Deployment's opt-in: the operator patches a Deployment only when this label's value
# is label_value(<ModelDeployment name>) (docs/security.md).
SERVING_FOR = "modelfreshness.io/serving-for"


def _shorten(base: str, suffix: str) -> str:
    if len(base) + len(suffix) <= MAX_NAME:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def label_value(mdep: str) -> str:
    """The ModelDeployment's name as a label value (hashed when over 63 characters)."""
    return _shorten(mdep, "")


def drift_job(mdep: str, number: int) -> str:
    return _shorten(mdep, f"-drift-{number}")


def train_job(mdep: str, retrain: int, index: int) -> str:
    return _shorten(mdep, f"-train-{retrain}-{index}")


def package_job(mdep: str, retrain: int) -> str:
    return _shorten(mdep, f"-package-{retrain}")


def version(retrain: int, rev: str | None) -> str:
    """The version (and image tag) of a retrain's model: v<n>, plus the experiment's short rev."""
    return f"v{retrain}-{rev[:8]}" if rev else f"v{retrain}"


def version_of_image(image: str) -> str:
    """A readable version for an image we did not build: its tag, else a short digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    if digest:
        return digest.split(":")[-1][:12]
    return "latest"

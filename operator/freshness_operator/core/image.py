"""The only image a retrain may roll out, checked before the serving Deployment is touched. Pure.

A package result is trusted for nothing it could not have been asked for: the image must be the
one the package Job was told to build, ``<spec.serving.image>:<version>``, pinned by a digest.
"""

from __future__ import annotations

import re

_PINNED = re.compile(r"@sha256:[0-9a-f]{64}")


def expected(serving_image: str, version: str | None) -> str:
    """The form a retrain's image must have, as shown in messages."""
    return f"{serving_image}:{version}@sha256:<64 hex>"


def problem(serving_image: str, version: str | None, image: str | None, digest: str | None = None) -> str | None:
    """Why ``image`` may not be rolled out for ``version``, or None when it may."""
    tag = f"{serving_image}:{version}"
    if version is None or image is None or not image.startswith(tag) or not _PINNED.fullmatch(image[len(tag) :]):
        return f"got {image!r}, expected {expected(serving_image, version)}"
    if digest is not None and not image.endswith("@" + digest):
        return f"the digest {digest!r} is not the one in {image!r}"
    return None

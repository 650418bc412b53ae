"""Fake step results, as the trainer's steps would write them, each checked by the contract.

Every builder returns a document that ``freshness_contract.encode`` accepts (it raises when a
change to the schema makes the fake stale), ready for ``freshness_contract.encode`` or
``testkit.pods.finish_step_pod``.
"""

from __future__ import annotations

import json
from typing import Any

import freshness_contract as contract

from testkit.manifests import DIGEST, SERVING_IMAGE


def _checked(doc: dict[str, Any]) -> dict[str, Any]:
    contract.encode(doc)  # validates it as the step's writer would, or raises ResultError naming the field
    return doc


def drift_doc(detected: bool, share: float | None = None) -> dict[str, Any]:
    """A drift check's verdict; ``share`` defaults to 0.62 when ``detected`` and 0.05 when not."""
    value = share if share is not None else (0.62 if detected else 0.05)
    return _checked(
        {
            "step": "drift",
            "ok": True,
            "drift": {
                "detected": detected,
                "share": value,
                "score": value,
                "threshold": 0.3,
                "method": "evidently-share",
                "samples": 400,
                "topFeatures": ["confidence", "pc1"],
            },
        }
    )


def train_doc(val_acc: float = 0.95, baseline: float = 0.80, rev: str = "0a1b2c3d4e") -> dict[str, Any]:
    """A training candidate's result: its validation accuracy against the serving model's."""
    return _checked(
        {
            "step": "train",
            "ok": True,
            "train": {
                "experiment": f"exp-{rev[:4]}",
                "rev": rev,
                "metrics": {"val_acc": val_acc},
                "baselineMetrics": {"val_acc": baseline},
                "model": f"s3://dvc-remote/models/{rev}/model.pt",
            },
        }
    )


def package_doc(tag: str, repo: str = SERVING_IMAGE) -> dict[str, Any]:
    """The package step's result for ``repo:tag``, pinned by digest as the contract wants."""
    return _checked({"step": "package", "ok": True, "package": {"image": f"{repo}:{tag}@{DIGEST}", "digest": DIGEST}})


def bare_result(step: str) -> str:
    """``ok`` without the step's section: what the old schema let through (issue 10); the contract refuses it."""
    return json.dumps({"schemaVersion": contract.SCHEMA_VERSION, "step": step, "ok": True})

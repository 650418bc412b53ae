"""Fluent builders for the manifests the tests, the benchmarks and the demo apply. Pure.

    ModelDeploymentBuilder("cats").interval("2s").candidates({"train.lr": 0.1}, {}).obj()
    ServingDeploymentBuilder("cats-dogs").image("registry.example/cats-dogs:0.1").serving_for("cats").obj()

Every builder starts from a valid object (the defaults below) and each call changes one thing;
``obj()`` returns a fresh dict, so one builder can make several variants.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Self

from testkit.labels import SERVING_FOR

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds" / "modeldeployments.modelfreshness.io.yaml"  # the chart's crds/ holds the same file
GROUP, VERSION, PLURAL = "modelfreshness.io", "v1alpha1", "modeldeployments"
API_VERSION = f"{GROUP}/{VERSION}"
SERVING_IMAGE = "registry.example/cats-dogs"
DIGEST = "sha256:" + "5e" * 32
MODEL_URI = "s3://models/cats-dogs/0.1/model.pt"


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``, dicts recursively; any other value replaces. Pure."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def mdeps_path(namespace: str) -> str:
    """The API path of the ModelDeployments in ``namespace``."""
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


class ModelDeploymentBuilder:
    """A ModelDeployment serving through Deployment ``cats-dogs`` (container ``server``), checking
    for drift every 2 s, one training candidate, no cooldown."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._namespace: str | None = None
        self._spec: dict[str, Any] = {
            "source": {"repo": "https://git.example/acme/cats-dogs.git"},
            "data": {"reference": "data/train", "current": "s3://prod-samples/cats-dogs/"},
            "serving": {
                "deployment": "cats-dogs",
                "container": "server",
                "image": SERVING_IMAGE,
                "modelUri": MODEL_URI,
            },
            "drift": {"interval": "2s"},
            "training": {"candidates": [{}], "maxParallel": 1, "backoffLimit": 0},
            "policy": {"cooldown": "0s", "maxRetrainsPerDay": 100},
        }

    def namespace(self, namespace: str) -> Self:
        self._namespace = namespace
        return self

    def spec(self, **over: Any) -> Self:
        """Merge ``over`` into the spec (dicts recursively), e.g. ``spec(drift={"consecutive": 2})``."""
        self._spec = merge(self._spec, over)
        return self

    def without(self, *fields: str) -> Self:
        """Drop top-level spec fields (to test what the CRD says about a missing one)."""
        for f in fields:
            self._spec.pop(f, None)
        return self

    def serving(self, deployment: str) -> Self:
        return self.spec(serving={"deployment": deployment})

    def interval(self, interval: str) -> Self:
        return self.spec(drift={"interval": interval})

    def cooldown(self, cooldown: str) -> Self:
        return self.spec(policy={"cooldown": cooldown})

    def max_retrains_per_day(self, count: int) -> Self:
        return self.spec(policy={"maxRetrainsPerDay": count})

    def candidates(self, *overrides: dict[str, Any]) -> Self:
        """One training candidate per dict of ``-S`` overrides (``{}``: params.yaml as it is)."""
        return self.spec(training={"candidates": [dict(o) for o in overrides]})

    def paused(self, paused: bool = True) -> Self:
        return self.spec(paused=paused)

    def obj(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self._name}
        if self._namespace:
            metadata["namespace"] = self._namespace
        return {
            "apiVersion": API_VERSION,
            "kind": "ModelDeployment",
            "metadata": metadata,
            "spec": copy.deepcopy(self._spec),
        }


class ServingDeploymentBuilder:
    """A serving Deployment as a user would have it: one replica of container ``server`` running
    ``registry.example/cats-dogs:0.1``, restricted-compliant, opted in for ModelDeployment ``cats``
    (kwok makes its pods Ready)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._image = f"{SERVING_IMAGE}:0.1"
        self._replicas = 1
        self._serving_for: str | None = "cats"
        self._priority_class: str | None = None
        self._progress_deadline = 600
        self._strategy: dict[str, Any] | None = None

    def image(self, image: str) -> Self:
        self._image = image
        return self

    def replicas(self, replicas: int) -> Self:
        self._replicas = replicas
        return self

    def serving_for(self, mdep: str | None) -> Self:
        """The ModelDeployment it opts in for; None: not opted in (the operator must leave it alone)."""
        self._serving_for = mdep
        return self

    def priority_class(self, name: str) -> Self:
        self._priority_class = name
        return self

    def progress_deadline(self, seconds: int) -> Self:
        self._progress_deadline = seconds
        return self

    def rolling(self, max_surge: int, max_unavailable: int) -> Self:
        self._strategy = {"rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}}
        return self

    def obj(self) -> dict[str, Any]:
        pod_spec: dict[str, Any] = {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "server",
                    "image": self._image,
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        }
        if self._priority_class:
            pod_spec["priorityClassName"] = self._priority_class
        spec: dict[str, Any] = {
            "replicas": self._replicas,
            "progressDeadlineSeconds": self._progress_deadline,
            "selector": {"matchLabels": {"app": self._name}},
            "template": {"metadata": {"labels": {"app": self._name}}, "spec": pod_spec},
        }
        if self._strategy:
            spec["strategy"] = copy.deepcopy(self._strategy)
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self._name, "labels": {SERVING_FOR: self._serving_for} if self._serving_for else {}},
            "spec": spec,
        }


def restricted_namespace(name: str) -> dict[str, Any]:
    """A Namespace enforcing the restricted Pod Security level: non-compliant step pods are refused."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }

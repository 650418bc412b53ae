"""Plays the step containers for the benchmarks, and the manifests they create.

kwok leaves pods labelled ``modelfreshness.io/step`` Running; ``Completer`` ends each one as its
container would, with a valid result document in the termination message
(``testkit.pods.finish_step_pod``). The manifests are ``testkit``'s builders with the
benchmarks' settings: the serving Deployment named after its ModelDeployment, surging one pod at a time.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from testkit import results
from testkit.api import Api, Watch
from testkit.labels import STEP
from testkit.manifests import SERVING_IMAGE, ModelDeploymentBuilder, ServingDeploymentBuilder
from testkit.pods import finish_step_pod, running_step_pod

log = logging.getLogger("benchmarks")


def serving_deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    """A serving Deployment opted in for ModelDeployment ``name``, surging one pod at a time. Pure."""
    return (
        ServingDeploymentBuilder(name).image(f"{SERVING_IMAGE}:0.1").replicas(replicas).serving_for(name).rolling(1, 0)
    ).obj()


def model_deployment(name: str, interval: str, *, cooldown: str = "0s") -> dict[str, Any]:
    """A ModelDeployment serving through Deployment ``name``, one training candidate. Pure."""
    builder = ModelDeploymentBuilder(name).serving(name).interval(interval).cooldown(cooldown)
    return builder.max_retrains_per_day(1000).obj()


# Checked once here: the scale benchmark finishes thousands of drift pods and the completer's
# encode checks each document again anyway.
_DRIFT = {detected: results.drift_doc(detected) for detected in (True, False)}


def drift_doc(detected: bool) -> dict[str, Any]:
    return copy.deepcopy(_DRIFT[detected])


def train_doc(rev: str) -> dict[str, Any]:
    return results.train_doc(0.95, rev=rev)


def package_doc(image: str) -> dict[str, Any]:
    """The package step's result for ``image`` (REPO:TAG as asked), pinned by digest as the contract wants."""
    repo, _, tag = image.rpartition(":")
    return results.package_doc(tag, repo=repo)


def container_arg(pod: dict[str, Any], flag: str) -> str | None:
    """The value of ``flag`` in the pod's first container's args (``--flag=value``, as
    ``freshness_contract.argv`` writes them, or ``--flag value``). Pure."""
    args = list(pod["spec"]["containers"][0].get("args") or [])
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg[len(flag) + 1 :]
        if arg == flag and i + 1 < len(args):
            return str(args[i + 1])
    return None


ResultFor = Callable[[dict[str, Any]], dict[str, Any]]


class Completer:
    """Finishes Running step pods in one namespace with ``result_for(pod)`` as their result.

    ``finished`` maps a Job name to the time its pod's status patch returned (the moment the
    step's verdict exists in the cluster).
    """

    def __init__(self, api: Api, namespace: str, result_for: ResultFor, workers: int = 4) -> None:
        self.api, self.namespace, self.result_for = api, namespace, result_for
        self.finished: dict[str, float] = {}
        self.errors: list[str] = []
        self._handled: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="completer")
        self._watch = Watch(api, f"/api/v1/namespaces/{namespace}/pods", self._on_pod, selector=STEP)

    def start(self) -> Completer:
        self._watch.start()
        return self

    def stop(self) -> None:
        self._watch.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _on_pod(self, type_: str, pod: dict[str, Any], _: float) -> None:
        if type_ == "DELETED" or not running_step_pod(pod):
            return
        with self._lock:
            if pod["metadata"]["uid"] in self._handled:
                return
            self._handled.add(pod["metadata"]["uid"])
        self._pool.submit(self._finish, pod)

    def _finish(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            finish_step_pod(self.api, {**pod, "metadata": {**meta, "namespace": self.namespace}}, self.result_for(pod))
            job = (meta.get("labels") or {}).get("job-name") or meta["name"]
            self.finished.setdefault(job, time.time())
        except Exception as exc:
            self.errors.append(f"{meta['name']}: {exc}")
            log.warning("completer: %s: %s", meta["name"], exc)

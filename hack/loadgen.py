"""`make demo`'s production traffic: labelled images sent as v2 inference requests to a Service's
ready endpoints, at a steady rate, with the live accuracy the labels give. Touches the network and
the API (a watch on EndpointSlices, reads of pods).

The client follows the Service's EndpointSlices itself (``kubernetes.io/service-name=<svc>``) and
sends each request to the next endpoint whose ``ready`` condition is true, round robin; a
terminating or unready pod gets none. There is no kube-proxy here: the dev kubelet's pods live in
network namespaces on a bridge and this process reaches their IPs directly, which is exactly what
a client-side load balancer (gRPC's xDS, an Envoy sidecar) does with the same slices
(docs/serving.md, "Traffic in the demo").

No request is retried: an error status, a refused connection or a timeout counts as failed, with
the endpoint and the time, so a rollout that drops requests shows it. Each answer is kept with the
pod that gave it and that pod's image, so "which model answered" is a fact, not an assumption.
The server never sees a label: the generator keeps them (``Result.label``) to score the answers.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger("loadgen")
NEW_CLASS = "bees"


@dataclass(frozen=True)
class Result:
    time: float
    stream: str
    ip: str
    pod: str
    image: str
    label: str
    predicted: str | None  # None: failed
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Stats:
    requests: int
    failed: int
    accuracy: float | None
    bees_predicted: float | None  # share of answers predicting the new class

    def line(self) -> str:
        acc = "-" if self.accuracy is None else f"{self.accuracy:.3f}"
        bees = "-" if self.bees_predicted is None else f"{self.bees_predicted:.0%}"
        return f"{self.requests} requests, accuracy {acc}, predicted bees {bees}, failed {self.failed}"


def stats(results: Sequence[Result]) -> Stats:
    """Accuracy and the share predicted as bees over the answered requests; failures counted apart. Pure."""
    answered = [r for r in results if r.predicted is not None]
    n = len(answered)
    return Stats(
        requests=len(results),
        failed=len(results) - n,
        accuracy=sum(r.predicted == r.label for r in answered) / n if n else None,
        bees_predicted=sum(r.predicted == NEW_CLASS for r in answered) / n if n else None,
    )


def load_stream(folder: Path, seed: int = 0) -> list[tuple[str, bytes]]:
    """(label, PNG bytes) for every image of a labelled folder (a subfolder per class), shuffled."""
    items = [(p.parent.name, p.read_bytes()) for p in sorted(folder.glob("*/*.png"))]
    if not items:
        raise ValueError(f"{folder}: no labelled PNG images (expected {folder}/<class>/*.png)")
    random.Random(seed).shuffle(items)
    return items


def v2_body(png: bytes) -> bytes:
    tensor = {"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(png).decode()]}
    return json.dumps({"inputs": [tensor]}).encode()


def answer(doc: dict[str, Any]) -> str:
    """The predicted class of a one-image v2 answer; ValueError for anything else."""
    for out in doc.get("outputs") or []:
        if out.get("name") == "class" and out.get("data"):
            return str(out["data"][0])
    raise ValueError(f"no 'class' output in {str(doc)[:200]}")


class Endpoints:
    """The Service's ready endpoints, from a watch on its EndpointSlices. Thread-safe."""

    def __init__(self, api: client.ApiClient, namespace: str, service: str) -> None:
        self.discovery, self.core = client.DiscoveryV1Api(api), client.CoreV1Api(api)
        self.namespace, self.service = namespace, service
        self.lock = threading.Lock()
        self.slices: dict[str, list[tuple[str, str]]] = {}  # slice -> [(ip, pod)] ready
        self.images: dict[str, str] = {}  # pod -> its container image
        self.turn = 0
        self.changed: Callable[[list[tuple[str, str, str]]], None] = lambda _: None

    def ready(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return sorted((ip, pod, self.images.get(pod, "?")) for eps in self.slices.values() for ip, pod in eps)

    def next(self) -> tuple[str, str, str] | None:
        eps = self.ready()
        if not eps:
            return None
        with self.lock:
            self.turn += 1
            return eps[self.turn % len(eps)]

    def _image(self, pod: str) -> str:
        try:
            spec = self.core.read_namespaced_pod(pod, self.namespace).spec
            return str(spec.containers[0].image) if spec else "?"
        except ApiException:
            return "?"

    def on_slice(self, kind: str, obj: Any) -> None:
        name = obj.metadata.name
        eps: list[tuple[str, str]] = []
        for ep in obj.endpoints or []:
            cond = ep.conditions
            if cond is None or cond.ready is not True or (cond.terminating is True) or not ep.target_ref:
                continue
            eps += [(addr, ep.target_ref.name) for addr in ep.addresses]
        for _, pod in eps:
            if pod not in self.images:
                self.images[pod] = self._image(pod)
        with self.lock:
            before = sorted(x for v in self.slices.values() for x in v)
            if kind == "DELETED":
                self.slices.pop(name, None)
            else:
                self.slices[name] = eps
            after = sorted(x for v in self.slices.values() for x in v)
        if before != after:
            self.changed(self.ready())

    def follow(self, stop: threading.Event) -> None:
        selector = f"kubernetes.io/service-name={self.service}"
        while not stop.is_set():
            try:
                for event in watch.Watch().stream(self.discovery.list_namespaced_endpoint_slice, self.namespace,
                                                  label_selector=selector, timeout_seconds=20):
                    self.on_slice(event["type"], event["object"])
                    if stop.is_set():
                        return
            except Exception as exc:  # the API went away for a moment: watch again
                log.warning("EndpointSlice watch restarted: %s", exc)
                stop.wait(0.5)


class LoadGen:
    """Sends ``rate`` requests a second from the current stream; keeps every result."""

    def __init__(self, endpoints: Endpoints, model: str, streams: dict[str, list[tuple[str, bytes]]],
                 rate: float, timeout: float, say: Callable[[str], None]) -> None:
        self.endpoints, self.model, self.streams = endpoints, model, streams
        self.rate, self.timeout, self.say = rate, timeout, say
        self.stream = next(iter(streams))
        self.results: list[Result] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="request")
        self.cursor: dict[str, int] = dict.fromkeys(streams, 0)
        self.last_print = 0.0
        endpoints.changed = self._endpoints_changed

    def _endpoints_changed(self, eps: list[tuple[str, str, str]]) -> None:
        self.say("traffic: ready endpoints now " + (", ".join(f"{ip} ({pod}, {img.rsplit('/', 1)[-1][:40]})"
                                                            for ip, pod, img in eps) or "none"))

    def switch(self, stream: str) -> None:
        if stream not in self.streams:
            raise ValueError(f"stream {stream!r}: expected one of {', '.join(self.streams)}")
        self.stream = stream
        self.say(f"traffic: now sending production images from '{stream}' ({len(self.streams[stream])} images, "
                 f"{self.rate:g} requests/s)")

    def start(self) -> None:
        threading.Thread(target=self.endpoints.follow, args=(self.stop,), daemon=True).start()
        threading.Thread(target=self._pace, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=False)

    def _pace(self) -> None:
        period, due = 1.0 / self.rate, time.monotonic()
        while not self.stop.is_set():
            due += period
            stream = self.stream
            items = self.streams[stream]
            label, png = items[self.cursor[stream] % len(items)]
            self.cursor[stream] += 1
            target = self.endpoints.next()
            if target is not None:  # no ready endpoint: nothing to send to (before the first pod is ready)
                self.pool.submit(self._send, stream, target, label, png)
            if time.monotonic() - self.last_print >= 10:
                self.last_print = time.monotonic()
                self.say("traffic: last 10 s: " + stats(self.since(time.time() - 10)).line() + f" ('{stream}')")
            self.stop.wait(max(0.0, due - time.monotonic()))

    def _send(self, stream: str, target: tuple[str, str, str], label: str, png: bytes) -> None:
        ip, pod, image = target
        start, t0 = time.time(), time.monotonic()
        predicted, error = None, ""
        conn = http.client.HTTPConnection(ip, 8080, timeout=self.timeout)
        try:
            conn.request("POST", f"/v2/models/{self.model}/infer", v2_body(png),
                         {"Content-Type": "application/json", "Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                error = f"HTTP {resp.status}: {body[:200].decode(errors='replace')}"
            else:
                predicted = answer(json.loads(body))
        except (OSError, ValueError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            conn.close()
        result = Result(start, stream, ip, pod, image, label, predicted, error, time.monotonic() - t0)
        if error:
            self.say(f"traffic: request to {ip} ({pod}) FAILED: {error}")
        with self.lock:
            self.results.append(result)

    def since(self, t: float, until: float | None = None) -> list[Result]:
        with self.lock:
            return [r for r in self.results if r.time >= t and (until is None or r.time < until)]

    def write(self, path: Path) -> None:
        with self.lock, path.open("w") as fh:
            for r in self.results:
                fh.write(json.dumps(asdict(r)) + "\n")

"""Traffic capture: a sample of the server's inputs, with the prediction, to a time-partitioned folder.

The request path only draws a random number and puts the sample on a bounded queue
(``put_nowait``); one background thread encodes and writes. A full queue drops the sample and a
failed write drops it too, both counted in ``modelfreshness_serving_capture_dropped_samples_total``:
a slow or failing sink never blocks or fails a request. A crash loses at most the samples in the
queue (``FRESHNESS_CAPTURE_QUEUE``) plus the one being written; a clean stop drains the queue for up
to ``drain_seconds``. Layout: ``freshness_trainer.partitions`` (image + ``.json`` sidecar).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
from PIL import Image

from freshness_trainer import partitions
from freshness_trainer.serve import metrics
from freshness_trainer.serve.inputs import Original

log = logging.getLogger("kserve.freshness.capture")


@dataclass(frozen=True)
class Sample:
    original: Original
    prediction: dict[str, Any]
    when: datetime


class CaptureWriter:
    """Samples inputs at ``rate`` into ``uri``; ``offer`` never blocks. Touches the filesystem (its thread)."""

    def __init__(self, uri: str, rate: float, queue_size: int, model: str, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), drain_seconds: float = 5.0) -> None:
        self.uri = uri.rstrip("/")
        self.rate = rate
        self.model = model
        self.clock = clock
        self.drain_seconds = drain_seconds
        self._queue: queue.Queue[Sample | None] = queue.Queue(maxsize=queue_size)
        self._random = random.Random()
        self._fs, self._root = fsspec.core.url_to_fs(self.uri)
        self._local = "file" in (self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,))
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._last_error_log = 0.0
        for reason in ("queue_full", "write_error"):
            metrics.DROPPED.labels(model, reason)
        metrics.CAPTURED.labels(model)

    def start(self) -> None:
        self._thread.start()
        log.info("capturing %.0f%% of inputs to %s (queue of %d)", self.rate * 100, self.uri, self._queue.maxsize)

    def offer(self, original: Original, prediction: dict[str, Any]) -> None:
        """Maybe queue one input for capture; called on the request path, never raises or waits."""
        if self.rate <= 0 or (self.rate < 1 and self._random.random() >= self.rate):
            return
        try:
            self._queue.put_nowait(Sample(original, prediction, self.clock()))
        except queue.Full:
            metrics.DROPPED.labels(self.model, "queue_full").inc()
        metrics.QUEUE.labels(self.model).set(self._queue.qsize())

    def close(self) -> None:
        """Stop after writing what is queued, waiting at most ``drain_seconds``."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=self.drain_seconds)
        self._thread.join(self.drain_seconds)

    def _run(self) -> None:
        while True:
            sample = self._queue.get()
            metrics.QUEUE.labels(self.model).set(self._queue.qsize())
            if sample is None:
                return
            try:
                self._write(sample)
                metrics.CAPTURED.labels(self.model).inc()
            except Exception as exc:  # any sink failure: count it, keep serving
                metrics.DROPPED.labels(self.model, "write_error").inc()
                now = time.monotonic()
                if now - self._last_error_log > 60:  # one line a minute, not one per sample
                    self._last_error_log = now
                    log.error("cannot write a captured sample to %s: %s: %s", self.uri, type(exc).__name__, exc)

    def _write(self, sample: Sample) -> None:
        o = sample.original
        if o.pixels is not None:
            buf = io.BytesIO()
            Image.fromarray(o.pixels).save(buf, format="PNG")
            body, suffix = buf.getvalue(), ".png"
        else:
            body, suffix = o.encoded, o.suffix
        path = partitions.sample_path(self._root, sample.when, uuid.uuid4().hex[:12], suffix)
        sidecar = {"time": sample.when.isoformat().replace("+00:00", "Z"), "model": self.model, **sample.prediction}
        stem = path.rsplit(".", 1)[0]
        self._put(stem + ".json", json.dumps(sidecar, sort_keys=True).encode())
        self._put(path, body)  # the image last: a listed image always has its sidecar

    def _put(self, path: str, body: bytes) -> None:
        if not self._local:
            self._fs.pipe_file(path, body)  # object stores make a PUT visible whole
            return
        folder, name = path.rsplit("/", 1)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{folder}/.{name}.tmp"  # readers skip names without a timestamp prefix
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, path)

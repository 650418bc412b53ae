"""The ``kserve.Model`` serving one model file: load + warm-up, preprocess, predict, postprocess.

``load`` never raises: a model that cannot be loaded or fails its warm-up prediction leaves
``ready`` false and ``reason`` set (and logged), so the readiness probe fails and the process stays
up. Inference is ``engine.predict``, the trainer's own, on one model thread; decoding runs on the
server's thread pool so health checks stay answered under load.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from freshness_trainer import engine
from freshness_trainer import model as model_file
from freshness_trainer.serve import inputs, metrics
from freshness_trainer.serve.capture import CaptureWriter
from freshness_trainer.serve.settings import Settings

# A child of KServe's logger: same handler and format as the server's own lines.
log = logging.getLogger("kserve.freshness")


@dataclass(frozen=True)
class Prepared:
    batch: inputs.Batch
    v2: bool
    request_id: str


@dataclass(frozen=True)
class Scored:
    prepared: Prepared
    probabilities: np.ndarray
    """(N, C) float32 softmax, in the model's class order."""


class FreshnessModel(Model):
    def __init__(self, settings: Settings, capture: CaptureWriter | None = None) -> None:
        super().__init__(settings.model_name)
        self.settings = settings
        self.capture = capture
        self.reason = "not loaded yet"
        self.ckpt: model_file.Checkpoint | None = None
        self.engine_settings = engine.DeviceOptions.for_device(settings.device)
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        metrics.MODEL_READY.labels(self.name).set(0)

    # -- lifecycle -------------------------------------------------------------------------------
    def load(self) -> bool:
        """Load the model file and run one warm-up prediction; never raises."""
        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        try:
            ckpt = model_file.load(self.settings.model_path)
            ckpt.model.to(self.engine_settings.device)
            probe = torch.zeros(1, 3, ckpt.image_size, ckpt.image_size, dtype=torch.uint8)
            logits = engine.predict(ckpt.model, probe, batch_size=1, settings=self.engine_settings)
            if tuple(logits.shape) != (1, len(ckpt.classes)) or not torch.isfinite(logits).all():
                raise ValueError(f"warm-up prediction gave {tuple(logits.shape)} logits "
                                 f"for {len(ckpt.classes)} classes")
        except Exception as exc:  # whatever the file holds, the answer is "not ready", with the reason
            self.ready, self.ckpt = False, None
            self.reason = f"{type(exc).__name__}: {exc}"
            log.error("model %s is NOT ready: cannot serve %s: %s", self.name, self.settings.model_path, self.reason)
            return False
        self.ckpt, self.ready, self.reason = ckpt, True, ""
        metrics.MODEL_READY.labels(self.name).set(1)
        log.info("model %s ready: %s, classes %s, input %dx%d, %d torch threads", self.name,
                 self.settings.model_path, ckpt.classes, ckpt.image_size, ckpt.image_size, torch.get_num_threads())
        return True

    def stop(self) -> None:
        self.ready = False
        metrics.MODEL_READY.labels(self.name).set(0)
        if self.capture is not None:
            self.capture.close()
        self._model_thread.shutdown(wait=False)

    def get_input_types(self) -> list[dict[str, Any]]:
        """What ``GET /v2/models/<name>`` lists: encoded images, or channels-first pixel tensors."""
        s = self.ckpt.image_size if self.ckpt else -1
        return [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                {"name": "pixels", "datatype": "UINT8", "shape": [-1, 3, s, s]},
                {"name": "pixels", "datatype": "FP32", "shape": [-1, 3, s, s]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        n = len(self.ckpt.classes) if self.ckpt else -1
        return [{"name": "class", "datatype": "BYTES", "shape": [-1]},
                {"name": "confidence", "datatype": "FP32", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]}]

    # -- the request path ------------------------------------------------------------------------
    async def __call__(self, body: Any, headers: dict[str, str] | None = None, *args: Any, **kw: Any) -> Any:
        start, outcome = time.perf_counter(), "error"
        try:
            result = await super().__call__(body, headers, *args, **kw)
            outcome = "ok"
            return result
        except InvalidInput:
            outcome = "bad_request"
            raise
        finally:
            metrics.REQUESTS.labels(self.name, outcome).inc()
            metrics.REQUEST_SECONDS.labels(self.name, outcome).observe(time.perf_counter() - start)

    def _limits(self) -> inputs.Limits:
        assert self.ckpt is not None
        s = self.settings
        return inputs.Limits(self.ckpt.image_size, s.max_batch, s.max_image_pixels)

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self._prepare, payload)
        except inputs.BadInput as exc:
            raise InvalidInput(str(exc)) from None

    def _prepare(self, payload: Any) -> Prepared:
        limits = self._limits()
        if isinstance(payload, InferRequest):
            if len(payload.inputs) != 1:
                raise inputs.BadInput(f"expected exactly one input tensor, got {len(payload.inputs)}")
            inp = payload.inputs[0]
            if inp.datatype not in ("BYTES", "UINT8", "FP32"):
                raise inputs.BadInput(f"input {inp.name!r} has datatype {inp.datatype}; expected BYTES, UINT8 or FP32")
            try:
                values = inp.as_numpy()
            except OverflowError:
                raise inputs.BadInput(f"input {inp.name!r}: values out of range for {inp.datatype}") from None
            except (ValueError, TypeError):
                raise inputs.BadInput(f"input {inp.name!r}: data does not fit shape {list(inp.shape)}") from None
            batch = inputs.from_v2(inp.name, inp.datatype, inp.shape, values, limits)
            return Prepared(batch, True, payload.id or uuid.uuid4().hex)
        if isinstance(payload, bytes | bytearray):  # v1 with a non-JSON content type: one encoded image
            return Prepared(inputs.from_encoded([bytes(payload)], limits), False, "")
        return Prepared(inputs.from_v1(payload, limits), False, "")

    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        assert isinstance(payload, Prepared) and self.ckpt is not None
        loop = asyncio.get_running_loop()
        probs = await loop.run_in_executor(self._model_thread, self._forward, payload.batch.images)
        return Scored(payload, probs)

    def _forward(self, images: torch.Tensor) -> np.ndarray:
        assert self.ckpt is not None
        logits = engine.predict(self.ckpt.model, images, batch_size=self.settings.max_batch,
                                settings=self.engine_settings)
        return torch.softmax(logits, dim=1).numpy()

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None,
                          response_headers: dict[str, str] | None = None) -> Any:
        assert isinstance(result, Scored) and self.ckpt is not None
        classes = self.ckpt.classes
        probs = result.probabilities
        top = probs.argmax(axis=1)
        names = [classes[i] for i in top]
        confidence = probs[np.arange(len(top)), top]
        for i, (name, conf) in enumerate(zip(names, confidence, strict=True)):
            metrics.PREDICTIONS.labels(self.name, name).inc()
            metrics.CONFIDENCE.labels(self.name).observe(float(conf))
            if self.capture is not None:
                self.capture.offer(result.prepared.batch.originals[i], {
                    "class": name, "confidence": round(float(conf), 6),
                    "probabilities": {c: round(float(p), 6) for c, p in zip(classes, probs[i], strict=True)},
                })
        if not result.prepared.v2:
            return {"predictions": [
                {"class": n, "confidence": float(c), "probabilities": dict(zip(classes, map(float, p), strict=True))}
                for n, c, p in zip(names, confidence, probs, strict=True)
            ]}
        outputs = [
            InferOutput("class", [len(names)], "BYTES", np.array(names, dtype=object)),
            InferOutput("confidence", [len(names)], "FP32", confidence.astype(np.float32)),
            InferOutput("probabilities", list(probs.shape), "FP32", probs.astype(np.float32)),
        ]
        return InferResponse(result.prepared.request_id, self.name, outputs,
                             parameters={"classes": ",".join(classes)})

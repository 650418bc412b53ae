"""The serving container's configuration: environment -> validated ``Settings`` at start-up (pure)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MODEL_PATH = "/model/model.pt"
"""Where ``freshness-trainer package`` puts the model in the image (freshness_trainer.oci)."""


class SettingsError(ValueError):
    """A variable with a value the server cannot use; the message names it and what is allowed."""


@dataclass(frozen=True)
class Settings:
    model_path: str = DEFAULT_MODEL_PATH
    """MODEL_PATH: the model file (local path or fsspec URI)."""
    model_name: str = "model"
    """MODEL_NAME: the name in the URLs (``/v2/models/<name>/infer``)."""
    http_port: int = 8080
    """HTTP_PORT."""
    grpc_port: int = 8081
    """GRPC_PORT; 0 turns the gRPC endpoint off."""
    max_request_bytes: int = 16 * 1024 * 1024
    """FRESHNESS_MAX_REQUEST_BYTES: larger request bodies get 413."""
    max_batch: int = 64
    """FRESHNESS_MAX_BATCH: more images in one request get 400."""
    max_image_pixels: int = 40_000_000
    """FRESHNESS_MAX_IMAGE_PIXELS: a larger encoded image (width x height) gets 400 before decoding."""
    capture_uri: str = ""
    """FRESHNESS_CAPTURE_URI: where sampled inputs go (path or fsspec URI); empty: no capture."""
    capture_rate: float = 0.0
    """FRESHNESS_CAPTURE_RATE: the share of inputs captured, 0 to 1."""
    capture_queue: int = 256
    """FRESHNESS_CAPTURE_QUEUE: samples waiting to be written; more are dropped (and counted)."""
    device: str = "cpu"
    """FRESHNESS_DEVICE: cpu or cuda."""
    torch_threads: int = 0
    """FRESHNESS_TORCH_THREADS: torch's intra-op threads; 0 keeps torch's default, the host's core
    count, which oversubscribes a pod whose CPU limit is smaller: set it to the limit."""


def _int(env: Mapping[str, str], key: str, default: int, low: int) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r}: expected a whole number >= {low}") from None
    if value < low:
        raise SettingsError(f"{key}={raw!r}: expected a whole number >= {low}")
    return value


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; SettingsError names the first bad variable."""
    env = os.environ if env is None else env
    raw_rate = env.get("FRESHNESS_CAPTURE_RATE", "")
    try:
        rate = float(raw_rate) if raw_rate else (1.0 if env.get("FRESHNESS_CAPTURE_URI") else 0.0)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SettingsError(f"FRESHNESS_CAPTURE_RATE={raw_rate!r}: expected a number from 0 to 1")
    device = env.get("FRESHNESS_DEVICE", "cpu")
    if device not in ("cpu", "cuda"):
        raise SettingsError(f"FRESHNESS_DEVICE={device!r}: expected cpu or cuda")
    name = env.get("MODEL_NAME", "model")
    if not name or "/" in name:
        raise SettingsError(f"MODEL_NAME={name!r}: expected a non-empty name without '/'")
    return Settings(
        model_path=env.get("MODEL_PATH", DEFAULT_MODEL_PATH),
        model_name=name,
        http_port=_int(env, "HTTP_PORT", 8080, 1),
        grpc_port=_int(env, "GRPC_PORT", 8081, 0),
        max_request_bytes=_int(env, "FRESHNESS_MAX_REQUEST_BYTES", 16 * 1024 * 1024, 1024),
        max_batch=_int(env, "FRESHNESS_MAX_BATCH", 64, 1),
        max_image_pixels=_int(env, "FRESHNESS_MAX_IMAGE_PIXELS", 40_000_000, 1),
        capture_uri=env.get("FRESHNESS_CAPTURE_URI", ""),
        capture_rate=rate,
        capture_queue=_int(env, "FRESHNESS_CAPTURE_QUEUE", 256, 1),
        device=device,
        torch_threads=_int(env, "FRESHNESS_TORCH_THREADS", 0, 0),
    )

"""``freshness-serve``: KServe's ModelServer on one model file, configured by the environment.

Two changes to the stock server, both for Kubernetes probes and for safety:
``/v2/health/ready`` is ready only when every model is (KServe answers ready as soon as the
process listens), and request bodies over ``FRESHNESS_MAX_REQUEST_BYTES`` get 413 before any
handler reads them. The process keeps running when the model cannot load, so a Deployment's
readiness probe fails (and a rollout fails and rolls back) instead of the pod crash-looping.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from freshness_trainer.serve import settings as settings_mod

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes`` (by Content-Length, or counted when chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, int(length))
            return
        # Read the body here (bounded), then replay it: a chunked body cannot outgrow the limit either.
        messages, total = [], 0
        while True:
            msg = await receive()
            messages.append(msg)
            total += len(msg.get("body", b""))
            if total > self.max_bytes:
                await self._refuse(send, total)
                return
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        body = json.dumps({"error": f"request body of {size} bytes is larger than the limit of {self.max_bytes} "
                                    "bytes (FRESHNESS_MAX_REQUEST_BYTES)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    # One argument, as KServe's ServingRuntimes pass it (``--model_name={{.Name}}``); all else is env.
    parser = argparse.ArgumentParser(prog="freshness-serve", description=__doc__.splitlines()[0])
    parser.add_argument("--model_name", help="the model's name in the URLs (overrides MODEL_NAME)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    if args.model_name:
        env["MODEL_NAME"] = args.model_name
    try:
        cfg = settings_mod.from_env(env)
    except settings_mod.SettingsError as exc:
        print(f"freshness-serve: {exc}", file=sys.stderr)
        return 2
    # kserve's model_server module parses sys.argv when imported; it must see no arguments of ours.
    sys.argv = sys.argv[:1]
    from kserve import ModelServer
    from kserve.model_server import app
    from kserve.protocol.dataplane import DataPlane

    from freshness_trainer.serve.capture import CaptureWriter
    from freshness_trainer.serve.predictor import FreshnessModel

    class ReadyWhenModelsAre(DataPlane):
        async def ready(self) -> bool:
            models = list(self.model_registry.get_models().values())
            return bool(models) and all([await m.healthy() for m in models])

    writer = None
    if cfg.capture_uri and cfg.capture_rate > 0:
        writer = CaptureWriter(cfg.capture_uri, cfg.capture_rate, cfg.capture_queue, cfg.model_name)
    # The server first: it configures the logging that the model's load reports through.
    server = ModelServer(http_port=cfg.http_port, grpc_port=cfg.grpc_port or 8081, enable_grpc=cfg.grpc_port > 0,
                         workers=1, enable_latency_logging=False)
    model = FreshnessModel(cfg, writer)
    model.load()
    server.dataplane = ReadyWhenModelsAre(model_registry=server.registered_models)
    app.add_middleware(BodyLimit, max_bytes=cfg.max_request_bytes)
    # Registered even when not ready: ModelServer.start() would refuse to start, and would mark it ready.
    server.register_model(model)
    if writer is not None:
        writer.start()
    server.start([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

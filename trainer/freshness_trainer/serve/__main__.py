"""``freshness-serve``: KServe's ModelServer on one model file, configured by the environment.

Two changes to the stock server, for Kubernetes probes and for safety:
``/v2/health/ready`` is ready only when every model is (KServe answers ready as soon as the
process listens), and every request passes ``guard.RequestGuard`` (body size limit, binary
BYTES). The process keeps running when the model cannot load, so a Deployment's readiness probe
fails (and a rollout fails and rolls back) instead of the pod crash-looping.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from freshness_trainer.serve import settings as settings_mod
from freshness_trainer.serve.guard import RequestGuard


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
    # KServe's timing middleware logs two lines per request at INFO; the latency histogram has them.
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)
    model = FreshnessModel(cfg, writer)
    model.load()
    server.dataplane = ReadyWhenModelsAre(model_registry=server.registered_models)
    app.add_middleware(RequestGuard, max_bytes=cfg.max_request_bytes)
    # Registered even when not ready: ModelServer.start() would refuse to start, and would mark it ready.
    server.register_model(model)
    if writer is not None:
        writer.start()
    server.start([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

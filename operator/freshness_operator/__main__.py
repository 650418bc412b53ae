"""``freshness-operator`` / ``python -m freshness_operator``: settings from the environment, then kopf."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import kopf

from freshness_operator.metrics import Metrics
from freshness_operator.settings import Settings, SettingsError


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("FRESHNESS_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kopf logs every handled watch event at INFO and aiohttp every probe; ours say what happened.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"freshness-operator: {exc}", file=sys.stderr)
        return 2
    from freshness_operator import handlers  # noqa: F401  (registers the kopf handlers)

    metrics = Metrics()
    metrics.serve(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    asyncio.run(
        kopf.operator(
            standalone=settings.standalone,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            liveness_endpoint=liveness,
            memo=kopf.Memo(settings=settings, metrics=metrics),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

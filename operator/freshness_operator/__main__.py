"""``freshness-operator`` / ``python -m freshness_operator``: settings from the environment, then kopf.

Exit status: 0 after --help/--version or a clean stop, 2 for a bad argument or setting (the
message names it), 1 when the operator fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata

import kopf

from freshness_operator.metrics import Metrics
from freshness_operator.settings import Settings, SettingsError

ENVIRONMENT = """\
environment (validated at start; a bad value exits with status 2):
  FRESHNESS_NAMESPACES     namespaces to watch, comma-separated, kopf globs allowed (default: all)
  FRESHNESS_METRICS_PORT   Prometheus /metrics port, 0 turns it off (default 9090)
  FRESHNESS_HEALTH_PORT    /healthz port, 0 turns it off (default 8080)
  FRESHNESS_TRAINER_IMAGE  step image when a spec sets no training.image
  FRESHNESS_STANDALONE     true: one replica without kopf peering (default true)
  FRESHNESS_LOG_LEVEL      DEBUG, INFO, WARNING or ERROR (default INFO)
  FRESHNESS_LEADER_ELECTION true: act only while holding a coordination.k8s.io Lease, so several
                           replicas run with one active (default false: act from the start)
  FRESHNESS_LEASE_NAME     the Lease's name (default model-freshness-operator)
  FRESHNESS_LEASE_NAMESPACE its namespace (default: the pod's own)
  FRESHNESS_LEADER_IDENTITY this replica's name in the Lease (default: hostname_random)
  FRESHNESS_LEASE_DURATION, FRESHNESS_RENEW_DEADLINE, FRESHNESS_RETRY_PERIOD
                           seconds (default 15, 10, 2): a standby takes over LEASE_DURATION after the
                           leader's last renew; a leader stops acting RENEW_DEADLINE after it
"""


def version() -> str:
    try:
        return metadata.version("model-freshness")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="freshness-operator",
        description="Kubernetes operator that keeps the models of ModelDeployments fresh.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    return parser.parse_args(argv)  # --help/--version exit 0, unknown arguments exit 2


def main(argv: Sequence[str] | None = None) -> int:
    parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"freshness-operator: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handled watch event at INFO and aiohttp every probe; ours say what happened.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from freshness_operator import (
        handlers,  # noqa: F401  (registers the kopf handlers)
        readiness,
    )

    readiness.patch()  # kopf's wait for its indexes is quadratic in the objects watched

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

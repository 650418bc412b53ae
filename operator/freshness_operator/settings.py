"""Operator settings: read from the environment once at start-up, validated, then passed down."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from freshness_operator.leader import Timing, TimingError

DEFAULT_TRAINER_IMAGE = "freshness-trainer:0.1.0"
DEFAULT_LEASE_NAME = "model-freshness-operator"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
TIMING_ENV = {
    "lease_duration": "FRESHNESS_LEASE_DURATION",
    "renew_deadline": "FRESHNESS_RENEW_DEADLINE",
    "retry_period": "FRESHNESS_RETRY_PERIOD",
}


class SettingsError(ValueError):
    """An environment variable with a value the operator cannot start with."""


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """FRESHNESS_NAMESPACES: namespaces (kopf globs allowed) to watch; empty means all namespaces."""

    metrics_port: int = 9090
    """FRESHNESS_METRICS_PORT: Prometheus metrics on ``/metrics``."""

    health_port: int = 8080
    """FRESHNESS_HEALTH_PORT: liveness on ``/healthz``."""

    trainer_image: str = DEFAULT_TRAINER_IMAGE
    """FRESHNESS_TRAINER_IMAGE: image of the step Jobs when a spec sets no training.image."""

    standalone: bool = True
    """FRESHNESS_STANDALONE: one replica without kopf peering (false needs the peering CRDs)."""

    log_level: str = "INFO"
    """FRESHNESS_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR."""

    leader_election: bool = False
    """FRESHNESS_LEADER_ELECTION: act only while holding a Lease (several replicas, one active)."""

    lease_name: str = DEFAULT_LEASE_NAME
    """FRESHNESS_LEASE_NAME: the coordination.k8s.io/v1 Lease the replicas compete for."""

    lease_namespace: str = ""
    """FRESHNESS_LEASE_NAMESPACE: its namespace (default: the pod's own, from the service account)."""

    leader_identity: str = ""
    """FRESHNESS_LEADER_IDENTITY: this replica's name in the Lease (default: hostname_random)."""

    timing: Timing = field(default_factory=Timing)
    """FRESHNESS_LEASE_DURATION, FRESHNESS_RENEW_DEADLINE, FRESHNESS_RETRY_PERIOD (seconds, 15/10/2)."""

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @classmethod
    def from_env(cls, env: Mapping[str, str], namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE) -> Settings:
        election = _bool(env, "FRESHNESS_LEADER_ELECTION", False)
        lease_namespace = env.get("FRESHNESS_LEASE_NAMESPACE", "").strip()
        if election and not lease_namespace:
            if not namespace_file.is_file():
                raise SettingsError(
                    "FRESHNESS_LEASE_NAMESPACE is empty and the operator runs outside a pod "
                    f"({namespace_file} is missing): name the namespace of the leader Lease"
                )
            lease_namespace = namespace_file.read_text().strip()
        identity = env.get("FRESHNESS_LEADER_IDENTITY", "").strip()
        namespaces = tuple(n.strip() for n in env.get("FRESHNESS_NAMESPACES", "").split(",") if n.strip())
        return cls(
            namespaces=namespaces,
            metrics_port=_port(env, "FRESHNESS_METRICS_PORT", 9090),
            health_port=_port(env, "FRESHNESS_HEALTH_PORT", 8080),
            trainer_image=env.get("FRESHNESS_TRAINER_IMAGE", "").strip() or DEFAULT_TRAINER_IMAGE,
            standalone=_bool(env, "FRESHNESS_STANDALONE", True),
            log_level=_log_level(env),
            leader_election=election,
            lease_name=env.get("FRESHNESS_LEASE_NAME", "").strip() or DEFAULT_LEASE_NAME,
            lease_namespace=lease_namespace,
            leader_identity=identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
            timing=_timing(env),
        )


def _timing(env: Mapping[str, str]) -> Timing:
    values: dict[str, float] = {}
    for name, key in TIMING_ENV.items():
        text = env.get(key, "").strip()
        if not text:
            continue
        try:
            values[name] = float(text)
        except ValueError:
            raise SettingsError(f"{key}={text!r}: expected a number of seconds") from None
    try:
        return Timing(**values)
    except TimingError as exc:
        message = str(exc)
        for name, key in TIMING_ENV.items():
            message = message.replace(name, key)
        raise SettingsError(message) from exc


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    text = env.get(key, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise SettingsError(f"{key}={text!r}: expected a port number 0-65535 (0 turns the server off)")
    return int(text)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(env: Mapping[str, str]) -> str:
    text = env.get("FRESHNESS_LOG_LEVEL", "").strip().upper() or "INFO"
    if text not in LOG_LEVELS:
        raise SettingsError(f"FRESHNESS_LOG_LEVEL={text!r}: expected one of {', '.join(LOG_LEVELS)}")
    return text


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    text = env.get(key, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{key}={text!r}: expected true or false")

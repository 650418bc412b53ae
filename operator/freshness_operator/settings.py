"""Operator settings: read from the environment once at start-up, validated, then passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_TRAINER_IMAGE = "freshness-trainer:0.1.0"


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

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        namespaces = tuple(n.strip() for n in env.get("FRESHNESS_NAMESPACES", "").split(",") if n.strip())
        return cls(
            namespaces=namespaces,
            metrics_port=_port(env, "FRESHNESS_METRICS_PORT", 9090),
            health_port=_port(env, "FRESHNESS_HEALTH_PORT", 8080),
            trainer_image=env.get("FRESHNESS_TRAINER_IMAGE", "").strip() or DEFAULT_TRAINER_IMAGE,
            standalone=_bool(env, "FRESHNESS_STANDALONE", True),
            log_level=_log_level(env),
        )


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

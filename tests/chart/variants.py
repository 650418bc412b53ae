"""Value sets the render-level tests run over: the defaults and the shapes users pick."""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watch": {"mode": "namespaces", "namespaces": ["team-a", "team-b"]}},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kps"}, "modelMaxAgeSeconds": 86400},
        "grafanaDashboard": {
            "enabled": True,
            "labels": {"release": "kps"},
            "annotations": {"grafana_folder": "Models"},
        },
    },
    "ha": {"replicas": 2, "leaderElection": {"leaseDuration": 20, "renewDeadline": 12, "retryPeriod": 3}},
    "custom": {
        "fullnameOverride": "freshness",
        "image": {"repository": "registry.example.com/op", "digest": "sha256:" + "a" * 64},
        "trainerImage": {"repository": "registry.example.com/trainer", "tag": "1.2.3"},
        "serviceAccount": {"name": "freshness-sa", "annotations": {"example.com/role": "x"}},
        "metricsPort": 9100,
        "healthPort": 8081,
        "extraEnv": [{"name": "LOG_LEVEL", "value": "debug"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
        "podAnnotations": {"example.com/a": "b"},
        "imagePullSecrets": [{"name": "regcred"}],
        "replicas": 0,
    },
}

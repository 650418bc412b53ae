"""Rendered manifests pass `kubernetes-validate --strict` against Kubernetes 1.34. No cluster.

monitoring.coreos.com objects (ServiceMonitor, PrometheusRule) are left out: kubernetes-validate has
schemas for built-in kinds only. Their content is checked elsewhere: the PrometheusRule's groups by
`promtool check rules` (test_alerts.py), the ServiceMonitor's fields in test_chart_render.py, and the
chart's crds/ file validates here as an apiextensions.k8s.io/v1 CustomResourceDefinition. The
"monitoring" variant enables the Grafana dashboard: its ConfigMap validates here too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart.tools import Helm, require_tool
from tests.chart.variants import VARIANTS

KUBERNETES_VERSION = "1.34"
NOT_BUILT_IN = ("monitoring.coreos.com/",)


@pytest.fixture(scope="module")
def kubernetes_validate() -> Path:
    return require_tool("kubernetes-validate", "install the dev extra: `pip install -e '.[dev]'`")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_strict_validation(helm: Helm, kubernetes_validate: Path, variant: str, tmp_path: Path) -> None:
    docs = helm.template(VARIANTS[variant], "--include-crds")
    built_in = [d for d in docs if not d["apiVersion"].startswith(NOT_BUILT_IN)]
    assert built_in
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(built_in))
    proc = subprocess.run(
        [str(kubernetes_validate), "--kubernetes-version", KUBERNETES_VERSION, "--strict", str(manifest)],
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = proc.stdout.count(" passed for resource ")
    assert passed == len(built_in), proc.stdout
    if VARIANTS[variant].get("grafanaDashboard", {}).get("enabled"):  # the dashboard ConfigMap is among them
        assert [d for d in built_in if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]

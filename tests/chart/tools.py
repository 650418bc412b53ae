"""Finding and running the chart's tools (helm, promtool, hadolint) for tests/chart.

Touches the filesystem and runs subprocesses; no Kubernetes API calls of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "model-freshness-operator"
CACHE_BIN = Path(os.environ.get("MODELFRESHNESS_CACHE", Path.home() / ".cache" / "modelfreshness")) / "bin"

Manifest = dict[str, Any]


def find_tool(name: str, extra: Iterable[Path] = ()) -> Path | None:
    """The first executable named `name`: $<NAME>, then `extra` candidates, then PATH, then the venv."""
    env = os.environ.get(name.upper())
    candidates = [Path(env)] if env else []
    candidates += list(extra)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(Path(sys.executable).parent / name)
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def require_tool(name: str, hint: str, extra: Iterable[Path] = ()) -> Path:
    """find_tool or stop the test: a skip on a laptop, a failure in CI (where setup installs them all)."""
    found = find_tool(name, extra)
    if found is None:
        message = f"{name} not found; {hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def helm_candidates() -> list[Path]:
    """Where hack/build-binaries.sh puts helm: bin/current first, then any fetched helm-npm-* copy."""
    return [CACHE_BIN / "current" / "helm", *sorted(CACHE_BIN.glob("helm-npm-*/helm"), reverse=True)]


# `helm template` offline knows only the built-in APIs; the chart refuses monitoring objects without these.
MONITORING_API = ("--api-versions", "monitoring.coreos.com/v1")


@dataclass
class Helm:
    """A helm binary plus the environment to run it in (KUBECONFIG for cluster tests)."""

    binary: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args], env=dict(self.env), text=True, capture_output=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def with_values(
        self, command: list[str], values: Mapping[str, Any] | None, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run `helm <command> -f <values as a file>`: a file keeps numbers typed, unlike --set."""
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="values-") as f:
            yaml.safe_dump(dict(values or {}), f)
            f.flush()
            return self.run(*command, "-f", f.name, check=check, timeout=timeout)

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *extra: str,
        release: str = "mf",
        namespace: str = "mf-system",
    ) -> list[Manifest]:
        """Render the chart and return its documents, parsed, as for a cluster with the Prometheus Operator."""
        command = ["template", release, str(CHART), "--namespace", namespace, *MONITORING_API, *extra]
        proc = self.with_values(command, values)
        return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: Iterable[Manifest], kind: str) -> Manifest:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())

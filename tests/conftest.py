"""Session fixtures shared by every test folder.

``demo_in_background``, ``kueue_build_in_background``: `make demo` from a fresh clone and the Kueue
build, running beside the suite when a selected test needs them (tests/background.py).

``cluster``: the real local control plane (hack/localcluster/), started once per session and
stopped at the end; or, with ``MODELFRESHNESS_USE_EXISTING_CLUSTER=1``, the cluster that
``KUBECONFIG`` names (binaries still come from hack/build-binaries.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from hack import kueue as kueue_mod
from hack import localcluster
from tests.background import Background
from tests.demo.background import TEST_NAME, DemoRun


def installed_locations(python: str = sys.executable) -> str:
    """Where ``python`` imports the project's packages from by itself (no PYTHONPATH, neutral cwd)."""
    code = "import freshness_operator as o, freshness_trainer as t; print(o.__file__, t.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [python, "-c", code], cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, timeout=120
    )
    return proc.stdout.strip() if proc.returncode == 0 else f"not importable: {proc.stderr.strip()[-300:]}"


@pytest.fixture(scope="session", autouse=True)
def environment_left_as_found() -> Iterator[None]:
    """The suite must leave the virtual environment as it found it (issue 19: the demo test's clone
    once reinstalled the package there in editable mode, so the venv imported from a temp folder)."""
    before = installed_locations()
    yield
    after = installed_locations()
    assert after == before, f"the tests changed where {sys.executable} imports the project from: {before} -> {after}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The demo's test runs last: the demo itself started with the session (``demo_in_background``),
    and the whole suite runs while it does; its test only waits for it and reads what it left."""
    items.sort(key=lambda item: item.name == TEST_NAME)  # stable: every other test keeps its place


@pytest.fixture(scope="session", autouse=True)
def demo_in_background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoRun | None]:
    """`make demo` from a fresh clone, started before the session's first test when the session
    selected tests/demo/test_demo.py's end-to-end test (which waits for it); None otherwise.
    Stopped at the end of the session if that test did not wait for it (deselected by -x, a crash)."""
    if not any(item.name == TEST_NAME for item in request.session.items):
        yield None
        return
    run = DemoRun.start(tmp_path_factory.mktemp("demo"))
    try:
        yield run
    finally:
        run.job.stop()


@pytest.fixture(scope="session", autouse=True)
def kueue_build_in_background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Background | None]:
    """``hack/build-binaries.sh kueue`` at nice 19, started before the session's first test when a
    selected test uses Kueue (tests/operator/test_kueue.py waits for it): a cold build compiles Kueue
    on CPU the suite leaves idle; a warm one only checks that the files exist. None otherwise."""
    if not any("kueue" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    argv = ["nice", "-n", "19", *kueue_mod.BUILD_ARGV]
    job = Background.start("kueue-build", argv, tmp_path_factory.mktemp("kueue-build"))
    try:
        yield job
    finally:
        job.stop()


@dataclass
class Cluster:
    """What cluster tests get: a kubeconfig, an environment for subprocesses and a kubectl helper."""

    kubeconfig: Path
    bin_dir: Path
    env: dict[str, str]
    log_dir: Path | None
    restart: Callable[[Sequence[str]], None] | None = None  # stop and start components (own control plane only)

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            env=self.env,
            input=input,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("MODELFRESHNESS_USE_EXISTING_CLUSTER") == "1":
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            pytest.fail("MODELFRESHNESS_USE_EXISTING_CLUSTER=1 needs KUBECONFIG to name the cluster")
        bin_dir = localcluster.build_binaries()
        env = dict(os.environ)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        yield Cluster(Path(kubeconfig), bin_dir, env, None)
        return
    state_dir = Path(tempfile.mkdtemp(prefix="mf-cluster-"))
    try:
        info = localcluster.up(state_dir)
    except localcluster.ClusterError as exc:
        pytest.fail(str(exc))
    try:
        yield Cluster(
            info.kubeconfig, info.bin_dir, info.env(), info.log_dir, lambda names: localcluster.restart(info, names)
        )
    finally:
        localcluster.down(state_dir, info)
    # /proc/<pid> also exists for a zombie: a process not waited for counts as left behind.
    left = [f"{name} (pid {pid})" for name, pid in info.pids.items() if Path(f"/proc/{pid}").exists()]
    assert not left, f"the local control plane left processes running: {', '.join(left)}"

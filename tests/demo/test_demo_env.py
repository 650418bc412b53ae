"""How the demo test runs a clone against the project's environment without changing it, and stops
it when it runs too long (fast)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from hack import localcluster
from testkit.wait import wait_for
from tests.background import Background
from tests.conftest import installed_locations, pytest_collection_modifyitems
from tests.demo.background import TEST_NAME

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_with_a_given_venv_installs_nothing_and_puts_the_checkout_first() -> None:
    out = subprocess.run(
        ["make", "-n", "-C", str(REPO), "demo", "VENV=/elsewhere/venv", "DEMO_ARGS=--x"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "pip install" not in out and ".installed-" not in out, out
    assert f"PYTHONPATH={REPO}/contract:{REPO}/operator:{REPO}/trainer:{REPO}" in out
    assert "/elsewhere/venv/bin/python -m hack.demo" in out


def test_without_a_venv_make_demo_still_sets_up_its_own() -> None:
    out = subprocess.run(
        ["make", "-n", "-C", str(REPO), "demo", "STAMP=.venv/.installed-never"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "pip install" in out  # uv pip install, or pip as its fallback


def test_a_clone_on_pythonpath_wins_over_the_installed_package(tmp_path: Path) -> None:
    # What `make demo VENV=...` relies on: the clone's code runs, the environment is not touched.
    fake = tmp_path / "clone" / "operator" / "freshness_operator"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("CLONE = True\n")
    env = {**os.environ, "PYTHONPATH": str(fake.parent)}
    code = "import freshness_operator as f; print(getattr(f, 'CLONE', False), f.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60).stdout
    assert out.split()[0] == "True" and str(fake) in out
    assert str(tmp_path) not in installed_locations()


def test_the_session_check_sees_an_install_from_elsewhere(tmp_path: Path) -> None:
    # tests/conftest.py compares installed_locations() before and after the suite; an editable
    # install from a clone (a .pth pointing elsewhere) must change what it reports.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=60)
    (site,) = (tmp_path / "venv" / "lib").glob("python3*/site-packages")
    python = str(tmp_path / "venv" / "bin" / "python")
    for where in ("checkout", "clone"):
        for package in ("freshness_operator", "freshness_trainer"):
            (tmp_path / where / package).mkdir(parents=True)
            (tmp_path / where / package / "__init__.py").write_text("")
    (site / "project.pth").write_text(str(tmp_path / "checkout") + "\n")
    before = installed_locations(python)
    (site / "project.pth").write_text(str(tmp_path / "clone") + "\n")  # what `pip install -e` in a clone did
    after = installed_locations(python)
    assert str(tmp_path / "checkout") in before and str(tmp_path / "clone") in after


def test_a_background_job_that_outlives_its_wait_is_stopped_with_its_whole_group(tmp_path: Path) -> None:
    # tests/background.py: the session's demo (and Kueue build) runs in its own process group; a wait
    # that runs out (or the session's end) stops the group, children included, and says so.
    pid_file = tmp_path / "child.pid"
    job = Background.start("job", ["sh", "-c", f"sleep 600 & echo $! > {pid_file}; echo started; wait"], tmp_path)
    wait_for("the child's pid", lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30)
    child = int(pid_file.read_text())
    rc, stdout, stderr = job.wait(timeout=1)
    assert rc == -1 and stdout == "started\n" and "job was still running after 1 s" in stderr, (rc, stdout, stderr)
    assert job.proc.poll() is not None
    wait_for("the group's child to be gone", lambda: not localcluster.alive(child), 10)


def test_the_demo_test_is_moved_last_and_the_others_keep_their_order() -> None:
    # Everything else runs while the session's demo does; its test only waits at the end.
    names = ["test_a", TEST_NAME, "test_b", "test_c"]
    items = [SimpleNamespace(name=n) for n in names]
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert [i.name for i in items] == ["test_a", "test_b", "test_c", TEST_NAME]

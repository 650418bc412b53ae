"""Fixtures of the trainer tests: a sample image set and a throw-away copy of the DVC project.

Everything is offline and on the CPU. The expensive fixtures are session-scoped: the sample set
is written once, and the project copy runs ``dvc exp run`` once (the 2-class "cats/dogs" model
that the drift tests use as the serving model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What a fresh clone of the example project holds (the trainer's part of the repository).
PROJECT_FILES = ("params.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore", "pyproject.toml")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "freshness-tests", "GIT_AUTHOR_EMAIL": "tests@modelfreshness.invalid",
    "GIT_COMMITTER_NAME": "freshness-tests", "GIT_COMMITTER_EMAIL": "tests@modelfreshness.invalid",
}


def tool_env() -> dict[str, str]:
    """Environment for git/DVC/CLI subprocesses: this interpreter's bin first, a git identity, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_IDENTITY)
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("FRESHNESS_RESULT_PATH", None)
    return env


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=tool_env(), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CLI calls shell out to git/DVC too; give them the same environment."""
    for k, v in tool_env().items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample set as ``freshness-trainer make-sample-data`` writes it (small sizes)."""
    from freshness_trainer import sampledata

    out = tmp_path_factory.mktemp("sample")
    sampledata.make_sample_data(out, seed=0, per_class=60, production=120)
    return out


@dataclass
class Project:
    """A git + DVC copy of the example project with one finished experiment, ``base``."""

    path: Path
    serving_model: Path
    """The ``base`` experiment's model, copied aside: the serving model of the drift tests."""


def copy_project(dest: Path) -> Path:
    """Copy the example project (trainer and contract code, params, pipeline, DVC config) and commit it."""
    for rel in PROJECT_FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    for package in ("trainer", "contract"):  # the stages run PYTHONPATH=trainer:contract (dvc.yaml)
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (dest / ".gitignore").write_text("/data/\n/models/\n__pycache__/\n", encoding="utf-8")
    run(["git", "init", "--quiet", "--initial-branch=main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "--quiet", "-m", "example project"], dest)
    return dest


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """``dvc exp run -n base`` at a fresh copy of the project root, default params (2 classes)."""
    path = copy_project(tmp_path_factory.mktemp("project"))
    dvc("exp", "run", "--name", "base", cwd=path)
    serving = tmp_path_factory.mktemp("serving") / "model.pt"
    shutil.copy2(path / "models" / "model.pt", serving)
    yield Project(path, serving)

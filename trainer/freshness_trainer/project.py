"""Driving a DVC project from a Job: clone, ``dvc exp run -S ...``, read the results, publish.

Every function here shells out to git or DVC (the DVC run in this interpreter, ``python -m dvc``)
and raises TrainerError with the tool's own complaint when it fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import yaml

from freshness_trainer.errors import TrainerError

MODEL_OUT = "models/model.pt"
DVC_REMOTE_NAME = "freshness"
# A stage failing with a TrainerError prints "<stage>: <Reason>: <message>" (stages.run_main).
_STAGE_ERROR = re.compile(r"^(prepare|train|evaluate): ([A-Z][A-Za-z0-9]*): (.+)$", re.MULTILINE)
# DVC checks the params a stage declares before running it.
_DVC_MISSING_PARAMS = re.compile(r"failed to reproduce '([^']+)': Parameters? (.+) (?:are|is) missing from '([^']+)'")


@dataclass
class Experiment:
    """One finished experiment as the train step reports it."""

    name: str
    rev: str
    metrics: dict[str, float]
    params: dict[str, Any]
    model: str = ""
    baseline_metrics: dict[str, float] = field(default_factory=dict)


def _run(args: list[str], cwd: Path | None, what: str, echo: bool = False) -> str:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if echo:  # into this process's log (the pod's)
        print(proc.stdout + proc.stderr, file=sys.stderr, end="", flush=True)
    if proc.returncode != 0:
        out = (proc.stderr + "\n" + proc.stdout).strip()
        missing = _DVC_MISSING_PARAMS.search(out)
        if missing:
            keys = missing.group(2).replace("'", "")
            raise TrainerError("MissingParam", f"{missing.group(3)}: missing key {keys} (stage {missing.group(1)})")
        stage = _STAGE_ERROR.search(out)
        if stage:
            raise TrainerError(stage.group(2), f"{what}: stage {stage.group(1)}: {stage.group(3)}")
        tail = " | ".join(line for line in out.splitlines()[-6:] if line.strip())
        raise TrainerError("CommandFailed", f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout


def git(*args: str, cwd: Path | None = None) -> str:
    return _run(["git", *args], cwd, "git " + " ".join(args[:2]))


def dvc(*args: str, cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd, "dvc " + " ".join(args[:2]))


def clone(repo: str, rev: str, dest: Path) -> str:
    """Clone ``repo`` (URL or local path) at ``rev`` into ``dest``; returns the commit sha."""
    git("clone", "--quiet", repo, str(dest))
    git("checkout", "--quiet", rev, cwd=dest)
    return git("rev-parse", "HEAD", cwd=dest).strip()


def run_experiment(workdir: Path, sets: list[str], name: str | None = None, target: str | None = None) -> None:
    """``dvc exp run`` with ``-S key=value`` overrides (params.yaml keys), up to ``target`` if given."""
    args = ["exp", "run", *([target] if target else [])]
    if name:
        args += ["--name", name]
    for s in sets:
        if "=" not in s:
            raise TrainerError("InvalidParam", f"--set {s!r}: expected key=value (a params.yaml key)")
        args += ["-S", s]
    dvc(*args, cwd=workdir)


def run_other_node(workdir: Path, sets: list[str]) -> None:
    """Node 1.. of a multi-node candidate: the same params and inputs as node 0's ``dvc exp run``
    (``dvc exp run -S ... prepare``), then the train stage's own command from ``dvc.yaml``, which
    starts this node's torchrun processes. It commits nothing: node 0's experiment is the result."""
    run_experiment(workdir, sets, target="prepare")
    stages = yaml.safe_load((workdir / "dvc.yaml").read_text(encoding="utf-8")).get("stages") or {}
    cmd = (stages.get("train") or {}).get("cmd")
    if not isinstance(cmd, str):
        raise TrainerError("InvalidProject", "dvc.yaml: no stage train with one cmd to run on the other nodes")
    _run(["sh", "-c", cmd], workdir, "stage train", echo=True)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def parse_exp_show(doc: list[dict[str, Any]], name: str) -> tuple[str, dict[str, float], dict[str, Any]]:
    """Find experiment ``name`` in ``dvc exp show --json`` output: (rev, metrics, params). Pure.

    Metrics are flattened to their leaf names (``val_acc``), params to dotted keys (``train.lr``).
    """
    for baseline in doc:
        for group in baseline.get("experiments") or []:
            for rev in group.get("revs") or []:
                if rev.get("name") != name:
                    continue
                data = rev.get("data") or {}
                metrics: dict[str, float] = {}
                for file_doc in (data.get("metrics") or {}).values():
                    flat: dict[str, Any] = {}
                    _flatten("", file_doc.get("data") or {}, flat)
                    metrics.update({k.rsplit(".", 1)[-1]: float(v) for k, v in flat.items()
                                    if isinstance(v, int | float) and not isinstance(v, bool)})
                params: dict[str, Any] = {}
                for file_doc in (data.get("params") or {}).values():
                    _flatten("", file_doc.get("data") or {}, params)
                return str(rev["rev"]), metrics, params
    raise TrainerError("ExperimentNotFound", f"experiment {name!r} is not in dvc exp show")


def show(workdir: Path, name: str) -> tuple[str, dict[str, float], dict[str, Any]]:
    """(rev, metrics, params) of one experiment, read with ``dvc exp show --json``."""
    return parse_exp_show(json.loads(dvc("exp", "show", "--json", cwd=workdir)), name)


def latest_experiment(workdir: Path) -> str:
    """The name of the newest experiment of the workspace's baseline commit."""
    doc = json.loads(dvc("exp", "show", "--json", cwd=workdir))
    for baseline in doc:
        for group in baseline.get("experiments") or []:
            for rev in group.get("revs") or []:
                if rev.get("name"):
                    return str(rev["name"])
    raise TrainerError("ExperimentNotFound", f"no experiment in {workdir}")


def publish(workdir: Path, name: str, remote: str, git_remote: str = "origin") -> str:
    """Push experiment ``name`` (git refs to ``git_remote``, DVC outputs to ``remote``) and copy the
    model file to ``<remote>/models/<name>/model.pt``; returns where the model now is."""
    if not remote:
        raise TrainerError("MissingRemote", "publish needs --remote (a DVC remote: directory or URI)")
    dvc("remote", "add", "--local", "--force", "--default", DVC_REMOTE_NAME, remote, cwd=workdir)
    dvc("exp", "push", "--remote", DVC_REMOTE_NAME, git_remote, name, cwd=workdir)
    dvc("exp", "apply", name, cwd=workdir)
    target = f"{remote.rstrip('/')}/models/{name}/model.pt"
    fs, path = fsspec.core.url_to_fs(target)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.put_file(str(workdir / MODEL_OUT), path)
    return target

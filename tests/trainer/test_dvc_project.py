"""The repository root as a DVC project, offline on the CPU (issue 4, "Must show").

``project`` (conftest) ran ``dvc exp run --name base`` at a fresh copy of the root with the default
params: 2 classes of the built-in sample set. Here ``freshness-trainer train`` does what the train
Job does: clone that project, ``dvc exp run -S train.num_classes=3`` (the sample set with bees),
push the experiment back to the project's git and its outputs to a local DVC remote. Then
``dvc exp show --json`` in the project lists both experiments with params and metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import freshness_contract as contract
import yaml
from freshness_trainer import cli

from tests.trainer.conftest import Project, copy_project, dvc


def _experiments(path: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for baseline in json.loads(dvc("exp", "show", "--json", cwd=path).stdout):
        for group in baseline.get("experiments") or []:
            for rev in group["revs"]:
                out[rev["name"]] = rev["data"]
    return out


def test_exp_run_trains_and_records_metrics(project: Project) -> None:
    lock = yaml.safe_load((project.path / "dvc.lock").read_text(encoding="utf-8"))
    assert set(lock["stages"]) == {"prepare", "train", "evaluate"}
    assert (project.path / "models" / "model.pt").stat().st_size > 1_000_000
    metrics = json.loads((project.path / "reports" / "eval.json").read_text(encoding="utf-8"))
    assert set(metrics) == {"val_acc", "val_loss", "val_acc_cats", "val_acc_dogs", "learned"}
    assert metrics["val_acc"] > 0.7, metrics  # two classes: chance is 0.5
    rows = json.loads((project.path / "reports" / "confusion.json").read_text(encoding="utf-8"))
    assert len(rows) == 60 and {r["actual"] for r in rows} == {"cats", "dogs"}
    base = _experiments(project.path)["base"]
    assert base["metrics"]["reports/eval.json"]["data"]["val_acc"] == metrics["val_acc"]


def test_train_command_runs_a_three_class_experiment_and_publishes(project: Project, tmp_path: Path) -> None:
    remote, result, workdir = tmp_path / "dvc-remote", tmp_path / "result.json", tmp_path / "work"
    # Two epochs keep the CPU run short; what is shown is the 3-class run end to end, not its accuracy.
    code = cli.main(["train", "--repo", str(project.path), "--rev", "main", "--set", "train.num_classes=3",
                     "--set", "train.epochs=2",
                     "--name", "bees", "--baseline-model", str(project.serving_model), "--remote", str(remote),
                     "--workdir", str(workdir), "--result-path", str(result)])
    res = contract.parse(result.read_text(encoding="utf-8"), expected_step="train")
    assert code == 0, res.message
    t = res.train
    assert t.experiment == "bees" and t.rev is not None and len(t.rev) == 40
    assert t.params["train.num_classes"] == 3 and t.params["train.epochs"] == 2
    assert {"val_acc", "val_acc_bees", "train_loss"} <= set(t.metrics)
    # The 2-class serving model cannot name a bee: the gate sees it on the same validation data.
    assert t.baseline_metrics is not None and t.baseline_metrics["val_acc_bees"] == 0.0
    assert t.model is not None and Path(t.model).is_file() and any((remote / "files" / "md5").iterdir())

    exps = _experiments(project.path)
    assert {"base", "bees"} <= set(exps)
    for name, classes in (("base", 2), ("bees", 3)):
        data = exps[name]
        assert data["params"]["params.yaml"]["data"]["train"]["num_classes"] == classes
        assert "val_acc" in data["metrics"]["reports/eval.json"]["data"]
    assert "val_acc_bees" in exps["bees"]["metrics"]["reports/eval.json"]["data"]

    # publish (the standalone command) pushes an experiment of a working copy again, idempotently.
    code = cli.main(["publish", "--repo", str(workdir / "repo"), "--experiment", "bees", "--remote", str(remote),
                     "--result-path", str(result)])
    res = contract.parse(result.read_text(encoding="utf-8"), expected_step="publish")
    assert code == 0 and res.ok and (res.train.model or "").endswith("bees/model.pt")


def test_missing_params_key_fails_the_train_command(tmp_path: Path) -> None:
    broken = copy_project(tmp_path / "broken")
    text = (broken / "params.yaml").read_text(encoding="utf-8")
    (broken / "params.yaml").write_text(text.replace("  val_fraction: 0.25", "  val_fractions: 0.25"), encoding="utf-8")
    from tests.trainer.conftest import run

    run(["git", "commit", "--quiet", "-am", "typo"], broken)
    result = tmp_path / "result.json"
    code = cli.main(["train", "--repo", str(broken), "--result-path", str(result)])
    res = contract.parse(result.read_text(encoding="utf-8"), expected_step="train")
    assert code == 1 and not res.ok
    assert res.reason == "MissingParam" and "data.val_fraction" in res.message, res.message

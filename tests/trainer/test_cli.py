"""``freshness-trainer``: every command's result validates against the shared schema, and bad
inputs exit non-zero with ok=false and a message naming the problem."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import freshness_contract as contract
import pytest
from freshness_trainer import cli

from tests.trainer.conftest import Project, tool_env


def _run(tmp_path: Path, step: str, *args: str) -> tuple[int, contract.StepResult]:
    result = tmp_path / f"{step}-result.json"
    code = cli.main([step, *args, "--result-path", str(result)])
    return code, contract.parse(result.read_text(encoding="utf-8"), expected_step=step)


def _fails(tmp_path: Path, step: str, reason: str, names: str, *args: str) -> None:
    code, res = _run(tmp_path, step, *args)
    assert code == 1 and not res.ok
    assert res.reason == reason, res.message
    assert names in res.message


def test_drift_on_labelled_production_reports_the_accuracy_drop(
    project: Project, sample_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports" / "drift.html"
    code, res = _run(tmp_path, "drift", "--reference", str(sample_dir / "reference"),
                     "--current", str(sample_dir / "production/new-class"), "--model", str(project.serving_model),
                     "--min-samples", "100", "--report", str(report))
    assert code == 0 and res.ok
    d = res.drift
    assert d.detected is True
    assert res.message.startswith("drift detected: accuracy drop"), res.message  # the labels decided it
    # The reference is the model's own held-out images (the 60-image validation split of the sample
    # project's 240 and the 2 x 300 renders of params.yaml's data.reference_per_class), not the folder.
    assert d.samples == 120 and d.reference_samples == 660 and d.reference_kind == "heldOut"
    assert d.threshold == 0.95 and 0 <= d.share <= 1
    # 2-class model, 30% bees: those are always wrong, so accuracy falls.
    assert d.accuracy is not None and d.accuracy.drop is not None and d.accuracy.drop > 0.2
    # Unlabelled signals beside it: the bees are far from every held-out image (novelty); the
    # calibrated confidence cannot see them (the model is confidently wrong), so the estimate stays high.
    assert d.novelty is not None and d.novelty.detected and d.novelty.p_value < 0.02, d.novelty
    assert d.novelty.share > d.novelty.reference_rate + 0.05, d.novelty
    assert d.estimated_accuracy is not None and d.estimated_accuracy.reference == d.accuracy.reference
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def _flatten(folder: Path, out: Path) -> Path:
    """The images of a labelled folder with the labels dropped (all at the top level)."""
    out.mkdir(parents=True)
    for image in sorted(folder.glob("*/*.png")):
        shutil.copy(image, out / f"{image.parent.name}-{image.name}")
    return out


def test_drift_on_unlabelled_production_from_the_statistics_alone(
    project: Project, sample_dir: Path, tmp_path: Path
) -> None:
    """Without labels there is no accuracy rule: the verdict comes from the per-feature tests alone.

    Darkened images (brightness x 0.4) move the image statistics, which the rule catches at this
    size. The new class does not: unlabelled, 120 images with 30% bees score about 0.22 against the
    0.95 threshold here (the rule's power on it falls quickly below 500 images, trainer/README.md),
    so that case is only detected through the labelled accuracy drop above.
    """
    current = _flatten(sample_dir / "production/brightness", tmp_path / "unlabelled")
    code, res = _run(tmp_path, "drift", "--reference", str(sample_dir / "reference"),
                     "--current", str(current), "--model", str(project.serving_model), "--min-samples", "100")
    assert code == 0 and res.ok
    d = res.drift
    assert d.accuracy is None and d.samples == 120
    assert d.detected is True and d.threshold is not None and d.score >= d.threshold, d
    assert "brightness" in d.top_features, d.top_features


def test_params_stattest_threshold_decides_which_features_count_as_drifted(
    project: Project, sample_dir: Path, tmp_path: Path
) -> None:
    """``drift.stattest_threshold`` (params.yaml) is the per-feature p-value cut: a stricter one counts
    fewer features as drifted (share, top features, the message) and leaves the score and verdict alone."""
    current = _flatten(sample_dir / "production/brightness", tmp_path / "unlabelled")
    text = (project.path / "params.yaml").read_text(encoding="utf-8")
    assert "  stattest_threshold: 0.05\n" in text
    found = {}
    for alpha in ("0.05", "1e-30"):
        path = tmp_path / f"params-{alpha}.yaml"
        path.write_text(text.replace("  stattest_threshold: 0.05\n", f"  stattest_threshold: {alpha}\n"))
        code, res = _run(tmp_path, "drift", "--reference", str(sample_dir / "reference"), "--current",
                         str(current), "--model", str(project.serving_model), "--min-samples", "100",
                         "--params", str(path))
        assert code == 0 and res.ok and res.drift.share is not None, res
        assert f"features at p<{float(alpha):g}" in res.message, res.message
        found[alpha] = res.drift
    loose, strict = found["0.05"], found["1e-30"]
    assert loose.share is not None and strict.share is not None
    assert strict.share < loose.share, (strict.share, loose.share)
    assert len(strict.top_features) < len(loose.top_features)
    assert (strict.score, strict.detected) == (loose.score, loose.detected)


def test_drift_on_iid_production_is_not_detected_with_params_defaults(
    project: Project, sample_dir: Path, tmp_path: Path
) -> None:
    code, res = _run(tmp_path, "drift", "--reference", str(sample_dir / "reference"),
                     "--current", str(sample_dir / "production/iid"), "--model", str(project.serving_model),
                     "--params", str(project.path / "params.yaml"), "--min-samples", "50")
    assert code == 0 and res.ok
    assert res.drift.detected is False, res.drift
    assert res.drift.threshold is not None and res.drift.score < res.drift.threshold
    assert res.drift.novelty is not None and not res.drift.novelty.detected, res.drift.novelty
    e = res.drift.estimated_accuracy
    assert e is not None and e.reference is not None and e.reference - e.value < 0.05, e


def test_evaluate(project: Project, sample_dir: Path, tmp_path: Path) -> None:
    code, res = _run(tmp_path, "evaluate", "--model", str(project.serving_model),
                     "--data", str(sample_dir / "production/iid"))
    assert code == 0 and res.ok
    metrics = res.train.metrics
    assert set(metrics) == {"val_acc", "val_loss", "val_acc_cats", "val_acc_dogs", "learned"}
    assert metrics["val_acc"] > 0.6


def test_package(project: Project, tmp_path: Path) -> None:
    code, res = _run(tmp_path, "package", "--model", str(project.serving_model),
                     "--image", "registry.example.com/cats-dogs:v1", "--output", str(tmp_path / "layout"))
    assert code == 0 and res.ok
    digest = res.package.digest
    assert res.package.image == f"registry.example.com/cats-dogs:v1@{digest}"  # pinned: the contract's form
    assert (tmp_path / "layout" / "blobs" / "sha256" / digest.split(":")[1]).exists()


def test_package_push_without_crane(project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    _fails(tmp_path, "package", "CraneNotFound", "crane", "--model", str(project.serving_model),
           "--image", "r:t", "--output", str(tmp_path / "l"), "--push")


@pytest.fixture(scope="module")
def legacy_model(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The serving model as a model file written before issue 14: no calibration, no held-out split."""
    from freshness_trainer import model

    path = tmp_path_factory.mktemp("legacy") / "model.pt"
    ckpt = model.load(str(project.serving_model))
    model.save(dataclasses.replace(ckpt, calibration=None, heldout=None), str(path))
    return path


def test_drift_with_a_legacy_model_file_reads_the_reference_folder(
    legacy_model: Path, sample_dir: Path, tmp_path: Path
) -> None:
    code, res = _run(tmp_path, "drift", "--reference", str(sample_dir / "reference"),
                     "--current", str(sample_dir / "production/iid"), "--model", str(legacy_model),
                     "--min-samples", "50")
    assert code == 0 and res.ok
    d = res.drift
    assert d.reference_kind == "folder" and d.reference_samples == 120
    assert d.estimated_accuracy is None and "no calibration" in res.message  # nothing to estimate with
    assert d.novelty is not None  # the embeddings are there either way


def test_bad_drift_inputs(project: Project, legacy_model: Path, sample_dir: Path, tmp_path: Path) -> None:
    m = str(project.serving_model)
    empty = tmp_path / "empty"
    (empty / "cats").mkdir(parents=True)
    _fails(tmp_path, "drift", "EmptyDataset", str(empty), "--reference", str(sample_dir / "reference"),
           "--current", str(empty), "--model", m)
    single = tmp_path / "single"
    shutil.copytree(sample_dir / "reference" / "cats", single / "cats")
    # The reference folder is read only for a model file without a held-out split.
    _fails(tmp_path, "drift", "SingleClass", str(single), "--reference", str(single),
           "--current", str(sample_dir / "production/iid"), "--model", str(legacy_model), "--min-samples", "50")
    _fails(tmp_path, "drift", "TooFewSamples", "--min-samples 500", "--reference", str(sample_dir / "reference"),
           "--current", str(sample_dir / "production/iid"), "--model", m, "--min-samples", "500")
    _fails(tmp_path, "drift", "ModelNotFound", "nope.pt", "--reference", str(sample_dir / "reference"),
           "--current", str(sample_dir / "production/iid"), "--model", str(tmp_path / "nope.pt"))
    bad_params = tmp_path / "params.yaml"
    bad_params.write_text((project.path / "params.yaml").read_text().replace("  threshold: 0.95", "  x: 1"))
    _fails(tmp_path, "drift", "MissingParam", "drift.threshold", "--reference", str(sample_dir / "reference"),
           "--current", str(sample_dir / "production/iid"), "--model", m, "--params", str(bad_params))


def test_corrupt_image_via_the_console_script(project: Project, sample_dir: Path, tmp_path: Path) -> None:
    """The installed entry point exits non-zero and still writes its result document."""
    data = tmp_path / "data"
    shutil.copytree(sample_dir / "production" / "iid", data)
    (data / "dogs" / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = tmp_path / "result.json"
    env = tool_env()
    env["FRESHNESS_RESULT_PATH"] = str(result)
    proc = subprocess.run([str(Path(sys.executable).parent / "freshness-trainer"), "evaluate", "--model",
                           str(project.serving_model), "--data", str(data)],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    res = contract.parse(result.read_text(encoding="utf-8"), expected_step="evaluate")
    assert not res.ok and res.reason == "CorruptImage" and "zz-broken.png" in res.message
    assert "zz-broken.png" in proc.stderr


def test_a_result_the_contract_would_refuse_becomes_invalid_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A diverged metric (NaN) is not valid JSON for the operator: say so instead of writing it."""
    monkeypatch.setitem(cli.HANDLERS, "evaluate", lambda _: {"train": {"metrics": {"val_acc": float("nan")}}})
    code, res = _run(tmp_path, "evaluate", "--model", "m.pt", "--data", "d")
    assert code == 1 and not res.ok
    assert res.reason == "InvalidResult" and res.message.startswith("result field train.metrics.val_acc: NaN")


def test_make_sample_data_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["make-sample-data", str(tmp_path / "s"), "--per-class", "2", "--production", "4"]) == 0
    assert len(list((tmp_path / "s" / "extended" / "bees").glob("*.png"))) == 2
    assert "production/new-class" in capsys.readouterr().out


def test_drift_help_describes_the_current_rule(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["drift", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "1 - the Simes-combined p-value" in text and "5% false alarms" in text
    assert "share of drifted features" not in text

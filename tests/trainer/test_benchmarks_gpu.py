"""The GPU fast path (CUDA only) and the benchmark scripts' ``--smoke`` runs (on the CPU here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from freshness_trainer import data, engine, evaluation, fastpath, model

from benchmarks import drift_quality_png
from tests.pngfile import png_size
from tests.trainer.conftest import Project

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_path_decodes_on_the_gpu_and_trains(tmp_path: Path) -> None:
    gpu_train = _load("gpu_train")
    gpu_train.make_jpeg_folder(tmp_path, 256, 224)
    device = torch.device("cuda")
    loaded = fastpath.load(data.list_images(str(tmp_path), labelled=True, min_classes=2), 224, device)
    assert loaded.images.device.type == "cuda" and loaded.images.shape == (256, 3, 224, 224)
    assert loaded.labels is not None
    settings = engine.Settings.for_device(device)
    assert settings.amp and settings.channels_last
    fitted = engine.fit(model.build("alexnet", 2), loaded.images, loaded.labels.to(device), optimizer="adamw",
                        lr=3e-4, momentum=0.9, batch_size=64, epochs=3, seed=0, settings=settings)
    logits = engine.predict(fitted.model, loaded.images, batch_size=128, settings=settings)
    assert fitted.losses[-1] < fitted.losses[0]
    assert evaluation.score(logits, loaded.labels, ["cats", "dogs"]).accuracy > 0.5


def test_gpu_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("gpu_train").main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for line in ("(a) tutorial", "(b) fast path", "ratio (b)/(a)", "drift check end to end"):
        assert line in out


def test_drift_quality_benchmark_smoke(project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "power.png"
    assert _load("drift_quality").main(["--smoke", "--model", str(project.serving_model), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    for condition in ("| iid |", "| new-class |", "| noise |", "| rotation |"):
        assert condition in out
    assert "0 disagreements" in out
    assert f"# figure: {png}" in out and png_size(png) == (drift_quality_png.WIDTH, drift_quality_png.HEIGHT)


def test_drift_quality_fpr_smoke_checks_each_batch_against_both_references(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("drift_quality")
    ckpt = model.load(str(project.serving_model))
    hits = bench.false_positive_rates(ckpt, batches=3, sizes=[40, 60], reference_size=60)
    assert set(hits) == {"held-out", "trained-on"}
    for per_size in hits.values():
        assert set(per_size) == {40, 60}
        assert all(0 <= h <= 3 for h in per_size.values())
    assert bench.main(["--smoke", "--model", str(project.serving_model), "--fpr-batches", "200"]) == 0
    out = capsys.readouterr().out
    assert "| held-out |" in out and "| trained-on |" in out and "over 2 independent iid batches" in out


def test_wilson_interval_matches_the_textbook_values() -> None:
    wilson = _load("drift_quality").wilson
    lo, hi = wilson(0, 200)
    assert lo == 0.0 and abs(hi - 0.0188) < 5e-4
    lo, hi = wilson(10, 200)
    assert abs(lo - 0.0274) < 5e-4 and abs(hi - 0.0898) < 5e-4

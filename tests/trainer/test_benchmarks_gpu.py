"""The GPU fast path (CUDA only) and the benchmark scripts' ``--smoke`` runs (on the CPU here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from freshness_trainer import data, engine, fastpath, model, scores

from tests.trainer.conftest import Project

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
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
    settings = engine.DeviceOptions.for_device(device)
    assert settings.amp and settings.channels_last
    fitted = engine.fit(model.build("alexnet", 2), loaded.images, loaded.labels.to(device), optimizer="adamw",
                        lr=3e-4, momentum=0.9, batch_size=64, epochs=3, seed=0, settings=settings)
    logits = engine.predict(fitted.model, loaded.images, batch_size=128, settings=settings)
    assert fitted.losses[-1] < fitted.losses[0]
    assert scores.score(logits, loaded.labels, ["cats", "dogs"]).accuracy > 0.5


def test_gpu_benchmark_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert _load("gpu_train").main(["--smoke"]) == 0
    out = capsys.readouterr().out
    for line in ("(a) tutorial", "(b) fast path", "ratio (b)/(a)", "drift check end to end"):
        assert line in out


def test_drift_quality_benchmark_smoke_runs_every_rule_and_agrees_with_evidently(
    project: Project, tmp_path: Path
) -> None:
    bench = _load("drift_quality")
    out_json, out_png = tmp_path / "dq.json", tmp_path / "dq.png"
    # Exit status 1 when the real DataDriftPreset() disagrees with the benchmark's scipy equivalent.
    assert bench.main(["--smoke", "--model", str(project.serving_model), "--json", str(out_json),
                       "--png", str(out_png)]) == 0
    doc = json.loads(out_json.read_text())
    cells = {c["name"]: c for c in doc["cells"]}
    assert set(cells) == {"iid", "jpeg q=30", "noise sd=0.2", "new-class 30%"}
    assert sum(c["evidentlyChecked"] for c in cells.values()) == 4
    noisy = cells["noise sd=0.2"]
    assert noisy["cost"] >= 5 and noisy["class"] == "harmful"
    assert noisy["sizes"]["60"]["distribution"]["hits"] == 3  # heavy noise moves every image statistic
    assert cells["iid"]["cost"] == 0.0 and cells["new-class 30%"]["cost"] >= 25  # bees are never right
    for cell in cells.values():
        for size in ("60", "30"):
            for rule in ("distribution", "evidently", "impact"):
                r = cell["sizes"][size][rule]
                assert r["batches"] == 3 and 0 <= r["low"] <= r["rate"] <= r["high"] <= 1
    assert set(doc["targets"]) == {"iid", "harmless", "harmful", "harmful200", "mae", "novelty"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drift_quality_holdout_grid_smoke_runs_its_new_class_and_transforms(project: Project, tmp_path: Path) -> None:
    bench = _load("drift_quality")
    out_json = tmp_path / "dq.json"
    assert bench.main(["--smoke", "--grid", "holdout", "--model", str(project.serving_model),
                       "--json", str(out_json)]) == 0
    doc = json.loads(out_json.read_text())
    cells = {c["name"]: c for c in doc["cells"]}
    assert set(cells) == {"iid", "mirror left-right", "occlusion 45% side", "unseen-class 30%"}
    assert doc["meta"]["grid"] == "holdout"
    assert cells["unseen-class 30%"]["cost"] >= 25  # wasps are never right, like bees
    assert doc["targets"]["novelty"]["impact"]["cells"] == 1  # judged on the wasps


def test_drift_quality_train_seed_reaches_the_train_stage_and_refuses_a_given_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bench = _load("drift_quality")
    seen: dict[str, object] = {}
    monkeypatch.setattr(bench.prepare, "run", lambda p, *a, **k: seen.setdefault("prepare", p))
    monkeypatch.setattr(bench.train, "run", lambda p, *a, **k: seen.setdefault("train", p))
    bench.train_sample_model(tmp_path, 3, 7)
    trained = seen["train"]
    assert trained.train.seed == 7 and trained.train.epochs == 3  # type: ignore[attr-defined]
    seen.clear()
    bench.train_sample_model(tmp_path, None)
    assert seen["train"].train.seed == bench.params.load(bench.ROOT / "params.yaml").train.seed  # type: ignore[attr-defined]
    with pytest.raises(SystemExit, match="--train-seed: the run trains no model when --model is given"):
        bench.main(["--train-seed", "1", "--model", str(tmp_path / "model.pt")])


def test_accuracy_estimators_smoke_prints_every_estimator_per_covariate_cell(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("accuracy_estimators")
    assert bench.main(["--smoke", "--model", str(project.serving_model)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert {"iid", "jpeg q=30", "noise sd=0.2"} <= set(rows) and "new-class 30%" not in rows  # covariate only
    for name in ("iid", "jpeg q=30", "noise sd=0.2"):
        cells = [c.strip() for c in rows[name].strip("|").split("|")]
        assert len(cells) == 2 + len(bench.ESTIMATORS) and 0 <= float(cells[1]) <= 1
    assert rows["pool-level error within 3 points"].split("|")[2].strip() == "3 cells"


def test_the_atc_threshold_puts_the_held_out_accuracy_above_it() -> None:
    bench = _load("accuracy_estimators")
    conf = np.linspace(0.5, 1.0, 1001)
    t = bench.atc_threshold(conf, 0.9)
    assert np.mean(conf > t) == pytest.approx(0.9, abs=2e-3)


def test_drift_quality_batches_are_nested_draws_that_keep_the_mixture_share() -> None:
    bench, shifts = _load("drift_quality"), _load("drift_shifts")
    n_iid, n_bees = 1000, 400

    def pool(n: int, offset: int) -> object:
        return bench.Pool({"row": np.arange(offset, offset + n)}, np.zeros((n, 2)), np.ones(n, bool), np.zeros(n))

    pools = {"iid": pool(n_iid, 0), "new-class": pool(n_bees, 10_000)}
    drawn = bench.draw(pools, shifts.Shift("new-class", 0.3, "30%"), (500, 200), np.random.default_rng(0))
    big, small = drawn[500].columns["row"], drawn[200].columns["row"]
    assert len(set(big)) == 500 and set(small) <= set(big)
    assert (big >= 10_000).sum() == 150 and (small >= 10_000).sum() == 60
    other = bench.draw(pools, shifts.Shift("new-class", 0.3, "30%"), (500, 200), np.random.default_rng(1))
    # Two batches share about n^2/pool images, not all of them.
    assert len(set(big) & set(other[500].columns["row"])) < 400


def test_drift_quality_targets_are_judged_on_the_measured_cost() -> None:
    report = _load("drift_quality_report")

    def cell(name: str, cost: float, rate500: float, rate200: float) -> dict[str, object]:
        def rates(r: float) -> dict[str, object]:
            one = {"hits": round(200 * r), "batches": 200, "rate": r, "low": 0.0, "high": 1.0}
            return {**{rule: one for rule in report.RULES}, "novelty": one, "estimateMae": 1.0, "estimateBias": 0.0}
        kind = "harmless" if cost < 1 else "harmful" if cost >= 5 else "between"
        return {"name": name, "family": name, "strength": "", "value": 0.0, "mixture": False, "cost": cost,
                "class": kind, "sizes": {"500": rates(rate500), "200": rates(rate200)}}

    doc = report.document({}, [cell("a", 0.5, 0.04, 0.0), cell("b", 6.0, 0.97, 0.79), cell("c", 3.0, 0.5, 0.5)])
    assert doc["targets"]["harmless"]["impact"]["met"] is True
    assert doc["targets"]["harmful"]["impact"]["met"] is True
    missed = doc["targets"]["harmful200"]["impact"]
    assert missed["met"] is False and missed["worst"] == "b"
    # The count is of the cells that pass (b misses the n = 200 target: 0 of 1 pass), labelled so.
    assert "MISSED: 0/1 cells pass (worst b: 0.79)" in report.markdown(doc)
    assert "met: 1/1 cells pass (worst a: 0.04)" in report.markdown(doc)


def test_wilson_interval_matches_the_textbook_values() -> None:
    wilson = _load("drift_quality").wilson
    lo, hi = wilson(0, 200)
    assert lo == 0.0 and abs(hi - 0.0188) < 5e-4
    lo, hi = wilson(10, 200)
    assert abs(lo - 0.0274) < 5e-4 and abs(hi - 0.0898) < 5e-4

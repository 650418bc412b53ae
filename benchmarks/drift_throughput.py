"""Drift-check throughput on the CPU: our pipeline in images/s, the decision alone in rows/s.

    python benchmarks/drift_throughput.py [--images 1000] [--repeat 3] [--smoke]

Images come from the sample maker (``freshness_trainer.sampledata.make_sample_data``) in a temporary
folder: the reference is ``reference/`` (2 x ``--per-class`` images), the current set is
``production/iid/`` (``--images`` images). Nothing is downloaded. The serving model is an untrained
AlexNet with the repository's ``params.yaml`` shape (64 px, 256 hidden units, 2 classes): weights do
not change the cost.

1. **Pipeline**, end to end as ``freshness-trainer drift`` runs it (``freshness_trainer.checks``):
   list both folders, decode them (PIL on the CPU), extract the feature table with the serving model
   (the PCA fitted on the reference), per-feature p-values + Simes' rule. Stage timings are the
   median over ``--repeat`` runs; img/s counts reference + current images.
2. **Decision alone** on the same feature tables, side by side in the same run: ours
   (``drift.feature_pvalues`` + ``drift.decide``) against Evidently 0.7.23's ``DataDriftPreset()``
   with every default. rows/s counts reference + current rows per decision.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer"))

from freshness_trainer import data, drift, engine, features, model, sampledata  # noqa: E402
from freshness_trainer.features import CATEGORICAL  # noqa: E402

CLASSES = ["cats", "dogs"]


@dataclass
class PipelineRun:
    """Seconds per stage of one end-to-end drift check, and what it decided."""

    seconds: dict[str, float]
    verdict: drift.Verdict
    reference: pd.DataFrame
    current: pd.DataFrame


@dataclass
class DecisionResult:
    """One detector on the feature tables: median seconds per decision and its verdict."""

    name: str
    seconds: float
    detected: bool
    share: float


def serving_model(image_size: int, hidden_units: int) -> model.Checkpoint:
    """An untrained serving model with the sample project's shape (weights don't matter here)."""
    torch.manual_seed(0)
    net = model.build("alexnet", len(CLASSES), hidden_units=hidden_units).eval()
    return model.Checkpoint(net, list(CLASSES), image_size)


def run_pipeline(ckpt: model.Checkpoint, ref_dir: Path, cur_dir: Path, settings: engine.Settings) -> PipelineRun:
    """One drift check end to end, timed per stage (as freshness_trainer.checks runs it)."""
    t: dict[str, float] = {}
    start = time.perf_counter()
    ref_index = data.list_images(str(ref_dir))
    cur_index = data.list_images(str(cur_dir))
    t["list"] = time.perf_counter() - start
    mark = time.perf_counter()
    ref = data.load_images(ref_index, ckpt.image_size, class_names=ckpt.classes)
    cur = data.load_images(cur_index, ckpt.image_size, class_names=ckpt.classes)
    t["decode"] = time.perf_counter() - mark
    mark = time.perf_counter()
    ref_table, pca = features.extract(ckpt, ref.images, settings)
    cur_table, _ = features.extract(ckpt, cur.images, settings, pca=pca)
    t["features"] = time.perf_counter() - mark
    mark = time.perf_counter()
    verdict = drift.decide(drift.feature_pvalues(ref_table, cur_table))
    t["decide"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return PipelineRun(t, verdict, ref_table, cur_table)


def ours(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[bool, float]:
    verdict = drift.decide(drift.feature_pvalues(reference, current))
    return verdict.detected, verdict.share


def evidently_default(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[bool, float]:
    """Evidently's ``DataDriftPreset()`` with all defaults; dataset drift = its DriftedColumnsCount."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
        categorical_columns=[c for c in reference.columns if c in CATEGORICAL],
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    for metric in snapshot.dict()["metrics"]:
        config: dict[str, Any] = metric.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
            return share >= float(config.get("drift_share", 0.5)), share
    raise RuntimeError("Evidently reported no DriftedColumnsCount")


def time_decision(
    name: str,
    detector: Callable[[pd.DataFrame, pd.DataFrame], tuple[bool, float]],
    reference: pd.DataFrame,
    current: pd.DataFrame,
    repeat: int,
) -> DecisionResult:
    detector(reference, current)  # warm-up: imports, caches
    times: list[float] = []
    detected, share = False, 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        detected, share = detector(reference, current)
        times.append(time.perf_counter() - start)
    return DecisionResult(name, statistics.median(times), detected, share)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--images", type=int, default=1000, help="current (production) images")
    ap.add_argument("--per-class", type=int, default=120, help="reference images per class (2 classes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--hidden-units", type=int, default=256)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI: proves the script runs")
    args = ap.parse_args(argv)
    n_cur, per_class, repeat = args.images, args.per_class, args.repeat
    if args.smoke:
        n_cur, per_class, repeat = 40, 12, 1

    print(
        f"# drift_throughput  {datetime.date.today()}  {platform.node()}  "
        f"{platform.processor() or platform.machine()}  cores={os.cpu_count()}  "
        f"torch {torch.__version__} threads={torch.get_num_threads()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="drift-throughput-"))
    try:
        mark = time.perf_counter()
        sampledata.make_sample_data(tmp, per_class=per_class, production=n_cur)
        print(f"# sample images written in {time.perf_counter() - mark:.1f} s (not timed below)")
        ckpt = serving_model(args.image_size, args.hidden_units)
        settings = engine.Settings.for_device("cpu")
        ref_dir, cur_dir = tmp / "reference", tmp / "production" / "iid"
        runs = [run_pipeline(ckpt, ref_dir, cur_dir, settings) for _ in range(repeat + (0 if args.smoke else 1))]
        if not args.smoke:
            runs = runs[1:]  # the first run warms up PIL, torch and the page cache
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    last = runs[-1]
    n_ref, n_cur_rows = len(last.reference), len(last.current)
    n_images = n_ref + n_cur_rows
    stages = {k: statistics.median(r.seconds[k] for r in runs) for k in last.seconds}
    print(
        f"\n## Pipeline end to end: {n_ref} reference + {n_cur_rows} current images at {args.image_size} px, "
        f"AlexNet hidden={args.hidden_units}, median of {len(runs)} run(s)"
    )
    print("| stage | seconds | share | img/s |")
    print("|---|---|---|---|")
    for k, s in stages.items():
        share = s / stages["total"] if stages["total"] > 0 else float("nan")
        rate = n_images / s if s > 0 else float("inf")
        print(f"| {k} | {s:.3f} | {share:.0%} | {rate:,.0f} |")
    pipeline_rate = n_images / stages["total"]
    print(
        f"# pipeline: {pipeline_rate:,.0f} img/s; verdict detected={last.verdict.detected} "
        f"score={last.verdict.score:.3f} share={last.verdict.share:.2f} "
        f"({last.reference.shape[1]} feature columns)"
    )

    rows = n_ref + n_cur_rows
    results = [
        time_decision("ours (feature_pvalues + Simes)", ours, last.reference, last.current, repeat),
        time_decision("Evidently 0.7.23 DataDriftPreset()", evidently_default, last.reference, last.current, repeat),
    ]
    print(
        f"\n## Decision alone: {n_ref} reference + {n_cur_rows} current rows x {last.reference.shape[1]} "
        f"columns, median of {repeat}"
    )
    print("| detector | seconds/decision | rows/s | dataset drift | drifted share |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r.name} | {r.seconds:.4f} | {rows / r.seconds:,.0f} | {r.detected} | {r.share:.2f} |")
    ratio = results[1].seconds / results[0].seconds
    print(f"# ours is {ratio:,.0f}x faster than Evidently's default preset on the same feature table")
    out: dict[str, Any] = {
        "images": n_images,
        "stages": stages,
        "pipeline_img_per_s": pipeline_rate,
        "pipeline_detected": last.verdict.detected,
        "pipeline_score": last.verdict.score,
        "decision": {
            r.name: {"seconds": r.seconds, "rows_per_s": rows / r.seconds, "detected": r.detected, "share": r.share}
            for r in results
        },
        "ratio": ratio,
        "finite": bool(np.isfinite([pipeline_rate, ratio, *stages.values()]).all()),
    }
    if args.smoke:
        print("smoke: ok")
    return out


if __name__ == "__main__":
    main()
    raise SystemExit(0)

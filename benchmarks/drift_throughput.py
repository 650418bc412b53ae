"""Drift-check cost on the CPU: seconds per check of what ``freshness-trainer drift`` really runs.

    python benchmarks/drift_throughput.py [--sizes 200,1000,10000] [--repeat 3] [--smoke]

Images come from the sample maker (``freshness_trainer.sampledata.make_sample_data``) in a temporary
folder; nothing is downloaded. The reference is ``reference/`` (2 x ``--per-class`` images). The
current folder of each size is unlabelled, as production traffic is, and cut from a pool of
``production/iid`` images (at most 1,000 unique renders; larger sizes repeat them under new file
names, which costs the same to decode and score).
The serving model is an untrained AlexNet of the repository's ``params.yaml`` shape (64 px, 256
hidden units, 2 classes) saved as the trainer saves it: weights do not change the cost.

1. **The check** (``freshness_trainer.drift_step.run``, the function the CLI's ``drift`` command calls):
   load the model, list and decode both folders, extract the feature tables with the serving model
   (PCA fitted on the reference), the novelty signal (nearest neighbours in the embedding space),
   the per-feature tests through Evidently, the decision rule, then the drift report (its gallery
   classifier on the embeddings, the page with Evidently's HTML). The model file carries no held-out
   reference, so the check reads the reference folder, as for a model trained before issue 14.
   Seconds per check are the median of ``--repeat`` runs (one
   untimed warm-up run comes first, at the smallest size). Beside it, the same calls one by one
   give the split by stage.
2. **The decision stage alone**, on the same feature tables, side by side in the same run:
   what the CLI runs (Evidently ``ValueDrift`` per column + the HTML report), the same without the
   report, Evidently used as its documentation recommends for a dataset-level verdict
   (``DriftedColumnsCount`` alone, no widgets), and the scipy twin of the tests
   (``drift_rule.feature_pvalues``, the same p-values, checked equal by tests/trainer/test_drift_rule.py).
   The cost is per column test, so the table gives milliseconds per column as well.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import shutil
import statistics
import subprocess
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

from freshness_trainer import (  # noqa: E402
    data,
    drift_rule,
    drift_step,
    engine,
    fastpath,
    features,
    impact,
    model,
    report,
    sampledata,
)
from freshness_trainer.features import CATEGORICAL  # noqa: E402

CLASSES = ["cats", "dogs"]
POOL = 1000  # unique production renders; larger sizes repeat them


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def save_serving_model(path: Path, image_size: int, hidden_units: int) -> None:
    """An untrained serving model with the sample project's shape, saved as the trainer saves it."""
    torch.manual_seed(0)
    net = model.build("alexnet", len(CLASSES), hidden_units=hidden_units).eval()
    model.save(model.Checkpoint(net, list(CLASSES), image_size), str(path))


def current_folder(pool: Path, out: Path, n: int) -> Path:
    """An unlabelled folder (production traffic has no labels) of ``n`` images cut from ``pool``
    (hard links, repeated under new names)."""
    files = sorted(p for p in pool.rglob("*.png"))
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = files[i % len(files)]
        dst = out / f"{i:06d}.png"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return out


@dataclass
class CheckTimes:
    """One check split by stage, as drift_step.run performs it, and its verdict."""

    seconds: dict[str, float]
    verdict: drift_rule.Verdict
    reference: pd.DataFrame
    current: pd.DataFrame


def staged_check(inputs: drift_step.DriftInputs, settings: engine.DeviceOptions) -> CheckTimes:
    """The calls of ``drift_step.run`` one by one (same functions, same order), timed per stage."""
    t: dict[str, float] = {}
    mark = start = time.perf_counter()
    ckpt = model.load(inputs.model)
    ckpt.model.to(settings.device)
    t["load model"] = time.perf_counter() - mark
    mark = time.perf_counter()
    ref_index = data.list_images(inputs.reference, labelled=True, min_classes=2)
    cur_index = data.list_images(inputs.current, labelled=None, min_classes=1)
    ref = fastpath.load(ref_index, ckpt.image_size, settings.device, class_names=ckpt.classes)
    cur = fastpath.load(cur_index, ckpt.image_size, settings.device, class_names=ckpt.classes)
    t["list + decode"] = time.perf_counter() - mark
    mark = time.perf_counter()
    reference = features.extract_all(ckpt, ref.images, settings, pca_components=inputs.pca_components)
    current = features.extract_all(ckpt, cur.images, settings, pca=reference.pca)
    ref_table, cur_table = reference.table, current.table
    t["features (forward pass)"] = time.perf_counter() - mark
    mark = time.perf_counter()
    impact.novelty(reference.embeddings, current.embeddings)
    t["novelty (nearest neighbours)"] = time.perf_counter() - mark
    with tempfile.TemporaryDirectory() as tmp:
        html = os.path.join(tmp, "report.html")
        mark = time.perf_counter()
        pvalues = drift_rule.evidently_pvalues(ref_table, cur_table, html=html)
        t["Evidently tests + its HTML"] = time.perf_counter() - mark
        mark = time.perf_counter()
        verdict = drift_rule.decide(pvalues, threshold=inputs.threshold)
        t["decision rule"] = time.perf_counter() - mark
        mark = time.perf_counter()
        context = report.Context(len(cur), len(ref), inputs.current, inputs.reference)
        sources = report.relative(cur.files, inputs.current)
        samples = report.gallery(reference.embeddings, current.embeddings, cur.images, cur_table, sources)
        with open(html, encoding="utf-8") as f:
            document = report.render(verdict, context, ref_table, cur_table, samples, f.read())
        report.write(inputs.report, document)
        t["drift report (gallery + page)"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    return CheckTimes(t, verdict, ref_table, cur_table)


def timed(fn: Callable[[], Any], repeat: int, warmup: bool) -> tuple[float, Any]:
    """Median seconds of ``repeat`` calls (after one untimed call when ``warmup``) and the last value."""
    value = fn() if warmup else None
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def evidently_count(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[bool, float]:
    """Evidently's dataset verdict as its docs recommend: ``DriftedColumnsCount`` alone, no widgets."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
        categorical_columns=[c for c in reference.columns if c in CATEGORICAL],
    )
    metric = DriftedColumnsCount(num_method="ks", cat_method="chisquare", threshold=drift_rule.STATTEST_THRESHOLD)
    snapshot = Report([metric]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    for m in snapshot.dict()["metrics"]:
        if m.get("config", {}).get("type", "").endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
            return share >= 0.5, share
    raise RuntimeError("Evidently reported no DriftedColumnsCount")


def decision_stage(ref: pd.DataFrame, cur: pd.DataFrame, report: str, repeat: int) -> dict[str, dict[str, Any]]:
    """The decision stage alone, four ways, on the same feature tables (see the module docstring)."""

    def cli_way() -> bool:
        return drift_rule.decide(drift_rule.evidently_pvalues(ref, cur, html=report)).detected

    def no_report() -> bool:
        return drift_rule.decide(drift_rule.evidently_pvalues(ref, cur)).detected

    def scipy_twin() -> bool:
        return drift_rule.decide(drift_rule.feature_pvalues(ref, cur)).detected

    ways: list[tuple[str, Callable[[], Any]]] = [
        ("Evidently ValueDrift per column + HTML report (what the CLI runs)", cli_way),
        ("Evidently ValueDrift per column, no report", no_report),
        ("Evidently DriftedColumnsCount alone (its docs' dataset verdict)", lambda: evidently_count(ref, cur)[0]),
        ("scipy twin of the same tests (drift_rule.feature_pvalues)", scipy_twin),
    ]
    out: dict[str, dict[str, Any]] = {}
    for name, fn in ways:
        seconds, detected = timed(fn, repeat, warmup=True)
        out[name] = {"seconds": seconds, "detected": bool(detected)}
    return out


def by_size(results: dict[int, dict[str, Any]], what: str, rows: list[str],
            cell: Callable[[dict[str, Any], str], str]) -> None:
    """Print a markdown table: one row per ``rows`` entry, one column per image count."""
    print(f"| {what} | " + " | ".join(f"{n:,} images" for n in results) + " |")
    print("|---|" + "---|" * len(results))
    for row in rows:
        print(f"| {row} | " + " | ".join(cell(r, row) for r in results.values()) + " |")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="200,1000,10000", help="current (production) images per check")
    ap.add_argument("--per-class", type=int, default=120, help="reference images per class (2 classes)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--hidden-units", type=int, default=256)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI: proves the script runs")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    per_class, repeat = args.per_class, args.repeat
    if args.smoke:
        sizes, per_class, repeat = [30, 50], 12, 1
    if not sizes or min(sizes) < 1:
        ap.error("--sizes: a comma list of positive image counts")

    print(
        f"# drift_throughput  {datetime.date.today()}  commit {commit()}  {platform.node()}  "
        f"{platform.processor() or platform.machine()}  cores={os.cpu_count()}  "
        f"torch {torch.__version__} threads={torch.get_num_threads()}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="drift-throughput-"))
    settings = engine.DeviceOptions.for_device("cpu")
    results: dict[int, dict[str, Any]] = {}
    try:
        mark = time.perf_counter()
        sampledata.make_sample_data(tmp, per_class=per_class, production=min(max(sizes), POOL))
        print(f"# sample images written in {time.perf_counter() - mark:.1f} s (not timed below)")
        model_path = tmp / "model.pt"
        save_serving_model(model_path, args.image_size, args.hidden_units)
        for n in sizes:
            cur_dir = current_folder(tmp / "production" / "iid", tmp / f"current-{n}", n)
            inputs = drift_step.DriftInputs(
                reference=str(tmp / "reference"),
                current=str(cur_dir),
                model=str(model_path),
                min_samples=1,
                report=str(tmp / f"report-{n}.html"),
            )
            # One untimed run first warms up imports, torch and the page cache (the smallest size only).
            warm = n == sizes[0] and not args.smoke
            whole, outcome = timed(functools.partial(drift_step.run, inputs), repeat, warmup=warm)
            staged = [staged_check(inputs, settings) for _ in range(repeat)]
            stages = {k: statistics.median(s.seconds[k] for s in staged) for k in staged[-1].seconds}
            last = staged[-1]
            columns = last.reference.shape[1]
            decision = decision_stage(last.reference, last.current, str(tmp / f"decision-{n}.html"), repeat)
            results[n] = {
                "check_seconds": whole,
                "detected": outcome.verdict.detected,
                "samples": outcome.samples,
                "reference_samples": outcome.reference_samples,
                "report_bytes": Path(inputs.report).stat().st_size,
                "stages": stages,
                "columns": columns,
                "decision": decision,
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n## Seconds per check (`drift_step.run`, what `freshness-trainer drift` calls), median of", repeat)
    print("| current images | reference images | seconds per check | images/s | verdict | HTML report KiB |")
    print("|---|---|---|---|---|---|")
    for n, r in results.items():
        rate = (n + r["reference_samples"]) / r["check_seconds"]
        print(
            f"| {n:,} | {r['reference_samples']} | {r['check_seconds']:.2f} | {rate:,.0f} | "
            f"{'drift' if r['detected'] else 'no drift'} | {r['report_bytes'] / 1024:,.0f} |"
        )
    print("\n## The same check split by stage (seconds, the same calls one by one)")
    by_size(results, "stage", list(next(iter(results.values()))["stages"]),
            lambda r, k: f"{r['stages'][k]:.3f} ({r['stages'][k] / r['stages']['total']:.0%})")
    print("\n## The decision stage alone on the same feature tables: seconds per check (ms per column test)")
    ways = list(next(iter(results.values()))["decision"])
    by_size(results, "way", ways,
            lambda r, w: f"{r['decision'][w]['seconds']:.3f} ({1000 * r['decision'][w]['seconds'] / r['columns']:.1f})")
    first = next(iter(results.values()))
    print(f"# {first['columns']} feature columns. Verdicts (drift?) per way and size:")
    for w in ways:
        print(f"#   {w}: " + ", ".join(f"{n:,}: {r['decision'][w]['detected']}" for n, r in results.items()))
    every = [r["check_seconds"] for r in results.values()] + [s for r in results.values() for s in r["stages"].values()]
    out = {"sizes": sizes, "results": results, "finite": bool(np.isfinite(every).all())}
    if args.smoke:
        print("smoke: ok")
    return out


if __name__ == "__main__":
    main()
    raise SystemExit(0)

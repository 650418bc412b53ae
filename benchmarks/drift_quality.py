"""Drift-detection power against sample size: our rule beside Evidently's default preset.

    python benchmarks/drift_quality.py [--smoke] [--model models/model.pt] [--trials 40] [--png power.png]

Both detectors see the same resampled production images in the same run:

* **ours** — ``freshness-trainer drift``'s rule (freshness_trainer.drift): serving-model features
  plus image statistics, Simes-combined K-S / chi-square p-values, default threshold 0.95;
* **evidently** — ``DataDriftPreset()`` with every default (per-column K-S below 1,000 reference
  rows, dataset drift when at least half the columns drift) run through Evidently 0.7.23 on raw
  pixel statistics: mean and standard deviation of each RGB channel and the 4x4 grid of mean grey
  levels (22 columns).

Without ``--model`` the serving model is trained first exactly as ``dvc exp run`` does with the
default params.yaml (prepare + train stages in a temporary directory). Rows are conditions of the
sample set (iid = no drift, so its row is the false-positive rate), columns sample sizes. Trials of
that table resample finite pools, so they overlap. ``--png PATH`` also draws the table as a figure,
detection rate against sample size per condition (benchmarks/drift_quality_png.py).

``--fpr-batches N`` measures the false-positive rate properly instead: N *independent* iid batches
(each a fresh render of the production stream with its own seed, never resampled), each checked
against two references side by side — images the serving model never trained on (a fresh render
with a seed of its own) and, for comparison, the images it was trained on — with a 95% Wilson
interval per rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "trainer"), str(ROOT)]  # run as a script: the packages and benchmarks/

from freshness_trainer import drift, engine, features, model, params, quality, sampledata  # noqa: E402
from freshness_trainer.stages import prepare, train  # noqa: E402

SIZES = (50, 100, 200, 500, 1000)


def pixel_statistics(batch: sampledata.Batch) -> pd.DataFrame:
    """22 raw pixel statistics per image: RGB means and stds, 4x4 grid of grey means. Pure."""
    x = batch.images.astype(np.float64) / 255.0
    cols: dict[str, np.ndarray] = {}
    for i, c in enumerate("rgb"):
        cols[f"{c}_mean"] = x[..., i].mean(axis=(1, 2))
        cols[f"{c}_std"] = x[..., i].std(axis=(1, 2))
    gray = x.mean(axis=-1)
    n, h, w = gray.shape
    cells = gray.reshape(n, 4, h // 4, 4, w // 4).mean(axis=(2, 4))
    for row in range(4):
        for col in range(4):
            cols[f"cell_{row}{col}"] = cells[:, row, col]
    return pd.DataFrame(cols)


def _evidently(reference: pd.DataFrame, current: pd.DataFrame, full_preset: bool) -> bool:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(reference.columns))
    metric = DataDriftPreset() if full_preset else DriftedColumnsCount()
    snap = Report([metric]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    for m in snap.dict()["metrics"]:
        if m.get("config", {}).get("type", "").endswith("DriftedColumnsCount"):
            return bool(m["value"]["share"] >= m["config"].get("drift_share", 0.5))
    raise RuntimeError("Evidently reported no DriftedColumnsCount")


class EvidentlyDefault:
    """Evidently's DataDriftPreset() decision: dataset drift when >= 50% of columns drift.

    The preset's decision is its ``DriftedColumnsCount(drift_share=0.5)`` metric with default
    per-column tests; running that metric alone gives the same answer without the preset's
    ~5 s of plotly rendering per call. The first call per (condition, size) runs the whole preset
    too and counts disagreements (printed; expected 0).
    """

    def __init__(self, check_every_cell: bool = True) -> None:
        self.check_every_cell = check_every_cell
        self.checked = 0
        self.disagreements = 0
        self._check_next = True

    def next_cell(self) -> None:
        self._check_next = self.check_every_cell or self.checked == 0

    def __call__(self, reference: pd.DataFrame, current: pd.DataFrame) -> bool:
        fast = _evidently(reference, current, full_preset=False)
        if self._check_next:
            self._check_next = False
            self.checked += 1
            self.disagreements += int(_evidently(reference, current, full_preset=True) != fast)
        return fast


def train_sample_model(workdir: Path, epochs: int | None) -> Path:
    """The sample project's model: prepare + train stages with the repository's params.yaml."""
    p = params.load(ROOT / "params.yaml")
    if epochs is not None:
        p = dataclasses.replace(p, train=dataclasses.replace(p.train, epochs=epochs))
    prepare.run(p, workdir / "data")
    out = workdir / "model.pt"
    train.run(p, workdir / "data", out, workdir / "train.json", device="cpu")
    return out


FPR_REFERENCE_SEED = 10_000  # the held-out reference: a production-stream render no batch reuses
FPR_BATCH_SEED = 20_000  # batch i renders with seed FPR_BATCH_SEED + i


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate ``hits / n``. Pure."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def false_positive_rates(ckpt: model.Checkpoint, *, batches: int, sizes: list[int], reference_size: int,
                         seed_offset: int = 0) -> dict[str, dict[int, int]]:
    """Drift verdicts on ``batches`` independent iid batches, against a held-out and a trained-on
    reference. Returns hits per reference kind and size."""
    settings = engine.Settings.for_device("cpu")
    classes = sampledata.BASE_CLASSES
    per_class = {c: reference_size // len(classes) for c in classes}
    held_out = sampledata.render(per_class, half="production", seed=FPR_REFERENCE_SEED + seed_offset)
    trained_on = sampledata.render(per_class, half="reference", seed=0)
    refs = {}
    for kind, batch in (("held-out", held_out), ("trained-on", trained_on)):
        table, pca = features.extract(ckpt, quality.to_tensor(batch), settings)
        refs[kind] = (table, pca)
    rule = quality.our_rule()
    hits = {kind: dict.fromkeys(sizes, 0) for kind in refs}
    rng = np.random.default_rng(seed_offset)
    for i in range(batches):
        batch = sampledata.render(sampledata.production_counts(max(sizes)), half="production",
                                  seed=FPR_BATCH_SEED + seed_offset + i)
        for kind, (ref_table, pca) in refs.items():
            table, _ = features.extract(ckpt, quality.to_tensor(batch), settings, pca=pca)
            for n in sizes:
                rows = rng.choice(len(table), size=n, replace=False)
                hits[kind][n] += bool(rule(ref_table, table.iloc[rows].reset_index(drop=True)))
    return hits


def fpr_main(ckpt: model.Checkpoint, batches: int, sizes: list[int], reference_size: int) -> None:
    started = time.perf_counter()
    hits = false_positive_rates(ckpt, batches=batches, sizes=sizes, reference_size=reference_size)
    print(f"# false-positive rate of the default rule (threshold {drift.DEFAULT_THRESHOLD}) over {batches} "
          f"independent iid batches; reference {reference_size} images; 95% Wilson interval")
    print("| reference | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for kind, per_size in hits.items():
        cells = []
        for n in sizes:
            lo, hi = wilson(per_size[n], batches)
            cells.append(f"{per_size[n] / batches:.3f} [{lo:.3f}, {hi:.3f}] ({per_size[n]}/{batches})")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print(f"# elapsed {time.perf_counter() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI: proves the script runs")
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--evidently-trials", type=int, help="trials for Evidently (default: --trials; it is slow)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fpr-batches", type=int, help="measure the FPR on this many independent iid batches instead")
    ap.add_argument("--fpr-reference", type=int, default=240, help="reference images for --fpr-batches")
    ap.add_argument("--png", type=Path, help="also write the table as a figure (detection rate vs sample size)")
    args = ap.parse_args(argv)
    sizes, trials, pool, epochs = args.sizes, args.trials, int(max(args.sizes) * 1.5), None
    if args.smoke:
        sizes, trials, pool, epochs = [50], 2, 100, 1
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="drift-quality-"))
    try:
        model_path = Path(args.model) if args.model else train_sample_model(tmp, epochs)
        ckpt = model.load(str(model_path))
        if args.fpr_batches:
            print(f"# drift_quality --fpr-batches  {datetime.date.today()}  {platform.node()}  "
                  f"{platform.processor() or platform.machine()}")
            fpr_main(ckpt, 2 if args.smoke else args.fpr_batches, sizes, args.fpr_reference)
            return 0
        batches = quality.render_conditions(pool, seed=args.seed)
        pools = quality.feature_pools(ckpt, batches, engine.Settings.for_device("cpu"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pixels = {name: pixel_statistics(b) for name, b in batches.items()}
    ours, theirs = quality.our_rule(), EvidentlyDefault(check_every_cell=not args.smoke)
    ev_trials = args.evidently_trials or trials
    print(f"# drift_quality  {datetime.date.today()}  {platform.node()}  {platform.processor() or platform.machine()}")
    print(f"# trials={trials} (evidently {ev_trials}) pool={pool} per condition, "
          f"reference={len(pools['reference'].table)} images; "
          f"cells: ours / evidently-default detection rate (iid row = false-positive rate)")
    rates: dict[str, dict[str, dict[int, float]]] = {}
    header = "| condition | accuracy |" + "".join(f" n={n} |" for n in sizes)
    print(header)
    print("|---|---|" + "---|" * len(sizes))
    for name in quality.CONDITIONS:
        cells = []
        for n in sizes:
            theirs.next_cell()
            a = quality.detection_rate(pools["reference"].table, pools[name].table, n=n, trials=trials,
                                       seed=args.seed + n, decide=ours)
            b = quality.detection_rate(pixels["reference"], pixels[name], n=n, trials=ev_trials,
                                       seed=args.seed + n, decide=theirs)
            cells.append(f" {a:.2f} / {b:.2f} |")
            rates.setdefault(name, {"ours": {}, "evidently": {}})
            rates[name]["ours"][n], rates[name]["evidently"][n] = a, b
        print(f"| {name} | {pools[name].accuracy:.3f} |" + "".join(cells), flush=True)
    print(f"# serving accuracy on reference images {pools['reference'].accuracy:.3f}; "
          f"elapsed {time.perf_counter() - started:.0f} s")
    print(f"# DataDriftPreset() vs its DriftedColumnsCount alone: {theirs.disagreements} disagreements "
          f"in {theirs.checked} checked trials")
    if args.png:
        from benchmarks.drift_quality_png import draw  # matplotlib only when asked

        png = draw(rates, sizes, args.png, f"trials {trials} (Evidently {ev_trials}), {datetime.date.today()}, "
                   f"{platform.node()}")
        print(f"# figure: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

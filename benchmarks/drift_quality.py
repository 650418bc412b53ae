"""Which rule retrains when: cost in accuracy points vs trigger rate, per shift and strength (issue 14).

    python benchmarks/drift_quality.py [--smoke] [--model M] [--batches 200] [--pool 5000]
                                       [--grid tuning|holdout] [--train-seed S] [--json out.json] [--png out.png]

One run, three retrain rules, all without labels, each on the same batches:

* **distribution** — today's rule: ``freshness-trainer drift``'s distribution test (per-feature K-S /
  chi-square p-values of the feature table, Simes-combined, threshold 0.95; ``drift_rule.decide``);
* **evidently** — Evidently's ``DataDriftPreset()`` default on the same columns: its default test
  per column (K-S for numerical columns while the reference has at most 1,000 rows, the two-sample
  proportions z-test for a two-valued categorical column, chi-square above two values; a column
  drifts at p < 0.05) and dataset drift when at least half of the columns drift. Computed with
  scipy (``evidently_default``): the numerical columns reuse the drift step's K-S p-values, which a
  test pins to Evidently's own; the decision is checked against the real preset on a sample of
  batches every run (``--evidently-checks``; disagreements are printed and fail the run);
* **impact** — the new trigger (``freshness_contract.trigger``, policy ``impact``): the estimated
  accuracy drop (reference accuracy on the held-out images minus the calibrated-confidence estimate,
  ``drift_step.signals``) above ``accuracyDrop`` (0.05), or a significant novelty share.

The reference of every rule is what the drift step now uses: the serving model's held-out images
stored in the model file (its validation split and the prepare stage's reference split). Without
``--model`` the model is trained once per run exactly as ``dvc exp run`` does with the repository's
params.yaml (prepare + train stages).

Shifts (benchmarks/drift_shifts.py) are generated with graded strengths. Each batch holds fresh
renders of the sample set's production stream: a pool of ``--pool`` images is rendered per cell
(one new seed per image: background crop, colour, size, place and the shift's own randomness; the
covariate shifts are applied to one shared base pool so their costs are paired) and each batch is
a uniform draw without replacement from it, so two batches share n²/pool images on average; the
n = 200 batch is a random subset of the n = 500 one. The handwritten digits behind the objects are
a finite set (~180 per class), as in every render of the sample set. The true accuracy of each
batch is measured with its labels, which no rule sees. Rates carry 95% Wilson intervals.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "trainer", ROOT / "contract"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from freshness_contract import trigger  # noqa: E402
from freshness_trainer import data, drift_rule, drift_step, engine, features, impact, model, params, sampledata  # noqa: E402
from freshness_trainer.stages import prepare, train  # noqa: E402

from benchmarks import drift_quality_report, drift_rules, drift_shifts  # noqa: E402

RULES = ("distribution", "evidently", "impact")
SIZES = (500, 200)
ACCURACY_DROP = trigger.DEFAULT_ACCURACY_DROP
POOL_SEED = 30_000  # production renders: seeds no sample-set folder or training split uses


def train_sample_model(workdir: Path, epochs: int | None, seed: int | None = None,
                       reference_per_class: int | None = None) -> Path:
    """The sample project's model: prepare + train stages with the repository's params.yaml
    (``epochs``, ``train.seed`` and ``data.reference_per_class`` replaced when given; the last changes
    the held-out reference only: the sample set's training split does not depend on it)."""
    p = params.load(ROOT / "params.yaml")
    if reference_per_class is not None:
        p = dataclasses.replace(p, data=dataclasses.replace(p.data, reference_per_class=reference_per_class))
    if epochs is not None:
        p = dataclasses.replace(p, train=dataclasses.replace(p.train, epochs=epochs))
    if seed is not None:
        p = dataclasses.replace(p, train=dataclasses.replace(p.train, seed=seed))
    prepare.run(p, workdir / "data")
    out = workdir / "model.pt"
    train.run(p, workdir / "data", out, workdir / "train.json", device="cpu")
    return out


wilson = drift_quality_report.wilson


# --- pools and batches ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Pool:
    """Per image: its feature-table row (as columns), its embedding and whether the serving model got
    it right. Columns rather than a DataFrame: drawing 10,000 batches through pandas would dominate."""

    columns: dict[str, np.ndarray]
    embeddings: np.ndarray
    correct: np.ndarray
    distance: np.ndarray
    """Novelty scores: distance to the nearest reference image, feature norm, early features' distance
    (``drift_rules.Impact.distances``)."""
    early: np.ndarray | None = None

    @staticmethod
    def of(table: pd.DataFrame, embeddings: np.ndarray, correct: np.ndarray, distance: np.ndarray,
           early: np.ndarray | None) -> Pool:
        return Pool({str(c): table[c].to_numpy() for c in table.columns}, embeddings, correct, distance, early)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)

    def take(self, idx: np.ndarray) -> Pool:
        return Pool({c: v[idx] for c, v in self.columns.items()}, self.embeddings[idx], self.correct[idx],
                    self.distance[idx], None if self.early is None else self.early[idx])

    @staticmethod
    def concat(parts: list[Pool]) -> Pool:
        return Pool({c: np.concatenate([p.columns[c] for p in parts]) for c in parts[0].columns},
                    np.concatenate([p.embeddings for p in parts]), np.concatenate([p.correct for p in parts]),
                    np.concatenate([p.distance for p in parts]),
                    None if any(p.early is None for p in parts) else np.concatenate([p.early for p in parts
                                                                                     if p.early is not None]))


@dataclasses.dataclass(frozen=True)
class Context:
    ckpt: model.Checkpoint
    reference: features.Extracted
    settings: engine.DeviceOptions
    tests: drift_rules.Tests | None
    """None above 1,000 reference rows, where Evidently's default changes its tests (novelty_power.py's
    large references need the impact signals only)."""
    impact: drift_rules.Impact

    def distribution_tests(self) -> drift_rules.Tests:
        """The distribution and Evidently rules' tests; ValueError naming the reference when it has none."""
        if self.tests is None:
            raise ValueError(f"reference: {len(self.reference.table)} rows; the distribution and Evidently rules "
                             f"are emulated up to {drift_rules.MAX_REFERENCE:,}")
        return self.tests


def load_context(model_file: str | None, epochs: int | None = None, train_seed: int | None = None,
                 reference_per_class: int | None = None) -> Context:
    """The serving model (``model_file``, or the sample project's trained now) and its reference signals."""
    tmp = Path(tempfile.mkdtemp(prefix="drift-quality-"))
    try:
        ckpt = model.load(model_file or str(train_sample_model(tmp, epochs, train_seed, reference_per_class)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if ckpt.heldout is None:
        raise SystemExit("--model: the model file has no held-out split; train it with this commit's train stage")
    if ckpt.calibration is None:
        raise SystemExit("--model: the model file has no calibration; train it with this commit's train stage")
    reference = features.reference_table(ckpt, ckpt.heldout)
    signals = drift_rules.Impact(impact.Calibration.from_json(ckpt.calibration), drift_step.estimate_reference(ckpt),
                                 reference.embeddings, reference.early)
    tests = drift_rules.Tests(reference.table) if len(reference.table) <= drift_rules.MAX_REFERENCE else None
    return Context(ckpt, reference, engine.DeviceOptions.for_device("cpu"), tests, signals)


def extract(ctx: Context, images: np.ndarray, labels: list[str], chunk: int = 2000) -> Pool:
    """The serving model's features of uint8 (N, H, W, 3) images, PCA of the reference."""
    parts = []
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(images[start:start + chunk]).permute(0, 3, 1, 2).contiguous()
        out = features.extract_all(ctx.ckpt, x, ctx.settings, pca=ctx.reference.pca)
        truth = np.asarray(labels[start:start + chunk], dtype=object)
        parts.append(Pool.of(out.table, out.embeddings, out.table["predicted"].to_numpy() == truth,
                             ctx.impact.distances(out.embeddings, out.early), out.early))
    return Pool.concat(parts)


def build_pools(ctx: Context, shifts: tuple[drift_shifts.Shift, ...], size: int, seed: int,
                progress: bool = True) -> dict[str, Pool]:
    """One pool per covariate cell (the iid base pool shifted), plus the mixtures' component pools."""
    base = sampledata.render(sampledata.production_counts(size), half="production", seed=POOL_SEED + seed)
    pools: dict[str, Pool] = {}
    for i, shift in enumerate(shifts):
        if shift.is_mixture:
            continue
        started = time.perf_counter()
        rng = np.random.default_rng([POOL_SEED + seed, i])
        chunks = [shift.apply(base.images[s:s + 1000], rng) for s in range(0, size, 1000)]
        pools[shift.name] = extract(ctx, np.concatenate(chunks), base.labels)
        if progress:
            print(f"#   pool {shift.name}: {size} images, {time.perf_counter() - started:.0f} s", flush=True)
    mix_size = max(size // 2, 1)
    if any(s.family == "new-class" for s in shifts):
        bees = sampledata.render({sampledata.NEW_CLASS: mix_size}, half="production", seed=POOL_SEED + seed + 1)
        pools["new-class"] = extract(ctx, bees.images, bees.labels)
    if any(s.family == "unseen-class" for s in shifts):
        wasps = sampledata.render({drift_shifts.UNSEEN_CLASS: mix_size}, half="production", seed=POOL_SEED + seed + 3,
                                  class_digits=drift_shifts.UNSEEN_DIGITS)
        pools["unseen-class"] = extract(ctx, wasps.images, wasps.labels)
    if any(s.family == "other-domain" for s in shifts):
        other = drift_shifts.line_drawings(sampledata.production_counts(mix_size), seed=POOL_SEED + seed + 2)
        pools["other-domain"] = extract(ctx, other.images, other.labels)
    return pools


def draw(pools: dict[str, Pool], shift: drift_shifts.Shift, sizes: tuple[int, ...], rng: np.random.Generator
         ) -> dict[int, Pool]:
    """One batch per size, nested: the smaller is a random subset of the larger (shares kept)."""
    main = pools["iid" if shift.is_mixture else shift.name]
    n_max = max(sizes)
    share = shift.value if shift.is_mixture else 0.0
    k_max = round(share * n_max)
    own = rng.choice(len(main.correct), size=n_max - k_max, replace=False)
    mixed = rng.choice(len(pools[shift.family].correct), size=k_max, replace=False) if k_max else None
    out = {}
    for n in sizes:
        k = round(share * n)
        parts = [main.take(own[: n - k])]
        if k and mixed is not None:
            parts.append(pools[shift.family].take(mixed[:k]))
        out[n] = Pool.concat(parts)
    return out


Check = drift_quality_report.Check


def check(ctx: Context, batch: Pool) -> Check:
    """All three rules on one batch, as the drift step and the operator apply them (labels unused)."""
    table = batch.table()
    tests = ctx.distribution_tests()
    pvalues = tests.pvalues(table)
    distribution = drift_rule.decide(pvalues).detected
    share, evidently = tests.evidently(table, pvalues)
    novelty, flags = ctx.impact.novelty(batch.distance)
    estimate = ctx.impact.estimate(table["confidence"].to_numpy(), novelty, flags)
    decision = trigger.decide("impact", distribution_detected=distribution, accuracy_drop=ACCURACY_DROP,
                              reference_accuracy=ctx.impact.reference_accuracy, estimated_accuracy=estimate.value,
                              novelty_detected=novelty.detected)
    return Check(distribution, evidently, decision.retrain, estimate.value, novelty.detected,
                 float(batch.correct.mean()), share)


def agrees_with_the_slow_path(ctx: Context, batch: Pool, c: Check) -> bool:
    """The fast paths against ``drift_rule.feature_pvalues``, ``drift_step.signals`` and ``DataDriftPreset()``."""
    table = batch.table()
    slow = drift_rule.feature_pvalues(ctx.reference.table, table)
    fast = ctx.distribution_tests().pvalues(table)
    same_p = slow.keys() == fast.keys() and all(abs(slow[k] - fast[k]) <= 1e-12 * max(1.0, slow[k]) for k in slow)
    share, dataset = drift_rules.evidently_preset(ctx.reference.table, table)
    current = features.Extracted(table, ctx.reference.pca, batch.embeddings, batch.early)
    # drift_step.signals reads the tables only; the image set stands in for the decoded window.
    window = data.ImageSet(torch.zeros((len(batch.correct), 3, 1, 1), dtype=torch.uint8), None, list(ctx.ckpt.classes))
    found = drift_step.signals(ctx.ckpt, drift_step.Tables(ctx.reference, current, None, window, None))
    nov = ctx.impact.novelty(batch.distance)[0]
    same_signals = (found.estimate is not None and abs(found.estimate.value - c.estimate) < 1e-9
                    and found.reference_accuracy == ctx.impact.reference_accuracy
                    and abs(found.novelty.share - nov.share) < 1e-12 and abs(found.novelty.p_value - nov.p_value) < 1e-9
                    and found.novelty.detected == nov.detected == c.novelty)
    return same_p and same_signals and dataset == c.evidently and abs(share - c.evidently_share) < 1e-9


def run_cell(ctx: Context, pools: dict[str, Pool], shift: drift_shifts.Shift, index: int, *, batches: int,
             sizes: tuple[int, ...], seed: int, evidently_checks: int) -> dict[str, Any]:
    """Every rule on ``batches`` batches of each size; Evidently's preset on the first few."""
    results: dict[int, list[Check]] = {n: [] for n in sizes}
    disagreements, verified = 0, 0
    for b in range(batches):
        drawn = draw(pools, shift, sizes, np.random.default_rng([seed, index, b]))
        for n in sizes:
            c = check(ctx, drawn[n])
            results[n].append(c)
            if b < evidently_checks and n == max(sizes):
                verified += 1
                disagreements += int(not agrees_with_the_slow_path(ctx, drawn[n], c))
    iid = float(pools["iid"].correct.mean())
    return drift_quality_report.summarise(shift, results, iid, cell_accuracy(pools, shift), verified, disagreements)


def cell_accuracy(pools: dict[str, Pool], shift: drift_shifts.Shift) -> float:
    """The serving model's accuracy on a cell, over its whole pool (a mixture: its shares' pools)."""
    iid = float(pools["iid"].correct.mean())
    if shift.is_mixture:
        return (1 - shift.value) * iid + shift.value * float(pools[shift.family].correct.mean())
    return float(pools[shift.name].correct.mean())


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "host": platform.node(),
            "cpus": os.cpu_count(), "torchThreads": torch.get_num_threads(), "load": list(os.getloadavg()),
            "commit": commit + ("-dirty" if dirty else ""), "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes for CI: runs every rule and every check")
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--batches", type=int, default=200, help="batches per cell and size")
    ap.add_argument("--pool", type=int, default=5000, help="fresh renders per covariate cell")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--evidently-checks", type=int, default=1, help="batches per cell checked with the real preset")
    ap.add_argument("--grid", choices=("tuning", "holdout"), default="tuning",
                    help="tuning: the shifts the rule was tuned on; holdout: families never run while tuning")
    ap.add_argument("--seed", type=int, default=0, help="the pools' and batches' seed")
    ap.add_argument("--train-seed", type=int,
                    help="train.seed of the model the run trains (default: params.yaml's); another training, same data")
    ap.add_argument("--json", help="write the table and the settings as JSON to this file")
    ap.add_argument("--png", help="write the cost vs trigger-rate plot to this file")
    args = ap.parse_args(argv)
    grid = drift_shifts.HOLDOUT_SHIFTS if args.grid == "holdout" else drift_shifts.SHIFTS
    shifts, sizes, batches, pool, epochs = grid, tuple(args.sizes), args.batches, args.pool, None
    if args.smoke:
        smoke = drift_shifts.SMOKE_SHIFTS if args.grid == "tuning" else drift_shifts.HOLDOUT_SMOKE_SHIFTS
        shifts, sizes, batches, pool, epochs = smoke, (60, 30), 3, 120, 1
    limits = (("--batches", batches, 1), ("--pool", pool, 1), ("--evidently-checks", args.evidently_checks, 0))
    for name, value, least in limits:
        if value < least:
            raise SystemExit(f"{name}: {value} is not allowed, it must be at least {least}")
    if args.train_seed is not None and args.model:
        raise SystemExit("--train-seed: the run trains no model when --model is given; use one or the other")
    if pool < max(sizes):
        raise SystemExit(f"--pool: {pool} is smaller than the largest --sizes value {max(sizes)}")
    started = time.perf_counter()
    meta = machine()
    ctx = load_context(args.model, epochs, args.train_seed)
    ckpt, signals = ctx.ckpt, ctx.impact
    print(f"# drift_quality  {meta['date']}  commit {meta['commit']}  {meta['host']}  {meta['cpus']} CPUs  "
          f"load {meta['load'][0]:.2f}  torch {meta['torch']}", flush=True)
    print(f"# reference: held-out images (validation + reference split), {len(ctx.reference.table)}; val_acc "
          f"{ckpt.metrics.get('val_acc', float('nan')):.3f}; held-out accuracy {signals.reference_accuracy:.3f}; "
          f"pool {pool}; batches {batches}; sizes {sizes}", flush=True)
    pools = build_pools(ctx, shifts, pool, args.seed)
    cells = []
    for i, shift in enumerate(shifts):
        cells.append(run_cell(ctx, pools, shift, i, batches=batches, sizes=sizes, seed=args.seed,
                              evidently_checks=min(args.evidently_checks, batches)))
        print(f"#   {shift.name}: done, {time.perf_counter() - started:.0f} s", flush=True)
    meta.update(elapsed_s=round(time.perf_counter() - started), load_end=list(os.getloadavg()), pool=pool,
                batches=batches, sizes=list(sizes), reference=len(ctx.reference.table),
                val_acc=ckpt.metrics.get("val_acc"), heldout_accuracy=signals.reference_accuracy,
                accuracy_drop=ACCURACY_DROP, grid=args.grid, train_seed=args.train_seed,
                threshold=drift_rule.DEFAULT_THRESHOLD)
    doc = drift_quality_report.document(meta, cells)
    print(drift_quality_report.markdown(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.png:
        drift_quality_report.plot(doc, args.png)
    checked = sum(c["evidentlyChecked"] for c in cells)
    wrong = sum(c["evidentlyDisagreements"] for c in cells)
    print(f"# fast paths vs drift_rule.feature_pvalues, drift_step.signals and DataDriftPreset(): {wrong} "
          f"disagreements in {checked} checked batches")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Label-free accuracy estimators side by side on drift_quality's covariate cells (issue 14's MAE target).

    python benchmarks/accuracy_estimators.py [--model M] [--pool 3000] [--windows 40]
    python benchmarks/accuracy_estimators.py --smoke --model M     # CI size

The drift step's estimate (``impact.window_estimate``: CBPE, the mean calibrated confidence, with the
images novelty flags counted as errors once novelty is detected) misses the true accuracy by more
than 3 points on the darkest and the most damaged cells of ``benchmarks/drift_quality.py``. This
prints, per covariate cell, the true accuracy of the cell's pool and each estimator's error (estimate
minus truth, points) on it, so another estimator can be judged on the same images before it goes
into the rule:

* ``cbpe``: the mean calibrated confidence over the whole pool (the rule without novelty flags);
* ``rule``: ``impact.window_estimate`` as the drift step runs it, the mean over ``--windows`` random
  windows of 500 (the size of drift_quality's target);
* ``atc``: average thresholded confidence (Garg et al. 2022): the share of images whose confidence
  exceeds the threshold at which the held-out images' share equals their accuracy;
* ``doc``: difference of confidences (Guillory et al. 2021): the held-out accuracy minus the drop of
  the mean raw confidence from the held-out images to the pool.

Pools, seeds and the model are drift_quality.py's (the same ``build_pools``), so the cells' true
accuracies are those of its table. Excluded: the mixtures (bees, drawings: not in the target) and
intervals (pool-level errors only; the rule's is a window mean).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "trainer", ROOT / "contract"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from freshness_trainer import drift_step, engine, features, impact, model  # noqa: E402

from benchmarks import drift_quality, drift_rules, drift_shifts  # noqa: E402

ESTIMATORS = ("cbpe", "rule", "atc", "doc")


def atc_threshold(confidence: NDArray[np.float64], accuracy: float) -> float:
    """The confidence above which the share of held-out images equals their accuracy. Pure."""
    return float(np.quantile(confidence, 1.0 - accuracy))


def errors(ctx: drift_quality.Context, pool: drift_quality.Pool, held_conf: NDArray[np.float64], held_acc: float,
           windows: int, window: int, rng: np.random.Generator) -> dict[str, float]:
    """Each estimator's estimate minus the pool's true accuracy."""
    conf = pool.columns["confidence"]
    true = float(pool.correct.mean())
    cal = ctx.impact.calibration
    rule = []
    for _ in range(windows):
        idx = rng.choice(len(conf), min(window, len(conf)), replace=False)
        found, flags = ctx.impact.novelty(pool.distance[idx])
        rule.append(ctx.impact.estimate(conf[idx], found, flags).value)
    return {"true": true,
            "cbpe": float(cal.apply(conf).mean()) - true,
            "rule": float(np.mean(rule)) - true,
            "atc": float((conf > atc_threshold(held_conf, held_acc)).mean()) - true,
            "doc": held_acc - (float(held_conf.mean()) - float(conf.mean())) - true}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--pool", type=int, default=3000, help="fresh renders per covariate cell")
    ap.add_argument("--windows", type=int, default=40, help="windows of 500 per cell for the rule's mean")
    ap.add_argument("--smoke", action="store_true", help="CI size: drift_quality's smoke shifts, pools of 120")
    args = ap.parse_args(argv)
    shifts, pool_size, windows, window, epochs = drift_shifts.SHIFTS, args.pool, args.windows, 500, None
    if args.smoke:
        shifts, pool_size, windows, window, epochs = drift_shifts.SMOKE_SHIFTS, 120, 3, 60, 1
    for name, value in (("--pool", pool_size), ("--windows", windows)):
        if value < 1:
            raise SystemExit(f"{name}: {value} is not allowed, it must be at least 1")
    covariate = tuple(s for s in shifts if not s.is_mixture)
    started = time.perf_counter()
    meta = drift_quality.machine()
    tmp = Path(tempfile.mkdtemp(prefix="accuracy-estimators-"))
    try:
        ckpt = model.load(args.model or str(drift_quality.train_sample_model(tmp, epochs)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if ckpt.heldout is None or ckpt.calibration is None:
        raise SystemExit("--model: the model file has no held-out split or calibration; train it with this commit")
    reference = features.reference_table(ckpt, ckpt.heldout)
    held_acc = drift_step.estimate_reference(ckpt)
    assert held_acc is not None
    signals = drift_rules.Impact(impact.Calibration.from_json(ckpt.calibration), held_acc, reference.embeddings,
                                 reference.early)
    ctx = drift_quality.Context(ckpt, reference, engine.DeviceOptions.for_device("cpu"),
                                drift_rules.Tests(reference.table), signals)
    held_conf = features.softmax(ckpt.heldout.logits.double().numpy()).max(axis=1)
    print(f"# accuracy_estimators  {meta['date']}  commit {meta['commit']}  {meta['host']}  {meta['cpus']} CPUs  "
          f"load {meta['load'][0]:.2f}; held-out accuracy {held_acc:.3f} on {len(held_conf)} images; "
          f"ATC threshold {atc_threshold(held_conf, held_acc):.4f}; pool {pool_size}", flush=True)
    pools = drift_quality.build_pools(ctx, covariate, pool_size, 0, progress=False)
    rng = np.random.default_rng(0)
    rows = {s.name: errors(ctx, pools[s.name], held_conf, held_acc, windows, window, rng) for s in covariate}
    print("| cell | true accuracy | " + " | ".join(f"{e} (pt)" for e in ESTIMATORS) + " |")
    print("|---" * (len(ESTIMATORS) + 2) + "|")
    for name, r in rows.items():
        print(f"| {name} | {r['true']:.3f} | " + " | ".join(f"{100 * r[e]:+.1f}" for e in ESTIMATORS) + " |")
    within = {e: sum(abs(r[e]) <= 0.03 for r in rows.values()) for e in ESTIMATORS}
    print(f"| pool-level error within 3 points | {len(rows)} cells | " + " | ".join(f"{within[e]}" for e in ESTIMATORS)
          + " |")
    print(f"# {time.perf_counter() - started:.0f} s; load at the end {drift_quality.machine()['load'][0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

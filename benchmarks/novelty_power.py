"""How large a share of a new class can the novelty test find, in how large a window? (issue 14)

    python benchmarks/novelty_power.py [--model M | --train-seeds S ... [--reference-per-class R]]
                                      [--windows 500 200] [--pool 3000] [--batches 200] [--json out.json]

The impact rule's novelty half (``impact.novelty_test``) counts a window's images beyond a
percentile of the reference's own scores and compares the count with the beta-binomial null of a
reference of ``n`` images. A new class at share ``π`` of a window of ``m`` adds ``m·π·(s - u)``
images to the count, where ``s`` is the share of the new class beyond the threshold (how well one
image's score separates it) and ``u`` the share of ordinary images beyond it. So its power is a
function of ``(π, m, n, s)`` alone, and two things follow that no threshold can change:

* **the per-image separation a target needs**: the smallest ``s`` at which one distance test (the
  90th percentile, at ``ALPHA / 3`` as in the rule) finds the share in 95% of windows, averaged over
  references drawn like the model's (``required_exceed``);
* **a floor set by the reference**: the threshold of ``n`` images is itself random (``u`` has sd
  ``≈ sqrt(0.09 / n)`` at the 90th percentile) and the null is widened by it; in a large window both
  that spread and the signal grow like ``m``, so without ``π·(s - u) > (z_alpha + z_0.95)·sd(u)`` no
  window is large enough (``reference_floor``).

Part 1 prints the required ``s`` per ``π``, ``m`` and ``n`` (no model). Part 2 trains the sample
project's model (or loads ``--model``), measures ``u`` and ``s`` per test column on drift_quality.py's
iid and bee pools (its renders and seeds), and puts the power this predicts for the realised
reference beside the rule's measured detection rate on drift_quality.py's own batches: the model is
checked against the rule before its table is believed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import beta, betabinom, binom, norm

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "trainer", ROOT / "contract"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from freshness_trainer import impact  # noqa: E402

from benchmarks import drift_quality as dq  # noqa: E402
from benchmarks import drift_shifts  # noqa: E402

TESTS = 3  # the rule's tests (last-layer distance, feature norm, early-feature distance), Bonferroni
ALPHA_EACH = impact.ALPHA / TESTS
SHARES = (0.1, 0.2, 0.3)
WINDOWS = (200, 500, 1000, 2000, 5000)
REFERENCES = (660, 2000, 5000)  # 660: the sample project's held-out images (reference_per_class 300)
TARGET = 0.95


@cache
def critical_count(m: int, n: int, q: float = impact.DISTANCE_PERCENTILE, alpha: float = ALPHA_EACH) -> int:
    """The smallest count of ``m`` window images beyond the conformal ``q``-th percentile of ``n``
    reference scores that the test calls significant (its beta-binomial p-value below ``alpha``)."""
    r = impact.conformal_rank(n, q)
    sf = betabinom.sf(np.arange(-1, m), m, n + 1 - r, r)  # sf[c] = P(count >= c)
    return int(np.flatnonzero(sf < alpha)[0]) if np.any(sf < alpha) else m + 1


def power_given(u: float | np.ndarray, m: int, share: float, exceed: float, crit: int) -> np.ndarray:
    """P(count >= ``crit``) when ``m - k`` ordinary images cross the threshold with chance ``u`` (one
    value or an array of them) and ``k = round(share·m)`` new-class images with chance ``exceed``."""
    k = round(share * m)
    novel = binom.pmf(np.arange(k + 1), k, exceed)
    # P(ordinary >= crit - j) for j new-class images beyond, per value of u
    ordinary = binom.sf(crit - np.arange(k + 1)[None, :] - 1, m - k, np.atleast_1d(u)[:, None])
    return np.asarray(ordinary @ novel)


def power(m: int, n: int, share: float, exceed: float, q: float = impact.DISTANCE_PERCENTILE,
          alpha: float = ALPHA_EACH, grid: int = 64) -> float:
    """One tail test's detection rate averaged over references of ``n`` images drawn like the window's
    ordinary images (``u`` ~ Beta(n + 1 - r, r)); ``exceed`` is held fixed."""
    r = impact.conformal_rank(n, q)
    us = beta.ppf((np.arange(grid) + 0.5) / grid, n + 1 - r, r)
    return float(power_given(us, m, share, exceed, critical_count(m, n, q, alpha)).mean())


def required_exceed(m: int, n: int, share: float, target: float = TARGET, q: float = impact.DISTANCE_PERCENTILE,
                    alpha: float = ALPHA_EACH) -> float | None:
    """The smallest per-image share beyond the threshold at which ``power`` reaches ``target`` (to 0.005),
    or None when even every new-class image beyond it is not enough."""
    if power(m, n, share, 1.0, q, alpha) < target:
        return None
    lo, hi = 1 - q / 100, 1.0
    while hi - lo > 0.005:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if power(m, n, share, mid, q, alpha) >= target else (mid, hi)
    return hi


def reference_floor(n: int, share: float, target: float = TARGET, q: float = impact.DISTANCE_PERCENTILE,
                    alpha: float = ALPHA_EACH) -> float:
    """The large-window limit of ``required_exceed`` (normal approximation): the count's excess over its
    mean must beat ``(z_alpha + z_target)`` standard deviations of the threshold's own ``u``, which grow with
    the window like its signal ``m·π·(s - u)`` does."""
    r = impact.conformal_rank(n, q)
    a, b = n + 1 - r, r
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return a / (a + b) + float(norm.isf(alpha) + norm.ppf(target)) * sd / share


def requirement_table() -> list[dict[str, Any]]:
    rows = []
    for n in REFERENCES:
        for share in SHARES:
            rows.append({"reference": n, "share": share, "floor": round(reference_floor(n, share), 3),
                         "required": {str(m): required_exceed(m, n, share) for m in WINDOWS}})
    return rows


def measured(ctx: dq.Context, pool: int, batches: int, seed: int, windows: tuple[int, ...] = dq.SIZES
             ) -> dict[str, Any]:
    """Per test column: ``u`` on the iid pool and ``s`` on the bee pool; per bee share and window size:
    each test's predicted power for this reference, and the rule's detection rate on drift_quality's batches."""
    cells = tuple(s for s in drift_shifts.SHIFTS if s.family in ("iid", "new-class"))
    pools = dq.build_pools(ctx, cells, pool, seed, progress=False)
    found = ctx.impact.novelty(pools["iid"].distance[:0])[0]
    thresholds = [found.threshold, found.norm_threshold, found.early_threshold]
    cols = [j for j, t in enumerate(thresholds) if t is not None]
    u = {j: float(np.mean(pools["iid"].distance[:, j] > thresholds[j])) for j in cols}
    s = {j: float(np.mean(pools["new-class"].distance[:, j] > thresholds[j])) for j in cols}
    n = found.reference_samples
    quantiles = impact.tail_percentiles(3)
    rows = []
    for index, shift in enumerate(drift_shifts.SHIFTS):
        if shift.family != "new-class":
            continue
        for m in windows:
            per_test = {j: float(power_given(u[j], m, shift.value, s[j],
                                          critical_count(m, n, quantiles[j], impact.ALPHA / len(cols)))[0])
                        for j in cols}
            hits = 0
            for b in range(batches):
                batch = dq.draw(pools, shift, windows, np.random.default_rng([seed, index, b]))[m]
                hits += ctx.impact.novelty(batch.distance)[0].detected
            rows.append({"share": shift.value, "window": m, "measured": hits / batches,
                         "predictedBest": max(per_test.values()),
                         "predictedAny": 1 - float(np.prod([1 - p for p in per_test.values()]))})
    names = {0: "distance", 1: "norm", 2: "early"}
    return {"reference": n, "u": {names[j]: u[j] for j in cols}, "s": {names[j]: s[j] for j in cols}, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--train-seeds", type=int, nargs="+",
                    help="train.seed of each model the run trains, one after the other (default: 0)")
    ap.add_argument("--pool", type=int, default=3000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--windows", type=int, nargs="+", default=list(dq.SIZES),
                    help="window sizes of part 2 (drift_quality's: 500 200; each draw nests the smaller in the larger)")
    ap.add_argument("--reference-per-class", type=int,
                    help="data.reference_per_class of the models the run trains (params.yaml's by default)")
    ap.add_argument("--no-model", action="store_true", help="part 1 only")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.model and (args.train_seeds is not None or args.reference_per_class is not None):
        raise SystemExit("--train-seeds, --reference-per-class: the run trains no model when --model is given")
    meta = dq.machine()
    print(f"# novelty_power  {meta['date']}  commit {meta['commit']}  one distance test at the "
          f"{impact.DISTANCE_PERCENTILE:g}th percentile, alpha {ALPHA_EACH:.4f}, target {TARGET:.0%}")
    table = requirement_table()
    print("\nPer-image share of the new class beyond the threshold needed to find it in 95% of windows "
          "(- : not even with every image beyond)\n")
    print("| reference n | new-class share | " + " | ".join(f"m = {m}" for m in WINDOWS) + " | floor (m → ∞) |")
    print("|---|---|" + "---|" * len(WINDOWS) + "---|")
    for r in table:
        cells = ["-" if v is None else f"{v:.2f}" for v in r["required"].values()]
        print(f"| {r['reference']} | {r['share']:.0%} | " + " | ".join(cells) + f" | {r['floor']:.2f} |")
    out: dict[str, Any] = {"meta": meta, "required": table, "models": []}
    seeds = args.train_seeds or [0]
    models = [] if args.no_model else [(args.model, None)] if args.model else [(None, s) for s in seeds]
    for model_file, train_seed in models:
        ctx = dq.load_context(model_file, None, train_seed, args.reference_per_class)
        got = {"trainSeed": train_seed, "heldoutAccuracy": ctx.impact.reference_accuracy,
               **measured(ctx, args.pool, args.batches, args.seed, tuple(args.windows))}
        out["models"].append(got)
        print(f"# model {model_file or f'train.seed {train_seed}'} measured", file=sys.stderr, flush=True)
    if out["models"]:
        names = list(out["models"][0]["u"])
        print("\nPer model: share beyond each test's threshold (iid u | bees s), then per bee share and window "
              "the detection rate predicted from them (best single test … any test, independent) and the "
              "rule's, measured\n")
        mixes = [(r["share"], r["window"]) for r in out["models"][0]["rows"]]
        print("| model | held-out acc. | " + " | ".join(f"{k}: u \\| s" for k in names) + " | "
              + " | ".join(f"bees {p:.0%}, m = {m}" for p, m in mixes) + " |")
        print("|---|---|" + "---|" * (len(names) + len(mixes)))
        for g in out["models"]:
            label = "--model" if g["trainSeed"] is None else f"train.seed {g['trainSeed']}"
            print(f"| {label} | {g['heldoutAccuracy']:.3f} | "
                  + " | ".join(f"{g['u'][k]:.3f} \\| {g['s'][k]:.3f}" for k in names) + " | "
                  + " | ".join(f"{r['predictedBest']:.2f}…{r['predictedAny']:.2f}: **{r['measured']:.2f}**"
                               for r in g["rows"]) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

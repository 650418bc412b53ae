"""Would a floor on the novelty share's excess trade the wrong retrains for the right ones? (issue 14)

    python benchmarks/novelty_gate.py [--model M | --train-seed S [--reference-per-class R]] [--pool 3000]
                                      [--batches 200] [--gates 0 0.02 0.03 0.05] [--json out.json]

The impact rule retrains when the estimated accuracy drop exceeds ``accuracyDrop`` or when the
novelty test is significant (``freshness_contract.trigger``). Significance alone fires on unusual
but harmless changes the reference never showed (a mirror, a ±30% colour cast, 2% dead pixels:
benchmarks/README.md, the held-out grid). This asks whether the novelty half should also require
the window's share beyond the thresholds to exceed the reference's own rate by a floor ``g`` —
"the novel images could cost at least g" — and what that does to the new class.

One pass over both grids of benchmarks/drift_quality.py (the same model, pools, batches and seeds
as its run with ``--pool``/``--batches``/``--seed``): per batch, the rule's novelty test and
estimate; then per cell, the impact rule's trigger rate with each gate (gate 0 is the rule as
built) and the mean excess share (share minus reference rate). Labels are used only for the cost.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "trainer", ROOT / "contract"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from freshness_contract import trigger  # noqa: E402

from benchmarks import drift_quality as dq  # noqa: E402
from benchmarks import drift_quality_report, drift_shifts  # noqa: E402

GATES = (0.0, 0.02, 0.03, 0.05)


@dataclass(frozen=True)
class Batch:
    """One batch's label-free signals."""

    estimate: float  # the estimated accuracy
    novelty: bool  # the novelty test was significant
    excess: float  # novelty share minus the reference rate


def retrains(b: Batch, gate: float, reference_accuracy: float | None) -> bool:
    """``freshness_contract.trigger``'s impact policy with the novelty half gated: significant *and* an
    excess share of at least ``gate``. No distribution test is run: the policy consults it only when
    the reference accuracy is missing."""
    return trigger.decide("impact", distribution_detected=False, accuracy_drop=dq.ACCURACY_DROP,
                          reference_accuracy=reference_accuracy, estimated_accuracy=b.estimate,
                          novelty_detected=b.novelty and b.excess >= gate).retrain


def cell_row(name: str, kind: str, cost: float, batches: Sequence[Batch], gates: Sequence[float],
             reference_accuracy: float | None) -> dict[str, Any]:
    """One cell: its class and cost, the mean excess share, and the trigger rate per gate."""
    return {"cell": name, "class": kind, "cost": round(cost, 2),
            "excess": round(float(np.mean([b.excess for b in batches])), 4),
            "rates": {str(g): sum(retrains(b, g, reference_accuracy) for b in batches) / len(batches) for g in gates}}


def summary(rows: Sequence[dict[str, Any]], gates: Sequence[float]) -> dict[str, dict[str, Any]]:
    """Per gate: the worst harmless cell (highest rate) and the worst harmful one (lowest), as in the targets."""
    out: dict[str, dict[str, Any]] = {}

    def label(r: dict[str, Any] | None) -> str | None:
        return None if r is None else f"{r.get('grid', '')} {r['cell']}".strip()

    harmless = [r for r in rows if r["class"] == "harmless"]
    harmful = [r for r in rows if r["class"] == "harmful"]
    for g in gates:
        key = str(g)
        out[key] = {
            "harmlessOk": sum(r["rates"][key] <= 0.05 for r in harmless), "harmless": len(harmless),
            "harmfulOk": sum(r["rates"][key] >= 0.95 for r in harmful), "harmful": len(harmful),
            "worstHarmless": label(max(harmless, key=lambda r: r["rates"][key], default=None)),
            "worstHarmful": label(min(harmful, key=lambda r: r["rates"][key], default=None)),
        }
    return out


def batches_of(ctx: dq.Context, pools: dict[str, dq.Pool], shift: drift_shifts.Shift, index: int, n: int,
               count: int, seed: int) -> list[Batch]:
    """The batches drift_quality.py draws for this cell (its ``draw`` and seeds), size ``n``: drawn
    with its largest size too, since its smaller batches are subsets of the larger."""
    out = []
    sizes = tuple({max(dq.SIZES), n})
    for b in range(count):
        batch = dq.draw(pools, shift, sizes, np.random.default_rng([seed, index, b]))[n]
        found, flags = ctx.impact.novelty(batch.distance)
        estimate = ctx.impact.estimate(batch.columns["confidence"], found, flags).value
        out.append(Batch(estimate, found.detected, found.share - found.reference_rate))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", help="serving model file (default: train the sample project's model)")
    ap.add_argument("--train-seed", type=int, help="train.seed of the model the run trains")
    ap.add_argument("--reference-per-class", type=int,
                    help="data.reference_per_class of the model the run trains (params.yaml's by default)")
    ap.add_argument("--pool", type=int, default=3000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=500, choices=dq.SIZES)
    ap.add_argument("--gates", type=float, nargs="+", default=list(GATES))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.model and (args.train_seed is not None or args.reference_per_class is not None):
        raise SystemExit("--train-seed, --reference-per-class: the run trains no model when --model is given")
    meta = dq.machine()
    ctx = dq.load_context(args.model, None, args.train_seed, args.reference_per_class)
    ckpt, signals = ctx.ckpt, ctx.impact
    print(f"# novelty_gate  {meta['date']}  commit {meta['commit']}  {meta['cpus']} CPUs  "
          f"load {meta['load'][0]:.2f}; val_acc {ckpt.metrics.get('val_acc', float('nan')):.3f}, "
          f"held-out accuracy {signals.reference_accuracy:.3f} on {len(ctx.reference.table)} images, calibration "
          f"slope {signals.calibration.a:.3f} intercept {signals.calibration.b:.3f}; pool {args.pool}, "
          f"{args.batches} batches of {args.size} per cell; accuracyDrop {trigger.DEFAULT_ACCURACY_DROP}")
    rows: list[dict[str, Any]] = []
    for grid, shifts in (("tuning", drift_shifts.SHIFTS), ("holdout", drift_shifts.HOLDOUT_SHIFTS)):
        pools = dq.build_pools(ctx, shifts, args.pool, args.seed, progress=False)
        iid = float(pools["iid"].correct.mean())
        for i, shift in enumerate(shifts):
            cost = 100 * (iid - dq.cell_accuracy(pools, shift))
            got = batches_of(ctx, pools, shift, i, args.size, args.batches, args.seed)
            rows.append({"grid": grid, **cell_row(shift.name, drift_quality_report.classify(shift, cost), cost, got,
                                                  args.gates, signals.reference_accuracy)})
    print("\n| grid | cell | class | cost (pt) | excess share | " + " | ".join(f"gate {g}" for g in args.gates) + " |")
    print("|---|---|---|---|---|" + "---|" * len(args.gates))
    for r in rows:
        print(f"| {r['grid']} | {r['cell']} | {r['class']} | {r['cost']:.1f} | {r['excess']:+.3f} | "
              + " | ".join(f"{100 * r['rates'][str(g)]:.0f}%" for g in args.gates) + " |")
    totals = summary(rows, args.gates)
    print("\n| gate | harmless ≤ 5% | worst harmless | harmful ≥ 95% | worst harmful |\n|---|---|---|---|---|")
    for g, s in totals.items():
        print(f"| {g} | {s['harmlessOk']}/{s['harmless']} | {s['worstHarmless']} | {s['harmfulOk']}/{s['harmful']} | "
              f"{s['worstHarmful']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows, "summary": totals}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The drift-quality benchmark's results: per-cell summary, targets, markdown table, PNG. Pure but ``plot``.

A cell is one shift at one strength (benchmarks/drift_shifts.py). Its *cost* is the accuracy the
serving model loses on it, in points, against the iid pool, measured with labels over the whole
pool; its *class* follows from that cost: harmless (< 1 point), harmful (≥ 5 points) or between.
The targets are issue 14's (``TARGETS``), checked per rule so the three rules are compared on the
same cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.drift_shifts import Shift

HARMLESS_BELOW = 1.0  # accuracy points
HARMFUL_FROM = 5.0
RULES = ("distribution", "evidently", "impact")
TARGETS = {  # {big}, {small}: the run's largest and smallest batch size (issue 14: 500 and 200)
    "iid": "iid: trigger rate ≤ 5% (n = {big})",
    "harmless": "harmless (cost < 1 pt): trigger rate ≤ 5% (n = {big})",
    "harmful": "harmful (cost ≥ 5 pt): trigger rate ≥ 95% (n = {big})",
    "harmful200": "harmful (cost ≥ 5 pt): trigger rate ≥ 80% (n = {small})",
    "mae": "estimated accuracy: MAE ≤ 3 pt per covariate shift (n = {big})",
    "novelty": "novelty flags new class 30% in ≥ 95% of batches (n = {big})",
}
NEW_CLASSES = ("new-class", "unseen-class")  # bees (the tuning grid), wasps (the held-out grid)


@dataclass(frozen=True)
class Check:
    """What each rule says about one batch, and the batch's true accuracy (labels no rule sees)."""

    distribution: bool
    evidently: bool
    impact: bool
    estimate: float
    novelty: bool
    accuracy: float
    evidently_share: float


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of ``hits / n``."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def _rate(hits: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(hits, n)
    return {"hits": hits, "batches": n, "rate": hits / n if n else 0.0, "low": lo, "high": hi}


def classify(shift: Shift, cost: float) -> str:
    """A cell's class from its cost in accuracy points: iid, harmless, between or harmful."""
    if shift.family == "iid":
        return "iid"
    return "harmless" if cost < HARMLESS_BELOW else "harmful" if cost >= HARMFUL_FROM else "between"


def summarise(shift: Shift, results: Mapping[int, Sequence[Check]], iid: float, accuracy: float,
              verified: int, disagreements: int) -> dict[str, Any]:
    """One cell's row: cost (``iid`` and the cell's ``accuracy`` over their pools), class, and per
    size each rule's trigger rate, the estimate's error and the novelty rate."""
    cost = 100 * (iid - accuracy)
    kind = classify(shift, cost)
    per_size: dict[str, Any] = {}
    for n, checks in results.items():
        b = len(checks)
        err = np.array([c.estimate - c.accuracy for c in checks])
        per_size[str(n)] = {
            **{rule: _rate(sum(bool(getattr(c, rule)) for c in checks), b) for rule in RULES},
            "novelty": _rate(sum(c.novelty for c in checks), b),
            "estimateMae": float(100 * np.abs(err).mean()) if b else 0.0,
            "estimateBias": float(100 * err.mean()) if b else 0.0,
            "batchAccuracy": float(np.mean([c.accuracy for c in checks])) if b else 0.0,
        }
    return {"name": shift.name, "family": shift.family, "strength": shift.label, "value": shift.value,
            "mixture": shift.is_mixture, "accuracy": accuracy, "cost": cost, "class": kind, "sizes": per_size,
            "evidentlyChecked": verified, "evidentlyDisagreements": disagreements}


def _target(cells: list[dict[str, Any]], key: str, rule: str) -> dict[str, Any] | None:
    """Whether ``rule`` meets target ``key`` on every cell it applies to; the worst cell."""
    big, small = (max(int(s) for s in cells[0]["sizes"]), min(int(s) for s in cells[0]["sizes"])) if cells else (0, 0)
    if key in ("mae", "novelty") and rule != "impact":
        return None
    if key == "mae":
        rows = [(c, c["sizes"][str(big)]["estimateMae"]) for c in cells if not c["mixture"] and c["class"] != "iid"]
        ok = [v <= 3.0 for _, v in rows]
        worst = max(rows, key=lambda r: r[1]) if rows else None
    elif key == "novelty":
        rows = [(c, c["sizes"][str(big)]["novelty"]["rate"]) for c in cells
                if c["family"] in NEW_CLASSES and abs(c["value"] - 0.3) < 1e-9]
        ok = [v >= 0.95 for _, v in rows]
        worst = min(rows, key=lambda r: r[1]) if rows else None
    else:
        kind = "harmful" if key.startswith("harmful") else key
        n = small if key == "harmful200" else big
        rows = [(c, c["sizes"][str(n)][rule]["rate"]) for c in cells if c["class"] == kind]
        if kind == "harmful":
            bound = 0.80 if key == "harmful200" else 0.95
            ok = [v >= bound for _, v in rows]
            worst = min(rows, key=lambda r: r[1]) if rows else None
        else:
            ok = [v <= 0.05 for _, v in rows]
            worst = max(rows, key=lambda r: r[1]) if rows else None
    if worst is None:
        return {"met": None, "cells": 0, "passed": 0, "worst": None, "value": None}
    return {"met": all(ok), "cells": len(ok), "passed": sum(ok), "worst": worst[0]["name"], "value": worst[1]}


def document(meta: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    targets = {key: {rule: _target(cells, key, rule) for rule in RULES} for key in TARGETS}
    sizes = [int(s) for s in cells[0]["sizes"]] if cells else [0]
    text = {k: v.format(big=max(sizes), small=min(sizes)) for k, v in TARGETS.items()}
    return {"meta": meta, "cells": cells, "targets": targets, "targetText": text}


def _fmt_rate(r: dict[str, Any]) -> str:
    return f"{r['rate']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def markdown(doc: dict[str, Any]) -> str:
    """The results table and the targets table, as markdown."""
    cells = doc["cells"]
    sizes = [int(s) for s in cells[0]["sizes"]] if cells else []
    big = max(sizes) if sizes else 0
    head = "| shift | strength | cost (pt) | class |"
    for n in sizes:
        head += "".join(f" {rule} n={n} |" for rule in RULES)
    head += f" est. MAE n={big} (bias), pt | novelty n={big} |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        row = f"| {c['family']} | {c['strength'] or '-'} | {c['cost']:+.1f} | {c['class']} |"
        for n in sizes:
            row += "".join(f" {_fmt_rate(c['sizes'][str(n)][rule])} |" for rule in RULES)
        s = c["sizes"][str(big)]
        row += f" {s['estimateMae']:.1f} ({s['estimateBias']:+.1f}) | {s['novelty']['rate']:.2f} |"
        lines.append(row)
    lines += ["", "| target | " + " | ".join(RULES) + " |", "|---|" + "---|" * len(RULES)]
    for key, text in doc["targetText"].items():
        out = []
        for rule in RULES:
            t = doc["targets"][key][rule]
            if t is None:
                out.append("-")
            elif t["met"] is None:
                out.append("no such cell")
            else:
                out.append(f"{'met' if t['met'] else 'MISSED'}: {t['passed']}/{t['cells']} cells pass "
                           f"(worst {t['worst']}: {t['value']:.2f})")
        lines.append(f"| {text} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: str) -> None:
    """Cost in accuracy points vs trigger rate, one panel per rule, one line per shift family.

    Touches the filesystem (writes ``path``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = doc["cells"]
    sizes = sorted({int(s) for s in cells[0]["sizes"]}, reverse=True)
    families = list(dict.fromkeys(c["family"] for c in cells))
    colours = [plt.get_cmap("tab20")(i) for i in range(0, 20, 2)] + [plt.get_cmap("tab20")(i) for i in range(1, 20, 2)]
    fig, axes = plt.subplots(1, len(RULES), figsize=(6 * len(RULES), 5), sharey=True)
    for ax, rule in zip(axes, RULES, strict=True):
        ax.axvspan(min(min(c["cost"] for c in cells), -1) - 1, HARMLESS_BELOW, color="tab:green", alpha=0.08)
        ax.axvspan(HARMFUL_FROM, max(max(c["cost"] for c in cells), 10) + 2, color="tab:red", alpha=0.08)
        ax.axhline(0.05, color="grey", lw=0.8, ls=":")
        ax.axhline(0.95, color="grey", lw=0.8, ls=":")
        for fam, colour in zip(families, colours[: len(families)], strict=True):
            rows = sorted((c for c in cells if c["family"] == fam), key=lambda c: c["cost"])
            for n, style in zip(sizes, ("-o", "--x"), strict=False):
                ax.plot([c["cost"] for c in rows], [c["sizes"][str(n)][rule]["rate"] for c in rows], style,
                        color=colour, ms=4, lw=1, label=f"{fam}" if n == sizes[0] else None)
        ax.set_xscale("symlog", linthresh=2)
        ax.set_title(f"{rule} (solid n={sizes[0]}" + (f", dashed n={sizes[1]})" if len(sizes) > 1 else ")"))
        ax.set_xlabel("accuracy cost (points; green < 1 harmless, red ≥ 5 harmful)")
    axes[0].set_ylabel("retrain trigger rate")
    axes[-1].legend(fontsize=7, loc="center right")
    meta = doc["meta"]
    fig.suptitle(f"drift_quality {meta.get('date', '')} commit {meta.get('commit', '')}, "
                 f"{meta.get('batches', '')} batches per cell", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

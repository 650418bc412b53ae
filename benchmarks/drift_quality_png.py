"""The drift-quality benchmark's main figure as a PNG (matplotlib's Agg renderer, no display).

One panel per condition of the sample set: the detection rate of each detector (ours, Evidently's
default preset) against the sample size, log-scaled. The ``iid`` panel is the false-positive rate,
with the 5% the default threshold promises drawn in. The image is WIDTH x HEIGHT pixels.
``benchmarks/drift_quality.py --png PATH`` writes it from the same numbers as its table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

WIDTH, HEIGHT, DPI = 1500, 900, 100
STYLE = {"ours": ("#1f5f99", "-", "o"), "evidently": ("#d64545", "--", "s")}

Rates = Mapping[str, Mapping[str, Mapping[int, float]]]
"""condition -> detector -> sample size -> share of trials in which the detector fired."""


def draw(rates: Rates, sizes: Sequence[int], path: Path, subtitle: str = "") -> Path:
    cols = min(3, max(1, len(rates)))
    rows = math.ceil(len(rates) / cols) or 1
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax, (condition, by_detector) in zip(axes, rates.items(), strict=False):
        for detector, per_size in by_detector.items():
            colour, line, marker = STYLE.get(detector, ("#555555", ":", "^"))
            xs = [n for n in sizes if n in per_size]
            ax.plot(xs, [per_size[n] for n in xs], color=colour, ls=line, marker=marker, label=detector)
        if condition == "iid":
            ax.axhline(0.05, color="#777777", lw=0.8, ls=":", label="5% (threshold 0.95)")
            ax.set_title("iid: false-positive rate")
        else:
            ax.set_title(f"{condition}: detection rate")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(list(sizes), [str(n) for n in sizes])
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center right")
    for ax in axes[len(rates) :]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols :]:
        ax.set_xlabel("images per check (sample size)")
    for ax in axes[::cols]:
        ax.set_ylabel("share of trials that fired")
    fig.suptitle(
        "Drift detection vs sample size: ours vs Evidently's DataDriftPreset()" + (f"\n{subtitle}" if subtitle else "")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path

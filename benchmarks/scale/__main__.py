"""``python -m benchmarks.scale``: the command line (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.scale import __doc__ as DOC
from benchmarks.scale.bench import run_size
from benchmarks.scale.model import (
    Config,
)
from benchmarks.scale.report import check_smoke, figure, growth_table, size_table, to_json


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None, Path | None]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=(DOC or "").splitlines()[0])
    p.add_argument("--sizes", default="100,300,1000", help="comma list of N (default 100,300,1000)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per size, order alternating (default 3)")
    p.add_argument("--rate", type=float, default=2.0, help="drift checks per second at every N (default 2)")
    p.add_argument("--interval", type=int, default=None, help="fixed drift interval in seconds instead of --rate")
    p.add_argument("--window", type=float, default=120, help="busy measuring window per operator, s (default 120)")
    p.add_argument("--idle-window", type=float, default=60, help="idle measuring window, s; 0 skips (default 60)")
    p.add_argument("--baseline-tick", type=float, default=5, help="the baseline's timer interval, s (default 5)")
    p.add_argument("--ours-src", type=Path, default=None, help="also run our operator from this source tree")
    p.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster instead of a fresh local one")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--png", type=Path, default=None, help="the figure (default: --json with .png)")
    p.add_argument(
        "--lead", type=float, default=None, help="s from a wiped slate to the first checks due (20 + 0.15 N)"
    )
    p.add_argument("--settle", type=float, default=None, help="s from then to the window's opening (2 + 0.06 N)")
    p.add_argument(
        "--serving",
        choices=("pods", "paused"),
        default="pods",
        help="pods: each serving Deployment runs one kwok pod (default); paused: Deployments paused, no "
        "ReplicaSet nor pod (seeding 10,000 pods takes the local controller-manager most of an hour)",
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="ours alone (at 10,000 objects the baseline's per-object timers swamp the local API server)",
    )
    p.add_argument("--smoke", action="store_true", help="CI: N=5, 2 reps, short windows, correctness (never time)")
    a = p.parse_args(argv)
    for flag in ("lead", "settle"):
        if getattr(a, flag) is not None and getattr(a, flag) < 0:
            p.error(f"--{flag} must be 0 or more seconds, got {getattr(a, flag)}")
    if a.reps < 1:
        p.error(f"--reps must be at least 1, got {a.reps}")
    if a.ours_src is not None and not (a.ours_src / "operator" / "freshness_operator").is_dir():
        p.error(f"--ours-src {a.ours_src}: no operator/freshness_operator there (want a checkout of this repository)")
    src = a.ours_src.resolve() if a.ours_src else None
    if a.smoke:
        cfg = Config((5,), 0.5, 10, 20, 8, 2, a.kubeconfig, True, 2, src)
    else:
        sizes = tuple(int(s) for s in a.sizes.split(",") if s.strip())
        cfg = Config(
            sizes,
            a.rate,
            a.interval,
            a.window,
            a.idle_window,
            a.baseline_tick,
            a.kubeconfig,
            False,
            a.reps,
            src,
            a.lead,
            a.settle,
            a.serving,
            not a.no_baseline,
        )
    png = a.png or (a.json.with_suffix(".png") if a.json else None)
    return cfg, a.json, png


def main(argv: Sequence[str] | None = None) -> int:
    cfg, json_path, png = parse_args(argv)
    results = []
    for n in cfg.sizes:
        result = run_size(cfg, n)
        results.append(result)
        print(f"\n{size_table(result, cfg)}\n", flush=True)
        if json_path is not None:  # after every size: a later one failing keeps the earlier ones
            json_path.write_text(json.dumps(to_json(results, cfg), indent=2))
        if png is not None:
            figure(results, cfg, png)
    if len(results) > 1:
        print(f"Growth with N (medians over repetitions):\n\n{growth_table(results, cfg)}\n")
    if cfg.smoke:
        problems = check_smoke(results, cfg)
        for problem in problems:
            print(f"SMOKE FAILED: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The same candidate trained by 1 and by 2 CPU ranks: seconds per epoch and val_acc (issue 16).

Runs the example project's own stages (``freshness_trainer.stages.prepare`` once, then ``train``
and ``evaluate`` per configuration) in a temporary copy of ``params.yaml`` with the given
overrides, as ``dvc exp run`` would run them. A configuration ``RxT`` is R ranks of T torch
threads each (default: ``1xC`` and ``2x(C/2)`` for C cores, the same cores either way; add ``1x1``
to see what threading alone gives). R > 1: the train stage launches ``torchrun --standalone
--nproc-per-node=R`` (``FRESHNESS_NPROC_PER_NODE``, the launch the operator asks for with
``gpusPerNode``), DDP over gloo on loopback; a 2-pod candidate runs the same code over the
pods' network instead (tests/cluster/test_multinode.py). ``train.batch_size`` is the global batch
in both, so both take the same optimisation steps. Configurations alternate over ``--reps``.

    .venv/bin/python -m benchmarks.ddp_cpu                 # 20 epochs (params.yaml), 2 repetitions
    .venv/bin/python -m benchmarks.ddp_cpu --smoke         # CI size: 1 epoch, asserts it ran
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _stage(name: str, cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", f"freshness_trainer.stages.{name}"], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def params_with(sets: list[str]) -> dict[str, Any]:
    """The example project's params.yaml with ``section.key=value`` overrides (values parsed as YAML)."""
    params: dict[str, Any] = yaml.safe_load((ROOT / "params.yaml").read_text())
    for item in sets:
        key, _, value = item.partition("=")
        section, _, leaf = key.partition(".")
        params[section][leaf] = yaml.safe_load(value)
    return params


def short_commit() -> str:
    """The checkout's short commit, printed beside the figures ('' outside git)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()


def _env(ranks: int, threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHNESS_")}
    path = os.pathsep.join(str(ROOT / d) for d in ("contract", "trainer"))
    env.update(PYTHONPATH=path, OMP_NUM_THREADS=str(threads))
    if ranks > 1:
        env["FRESHNESS_NPROC_PER_NODE"] = str(ranks)
    return env


def run_one(work: Path, config: str) -> dict[str, Any]:
    ranks, threads = (int(x) for x in config.split("x"))
    started = time.perf_counter()
    _stage("train", work, _env(ranks, threads))
    wall = time.perf_counter() - started
    _stage("evaluate", work, _env(1, os.cpu_count() or 1))
    train = json.loads((work / "reports/train.json").read_text())
    scores = json.loads((work / "reports/eval.json").read_text())
    return {"config": config, "ranks": ranks, "threads": threads, "world_size": train["world_size"],
            "seconds_per_epoch": train["seconds_per_epoch"],
            "stage_seconds": round(wall, 2), "val_acc": scores["val_acc"], "best_epoch": train["best_epoch"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ddp_cpu", description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params.yaml override")
    cores = os.cpu_count() or 1
    ap.add_argument("--configs", nargs="+", default=[f"1x{cores}", f"2x{max(1, cores // 2)}"],
                    help="RANKSxTHREADS each (default: 1xC 2xC/2)")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="1 epoch, 1 repetition: checks that it runs")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    sets = ["train.epochs=1", "train.warmup_epochs=0", *args.set] if args.smoke else args.set
    reps = 1 if args.smoke else args.reps
    params = params_with(sets)
    commit = short_commit()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ddp-cpu-") as tmp:
        work = Path(tmp)
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        _stage("prepare", work, _env(1, cores))
        for rep in range(reps):
            order = args.configs if rep % 2 == 0 else list(reversed(args.configs))
            for config in order:
                rows.append({"rep": rep + 1, **run_one(work, config)})
                print(json.dumps(rows[-1]), flush=True)
    load_after = os.getloadavg()
    print(f"\ncommit {commit}, {os.cpu_count()} CPUs, load average {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f} before, {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} after; "
          f"params {' '.join(sets) or '(params.yaml)'}")
    print("| CPU ranks x threads | s/epoch (each rep) | val_acc (each rep) |\n|---|---|---|")
    for config in args.configs:
        mine = [r for r in rows if r["config"] == config]
        print(f"| {config} | {' / '.join(str(r['seconds_per_epoch']) for r in mine)} | "
              f"{' / '.join(str(r['val_acc']) for r in mine)} |")
    if args.json:
        args.json.write_text(json.dumps({"commit": commit, "sets": sets, "rows": rows}, indent=2))
    if args.smoke:
        assert all(r["world_size"] == r["ranks"] and 0.0 <= r["val_acc"] <= 1.0 for r in rows), rows
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

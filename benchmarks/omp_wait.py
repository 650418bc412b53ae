"""Training beside another process: torch's OpenMP threads spinning or passive (freshness_trainer/__init__.py).

Runs the example project's train stage (``prepare`` once, in a temporary copy of ``params.yaml`` with
the given overrides) alone, then two at once on the same cores, under two wait policies: libgomp's
default, whose idle threads spin about 300,000 times before they sleep, and ``OMP_WAIT_POLICY=PASSIVE``,
which the trainer sets for itself. Both run the stage through the same wrapper, which imports torch
before ``freshness_trainer``: under "default" the runtime loads before the package can name a policy,
as it did before the package set one. Each stage takes torch's default thread count (the cores it
sees). Prints wall and CPU seconds per stage, and the ratios.

    .venv/bin/python -m benchmarks.omp_wait               # params.yaml (20 epochs), 1 repetition
    .venv/bin/python -m benchmarks.omp_wait --set train.epochs=2 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.ddp_cpu import params_with, short_commit

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
WRAPPER = "import torch, runpy; runpy.run_module('freshness_trainer.stages.train', run_name='__main__')"


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "FRESHNESS_"))}
    env.update(PYTHONPATH=os.pathsep.join(str(ROOT / d) for d in ("contract", "trainer")), **extra)
    return env


def train_at_once(dirs: list[Path], policy: str) -> list[dict[str, Any]]:
    """The train stage in each of ``dirs`` at the same time; wall and CPU seconds of each."""
    started = time.perf_counter()
    procs = {subprocess.Popen([sys.executable, "-c", WRAPPER], cwd=d, env=_env(POLICIES[policy]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).pid: d for d in dirs}
    rows = []
    while procs:
        pid, status, usage = os.wait4(-1, 0)
        if pid not in procs:
            continue
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"train stage in {procs[pid]} failed ({status})")
        procs.pop(pid)
        rows.append({"policy": policy, "at_once": len(dirs), "wall_s": round(time.perf_counter() - started, 1),
                     "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.omp_wait", description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="params.yaml override")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    params = params_with(args.set)
    commit = short_commit()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="omp-wait-") as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        a.mkdir()
        (a / "params.yaml").write_text(yaml.safe_dump(params))
        subprocess.run([sys.executable, "-m", "freshness_trainer.stages.prepare"], cwd=a, env=_env({}), check=True,
                       stdout=subprocess.DEVNULL)
        shutil.copytree(a, b)
        for rep in range(args.reps):
            for policy in POLICIES if rep % 2 == 0 else reversed(POLICIES):
                for dirs in ([a], [a, b]):
                    for row in train_at_once(dirs, policy):
                        rows.append({"rep": rep + 1, **row})
                        print(json.dumps(rows[-1]), flush=True)
    load_after = os.getloadavg()
    print(f"\ncommit {commit}, {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; params {' '.join(args.set) or '(params.yaml)'}")
    print("| policy | stages at once | wall s per stage (each) | CPU s per stage (each) |\n|---|---|---|---|")
    mean: dict[tuple[str, int], float] = {}
    for policy in POLICIES:
        for n in (1, 2):
            mine = [r for r in rows if r["policy"] == policy and r["at_once"] == n]
            mean[policy, n] = sum(r["wall_s"] for r in mine) / len(mine)
            print(f"| {policy} | {n} | {' / '.join(str(r['wall_s']) for r in mine)} | "
                  f"{' / '.join(str(r['cpu_s']) for r in mine)} |")
    print(f"two at once, default / passive wall: {mean['default', 2] / mean['passive', 2]:.2f}; "
          f"alone, passive / default wall: {mean['passive', 1] / mean['default', 1]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"commit": commit, "sets": args.set, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

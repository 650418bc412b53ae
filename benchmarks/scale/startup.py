"""Start-up on a wiped slate: how long until an operator has taken every one of N ModelDeployments.

    .venv/bin/python -m benchmarks.scale.startup --n 1000 --reps 2 --ours-src ../wt-before

The scale benchmark's objects and wipe (``bench.Bench``), with no checks falling due (the lead is
a day), then each operator started alone on the wiped slate, the order alternating: seconds from
the process start until this benchmark's watch has seen a status phase on every object (ours writes
one per object it adopts), and until the first; API requests in between from the API server's own
metrics. Ours and, with ``--ours-src``, "ours (before)" from that tree (the baseline writes no
status: not measured here).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import cluster, diff, fmt, request_counts, table, wait_until
from benchmarks.scale.bench import CONTROLLERS_QPS, SPARE_PODS, Bench
from benchmarks.scale.model import BEFORE, OURS, PODS_PER_NODE, Config

DAY = 86400.0


def take_all(bench: Bench, who: str, rep: int, timeout: float) -> tuple[float, float, float]:
    """(s to the first object taken, s to every object taken (inf past ``timeout``), API requests)."""
    bench.epoch = bench.wipe(lead=DAY)
    ident, before = bench.ids[who], request_counts(bench.api)
    t0 = time.monotonic()
    proc = bench.start(who, f"startup{rep}")
    first = math.inf
    try:

        def every() -> bool:
            nonlocal first
            taken = len(bench.tracker.reconciled)
            if taken and math.isinf(first):
                first = time.monotonic() - t0
            return taken >= bench.n

        try:
            wait_until(f"{who} to take every object", every, timeout, every=0.25)
            took = time.monotonic() - t0
        except TimeoutError:
            took = math.inf
    finally:
        proc.stop()
    return first, took, sum(ident.requests(diff(request_counts(bench.api), before)).values())


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale.startup", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="ModelDeployments (default 1000)")
    p.add_argument("--reps", type=int, default=2, help="starts per operator, order alternating (default 2)")
    p.add_argument("--timeout", type=float, default=300, help="give up on one start after this many s (300)")
    p.add_argument("--ours-src", type=Path, default=None, help="also start our operator from this source tree")
    a = p.parse_args(argv)
    if a.n < 1 or a.reps < 1:
        p.error(f"--n and --reps must be at least 1, got {a.n} and {a.reps}")
    if a.ours_src is not None and not (a.ours_src / "operator" / "freshness_operator").is_dir():
        p.error(f"--ours-src {a.ours_src}: no operator/freshness_operator there (want a checkout of this repository)")
    src = a.ours_src.resolve() if a.ours_src else None
    cfg = Config((a.n,), 2.0, None, 0, 0, 5, None, False, a.reps, src)
    whos = (OURS, BEFORE) if src else (OURS,)
    load = os.getloadavg()
    results: dict[str, list[tuple[float, float, float]]] = {who: [] for who in whos}
    nodes = max(2, math.ceil((a.n + SPARE_PODS) / PODS_PER_NODE))
    with cluster(None, nodes=nodes, api_qps=CONTROLLERS_QPS) as c:
        bench = Bench(cfg, c, a.n, Path(tempfile.mkdtemp(prefix=f"mf-bench-startup-{a.n}-")))
        try:
            bench.setup()
            for rep in range(a.reps):
                for who in whos if rep % 2 == 0 else whos[::-1]:
                    results[who].append(take_all(bench, who, rep, a.timeout))
                    first, took, requests = results[who][-1]
                    print(
                        f"# {who} start {rep + 1}: first {fmt(first, 1)}s, all {fmt(took, 1)}s, {requests:.0f} requests"
                    )
        finally:
            bench.teardown()
    end = os.getloadavg()
    rows = [
        [who, fmt(first, 1), fmt(took, 1), f"{requests:.0f}"] for who in whos for first, took, requests in results[who]
    ]
    print(
        f"\nN = {a.n}, {a.reps} starts each on a wiped slate, order alternating; load average (1/5/15 min) "
        f"{' / '.join(f'{x:.1f}' for x in load)} at the start, {' / '.join(f'{x:.1f}' for x in end)} at the end\n"
    )
    print(table(["operator", "start → first object taken (s)", "start → every object taken (s)", "API requests"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

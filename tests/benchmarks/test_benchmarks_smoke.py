"""The operator benchmarks at CI size (``--smoke``) on the session's local control plane.

They assert correctness only, never time: every object gets its drift Jobs from both operators
with finite numbers, and the time-to-fresh loop completes. Each runs as a subprocess, as a user
would run it, in a namespace of its own that it deletes afterwards.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]


def run_smoke(cluster: Cluster, module: str, out: Path, timeout: float = 300) -> dict[str, Any]:
    argv = [sys.executable, "-m", module, "--smoke", "--kubeconfig", str(cluster.kubeconfig), "--json", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{module} --smoke failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    assert "smoke: ok" in proc.stdout
    return dict(json.loads(out.read_text()))


def test_scale_smoke_alternates_and_gives_both_operators_the_same_checks(cluster: Cluster, tmp_path: Path) -> None:
    result = run_smoke(cluster, "benchmarks.scale", tmp_path / "scale.json", timeout=600)
    [size] = result["sizes"]
    runs = size["runs"]
    # Two repetitions, the order reversed in the second: ours first, then the baseline first.
    order = [[r["who"] for r in sorted(runs, key=lambda r: r["position"]) if r["rep"] == rep] for rep in (0, 1)]
    assert order == [["ours", "baseline"], ["baseline", "ours"]], order
    # Every window started from the same wiped slate: the same first checks fell due in each.
    assert len({r["busy"]["due"] for r in runs}) == 1 and runs[0]["busy"]["due"] > 0, runs
    for r in runs:
        busy, who = r["busy"], (r["who"], r["rep"])
        assert busy["objects_checked"] == size["n"] == 5, who
        assert busy["checks"] >= size["n"] and busy["latency"]["samples"] > 0, who
        assert all(math.isfinite(x) for x in busy["latencies"]), who
        assert busy["rss_mib"] > 0 and r["peak_rss_mib"] >= busy["rss_mib"] * 0.9, who
        assert busy["requests"]["create"] > 0, who  # its Jobs: both create one per check
    for name in ("ours", "baseline"):
        assert math.isfinite(size["idle"][name]["requests_per_min"]), name
    # Both restarts settled: its /metrics showed every object reconciled again; the plain one wrote nothing.
    restarts = size["restarts"]
    assert set(restarts) == {"specs changed while down", "plain"}, restarts
    assert all(0 < r["seconds"] < 120 for r in restarts.values()), restarts
    assert restarts["plain"]["requests"] < restarts["specs changed while down"]["requests"], restarts
    assert (tmp_path / "scale.png").stat().st_size > 10_000, "no figure beside the JSON"
    left = cluster.kubectl("get", "flowschemas", "-o", "name").stdout
    assert "bench-" not in left, "the benchmark left its FlowSchemas behind"


def test_time_to_fresh_smoke(cluster: Cluster, tmp_path: Path) -> None:
    result = run_smoke(cluster, "benchmarks.time_to_fresh", tmp_path / "ttf.json")
    assert len(result["runs"]) == 2
    # The loop's steps happened in order. Times come from different observers (the benchmark's Job
    # watch, its Deployment watch, the completer's own clock), and a loaded machine delivers one
    # watch event later than another, so each observer's times are checked in order, and across
    # observers within a margin.
    every = ("verdict", "drift_complete", "train_job", "train_done", "train_complete", "package_job",
             "package_done", "package_complete", "patched", "rolled")
    for run in result["runs"]:
        assert in_order(run, ("verdict", "train_done", "package_done")), run  # the completer
        assert in_order(run, ("drift_complete", "train_job", "train_complete", "package_job", "package_complete")), run
        assert in_order(run, ("patched", "rolled")), run  # the Deployment watch
        assert in_order(run, every, margin=2.0), run
        assert math.isfinite(run["rolled"] - run["verdict"]), run


def in_order(run: dict[str, float], keys: tuple[str, ...], margin: float = 0.0) -> bool:
    """Each time no earlier than the one before it, less ``margin``. Pure."""
    times = [run[k] for k in keys]
    return all(a <= b + margin for a, b in itertools.pairwise(times))


def test_failover_smoke(cluster: Cluster, tmp_path: Path) -> None:
    """Two replicas, the leader killed twice: the standby takes over each time, nothing done twice."""
    result = run_smoke(cluster, "benchmarks.failover", tmp_path / "failover.json")
    kills = result["kills"]
    assert len(kills) == 2 and all(k["successor"] != k["killed"] for k in kills), kills
    assert all(math.isfinite(k["lease_acquired"]) and k["first_action"] >= k["lease_acquired"] for k in kills), kills
    assert (result["duplicate_jobs"], result["double_patches"], result["standby_actions"]) == (0, 0, [])

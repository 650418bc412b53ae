"""Scale: N ModelDeployments, our operator against the simplest kopf design, measured side by side.

    .venv/bin/python -m benchmarks.scale                           # N = 100, 300, 1000
    .venv/bin/python -m benchmarks.scale --sizes 100,300 --json out.json
    .venv/bin/python -m benchmarks.scale --smoke                   # CI: N=5, correctness only

Per size, on a fresh local control plane (or the cluster of ``--kubeconfig``): N serving
Deployments (one kwok pod each) and N ModelDeployments. The drift interval is N / ``--rate``, so
the work (drift checks per second) is the same at every N and only the object count grows (or
pass a fixed ``--interval``). Each object's last check is seeded into its status, spread over one
interval, so the checks come evenly from the first second instead of all at once. The completer
(benchmarks/common.py) finishes every drift pod with "no drift". Then, one after the other, on
the same objects:

1. our operator (``python -m freshness_operator``), busy window;
2. the baseline (benchmarks/baseline_operator.py: a per-object timer listing the object's Jobs
   on every tick), busy window, carrying on from our Jobs;
3. idle: every interval set to 24h; the baseline measured with nothing due, then our operator
   restarted on the same objects (it rebuilds its status from the Jobs) and measured idle.

Measured per operator: RSS and CPU of its process (/proc), drift-due -> Job-created latency,
API requests per minute by verb from the API server's own metrics (a FlowSchema per verb for the
operator's ServiceAccount). The due time of a check is the operator's own: ours publishes it in
``status.drift.nextCheckTime``; the baseline's is the previous Job's creationTimestamp plus the
interval. A check cannot start before the previous one has finished, so the latency is
``Job seen - max(due, previous Job seen finished)``, both as seen by this benchmark's watches:
an upper bound, since it includes the watch delivery.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.baseline_operator import FINALIZER, spread
from benchmarks.common import (
    CHECK_LABEL,
    DEPLOYMENT_LABEL,
    STEP_LABEL,
    VERBS,
    Api,
    Cluster,
    Completer,
    Identity,
    Process,
    Watch,
    baseline_operator,
    cluster,
    create_all,
    create_namespace,
    delete_identity,
    delete_namespace,
    diff,
    drift_doc,
    fmt,
    format_time,
    make_identity,
    mdeps_path,
    model_deployment,
    our_operator,
    parse_time,
    patch_all,
    percentile,
    ratio,
    request_counts,
    serving_deployment,
    table,
    wait_until,
)

MIB = 1024 * 1024
IDLE_INTERVAL = "24h"
PODS_PER_NODE = 110


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    rate: float
    interval: int | None
    window: float
    idle_window: float
    tick: float
    kubeconfig: Path | None
    smoke: bool

    def interval_for(self, n: int) -> int:
        return self.interval or max(10, round(n / self.rate))


@dataclass
class Window:
    """What one operator did during one measuring window."""

    seconds: float
    cpu_percent: float
    rss_mib: float
    requests: dict[str, float]
    all_clients_requests: float
    checks: int
    objects_checked: int
    latencies: list[float] = field(default_factory=list)
    unmatched: int = 0
    overdue: list[float] = field(default_factory=list)

    @property
    def requests_per_min(self) -> float:
        return sum(self.requests.values()) * 60 / self.seconds

    def per_min(self, verb: str) -> float:
        return self.requests.get(verb, 0.0) * 60 / self.seconds

    @property
    def requests_per_check(self) -> float:
        return sum(self.requests.values()) / self.checks if self.checks else math.nan

    def latency(self, q: float) -> float:
        """Over the Jobs created and, as lower bounds, the checks still not started at the end."""
        return percentile([*self.latencies, *self.overdue], q)

    def latency_text(self, q: float) -> str:
        value = self.latency(q)
        return ("≥ " if any(x >= value for x in self.overdue) else "") + fmt(value, 2)


@dataclass
class OperatorResult:
    busy: Window
    idle: Window | None
    peak_rss_mib: float


@dataclass
class SizeResult:
    n: int
    interval: int
    nodes: int
    ours: OperatorResult
    baseline: OperatorResult
    restart_seconds: float
    restart_requests: float


# ---------------------------------------------------------------- what the benchmark sees


class Tracker:
    """Drift Jobs and ModelDeployments of one namespace as this benchmark's watches see them."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.lock = threading.Lock()
        self.job_seen: dict[str, float] = {}
        self.job_created: dict[str, float] = {}
        self.job_done: dict[str, float] = {}
        self.job_of: dict[str, tuple[str, int]] = {}
        self.next_check: dict[tuple[str, int], float] = {}
        self.reconciled: set[str] = set()
        self.finalized: set[str] = set()
        self._watches = [
            Watch(api, f"/apis/batch/v1/namespaces/{namespace}/jobs", self._on_job, selector=f"{STEP_LABEL}=drift"),
            Watch(api, mdeps_path(namespace), self._on_mdep),
        ]

    def start(self) -> Tracker:
        for w in self._watches:
            w.start()
        return self

    def stop(self) -> None:
        for w in self._watches:
            w.stop()

    def _on_job(self, type_: str, job: dict[str, Any], seen: float) -> None:
        if type_ == "DELETED":
            return
        meta = job["metadata"]
        name, labels = meta["name"], meta.get("labels") or {}
        done = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (job.get("status") or {}).get("conditions") or []
        )
        with self.lock:
            self.job_seen.setdefault(name, seen)
            self.job_created.setdefault(name, parse_time(meta["creationTimestamp"]))
            self.job_of.setdefault(name, (labels.get(DEPLOYMENT_LABEL, ""), int(labels.get(CHECK_LABEL, "0"))))
            if done:
                self.job_done.setdefault(name, seen)

    def _on_mdep(self, type_: str, mdep: dict[str, Any], _: float) -> None:
        if type_ == "DELETED":
            return
        name = mdep["metadata"]["name"]
        status = mdep.get("status") or {}
        drift = status.get("drift") or {}
        with self.lock:
            if drift.get("nextCheckTime"):
                self.next_check[(name, int(drift.get("sequence") or 0))] = parse_time(drift["nextCheckTime"])
            if status.get("phase"):
                self.reconciled.add(name)
            if FINALIZER in (mdep["metadata"].get("finalizers") or []):
                self.finalized.add(name)

    def running(self) -> int:
        with self.lock:
            return len(set(self.job_seen) - set(self.job_done))

    def window(
        self, start: float, end: float, rule: str, interval: int, first_due: Callable[[str], float]
    ) -> tuple[list[float], int, int, int, list[float]]:
        """What the drift Jobs first seen in [start, end) say, pure over the recorded times:
        latencies, checks, objects checked, checks without a known due time, and for every check
        that was ready before ``end`` but not started by then, how overdue it is at ``end``.

        ``rule``, whose due time applies: "status" (ours: the nextCheckTime it published while the
        previous check was the latest) or "created" (the baseline: the previous Job's
        creationTimestamp + interval; ``first_due(name)`` for an object's first check). A check is
        ready at max(due, the previous Job seen finished)."""

        def ready(mdep: str, number: int, before: float) -> float | None:
            prev = f"{mdep}-drift-{number - 1}"
            if rule == "status":
                due = self.next_check.get((mdep, number - 1))
            elif number == 1:
                due = first_due(mdep)
            else:
                created = self.job_created.get(prev)
                due = created + interval if created is not None else None
            if due is None or number == 1:
                return due
            done = self.job_done.get(prev)
            return max(due, done) if done is not None and done < before else None

        latencies, unmatched, objects = [], 0, set()
        latest: dict[str, int] = {}
        with self.lock:
            for job, seen in self.job_seen.items():
                mdep, number = self.job_of[job]
                if seen < end:
                    latest[mdep] = max(latest.get(mdep, 0), number)
                if not start <= seen < end:
                    continue
                objects.add(mdep)
                at = ready(mdep, number, seen + 1e-3)
                if at is None:
                    unmatched += 1
                else:
                    latencies.append(seen - at)
            overdue = []
            for mdep in {m for m, _ in self.next_check} | set(latest):
                at = ready(mdep, latest.get(mdep, 0) + 1, end)
                if at is not None and at < end:
                    overdue.append(end - at)
        checks = sum(start <= t < end for t in self.job_seen.values())
        return latencies, checks, len(objects), unmatched, overdue


# ---------------------------------------------------------------- one size


class Bench:
    """One size: the objects, the identities and the phases, on one cluster."""

    def __init__(self, cfg: Config, c: Cluster, n: int, workdir: Path) -> None:
        self.cfg, self.c, self.api, self.n, self.workdir = cfg, c, c.api, n, workdir
        self.ns = f"bench-{n}-{uuid.uuid4().hex[:4]}"
        self.interval = cfg.interval_for(n)
        self.names = [f"m{i:04d}" for i in range(n)]
        self.idents: list[Identity] = []
        self.epoch = math.nan

    def setup(self) -> None:
        api, ns = self.api, self.ns
        create_namespace(api, ns)
        self.ours_id = make_identity(api, ns, "ours", self.workdir)
        self.base_id = make_identity(api, ns, "baseline", self.workdir)
        self.idents = [self.ours_id, self.base_id]
        started = time.monotonic()
        deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
        create_all(api, [(deployments, serving_deployment(name)) for name in self.names])
        create_all(api, [(mdeps_path(ns), model_deployment(name, f"{self.interval}s")) for name in self.names])

        def serving_ready() -> bool:
            pods = api.items(f"/api/v1/namespaces/{ns}/pods", selector=f"!{STEP_LABEL}")
            return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) >= self.n

        wait_until(f"{self.n} serving pods Running", serving_ready, 120 + self.n, every=3)
        print(
            f"# N={self.n}: {self.n} Deployments and ModelDeployments ready in {time.monotonic() - started:.0f}s",
            flush=True,
        )
        self.tracker = Tracker(api, ns).start()
        self.completer = Completer(api, ns, lambda pod: drift_doc(False)).start()

    def seed(self, lead: float) -> float:
        """Each object's last check, spread over one interval, so the next ones fall due from
        ``lead`` seconds on, as if the operator had been running all along (no start-up stampede).
        The spread is the baseline's first-check jitter, so both see the same pattern. Returns when
        the first check falls due."""
        first = time.time() + lead - self.interval
        seeds = []
        for name in self.names:
            started_at = format_time(first + spread(name) * self.interval)
            next_check = format_time(parse_time(started_at) + self.interval)
            drift = {"sequence": 0, "startedAt": started_at, "nextCheckTime": next_check}
            seeds.append((f"{mdeps_path(self.ns)}/{name}/status", {"status": {"drift": drift}}))
        patch_all(self.api, seeds)
        return first + self.interval + min(spread(name) for name in self.names) * self.interval

    def teardown(self) -> None:
        for part in (getattr(self, "completer", None), getattr(self, "tracker", None)):
            if part is not None:
                part.stop()
        if not self.c.own:  # a fresh cluster goes away whole; a shared one gets its objects back
            delete_namespace(self.api, self.ns)
            for ident in self.idents:
                delete_identity(self.api, ident)

    def measure(self, who: Sequence[tuple[Process, Identity]], seconds: float, rule: str | None) -> list[Window]:
        """One window for the given operators at once; latencies by ``rule`` (see Tracker.window)."""
        before, cpu0, t0 = request_counts(self.api), [p.stats.cpu() for p, _ in who], time.time()
        time.sleep(seconds)
        after, cpu1, t1 = request_counts(self.api), [p.stats.cpu() for p, _ in who], time.time()
        delta = diff(after, before)
        latencies: list[float] = []
        overdue: list[float] = []
        checks = objects = unmatched = 0
        if rule is not None:
            latencies, checks, objects, unmatched, overdue = self.tracker.window(
                t0, t1, rule, self.interval, self.baseline_first_due
            )
        windows = []
        for (proc, ident), c0, c1 in zip(who, cpu0, cpu1, strict=True):
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited during the window:\n{proc.tail()}")
            windows.append(
                Window(
                    seconds=t1 - t0,
                    cpu_percent=100 * (c1 - c0) / (t1 - t0),
                    rss_mib=proc.stats.rss() / MIB,
                    requests=ident.requests(delta),
                    all_clients_requests=delta["apiserver_total"],
                    checks=checks,
                    objects_checked=objects,
                    latencies=latencies,
                    unmatched=unmatched,
                    overdue=overdue,
                )
            )
        return windows

    def baseline_first_due(self, name: str) -> float:
        return self.epoch + spread(name) * self.interval

    def run(self) -> SizeResult:
        cfg, logs, n = self.cfg, self.workdir, self.n
        warm = 60 + n * 0.2
        # 1. ours on the seeded objects. Where three intervals are short, it runs that long first,
        # so that its window, like the baseline's, includes the pruning of old Jobs.
        first_due = self.seed(lead=15 + n * 0.05)
        runin = 3 * self.interval if 3 * self.interval <= 180 else 0
        ours = our_operator(self.ours_id.kubeconfig, self.ns, logs / f"ours-{n}.log").start()
        base: Process | None = None
        try:
            wait_until("our operator to reconcile every object", lambda: len(self.tracker.reconciled) >= n, warm)
            time.sleep(max(0.0, first_due - time.time()) + 2 + runin)
            [ours_busy] = self.measure([(ours, self.ours_id)], cfg.window, "status")
            # 2. the baseline takes over without a gap (both act for a moment: the Job names are the
            # same and creation is create-if-absent). Objects without a Job yet get their first check
            # spread over one interval from its epoch, the same pattern as ours' seeds.
            self.epoch = time.time() + 10 + n * 0.02
            base = baseline_operator(self.base_id.kubeconfig, self.ns, cfg.tick, self.epoch, logs / f"base-{n}.log")
            base.start()
            wait_until("the baseline to take every object", lambda: len(self.tracker.finalized) >= n, warm)
            time.sleep(max(2 * cfg.tick, self.epoch - time.time()))
        except BaseException:
            if base is not None:
                base.stop()
            raise
        finally:
            ours.stop()
        ours_peak = ours.peak_rss / MIB
        ours_idle = base_idle = None
        restart_s = restart_req = math.nan
        try:
            time.sleep(cfg.tick)
            [base_busy] = self.measure([(base, self.base_id)], cfg.window, "created")
            if cfg.idle_window:
                # 3. nothing due: every interval 24h. Ours restarts on the same objects (it rebuilds
                # its status from the Jobs), then both are measured in the same idle window.
                self.set_intervals(IDLE_INTERVAL)
                wait_until("the last checks to finish", lambda: self.tracker.running() == 0, 60 + n * 0.1)
                before, t0 = request_counts(self.api), time.monotonic()
                ours = our_operator(self.ours_id.kubeconfig, self.ns, logs / f"ours-{n}-restart.log").start()
                try:
                    restart_s = self.wait_restarted(self.ours_id, before, timeout=60 + n * 0.6) - t0
                    restart_req = sum(self.ours_id.requests(diff(request_counts(self.api), before)).values())
                    who = [(ours, self.ours_id), (base, self.base_id)]
                    ours_idle, base_idle = self.measure(who, cfg.idle_window, None)
                except TimeoutError as exc:  # a finding, not a reason to lose the busy windows
                    print(f"# N={n}: {exc}; no idle figures", flush=True)
                    restart_s = math.inf
                finally:
                    ours.stop()
        finally:
            base.stop()
        return SizeResult(
            n=n,
            interval=self.interval,
            nodes=0,
            ours=OperatorResult(ours_busy, ours_idle, ours_peak),
            baseline=OperatorResult(base_busy, base_idle, base.peak_rss / MIB),
            restart_seconds=restart_s,
            restart_requests=restart_req,
        )

    def set_intervals(self, interval: str) -> None:
        patch_all(
            self.api, [(f"{mdeps_path(self.ns)}/{m}", {"spec": {"drift": {"interval": interval}}}) for m in self.names]
        )

    def wait_restarted(self, ident: Identity, before: dict[str, float], timeout: float, quiet: float = 6.0) -> float:
        """Until the identity has made a GET per object and serving Deployment (every object
        reconciled) and then no request for ``quiet`` seconds; returns (monotonic) when it last moved."""
        deadline = time.monotonic() + timeout
        last, since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            made = ident.requests(diff(request_counts(self.api), before))
            total = sum(made.values())
            if total != last:
                last, since = total, time.monotonic()
            elif made["get"] >= 2 * self.n and time.monotonic() - since >= quiet:
                return since
            time.sleep(1)
        raise TimeoutError(f"{ident.name} did not finish reconciling every object quietly within {timeout:.0f}s")


def run_size(cfg: Config, n: int) -> SizeResult:
    nodes = max(2, math.ceil(n * 6 / PODS_PER_NODE))
    workdir = Path(tempfile.mkdtemp(prefix=f"mf-bench-scale-{n}-"))
    with cluster(cfg.kubeconfig, nodes=nodes) as c:
        bench = Bench(cfg, c, n, workdir)
        try:
            bench.setup()
            result = bench.run()
        finally:
            bench.teardown()
    result.nodes = nodes if cfg.kubeconfig is None else 0
    print(f"# N={n}: operator logs in {workdir}", flush=True)
    return result


# ---------------------------------------------------------------- report (pure)


def size_table(r: SizeResult, cfg: Config) -> str:
    o, b = r.ours, r.baseline

    def row(label: str, ours: float, base: float, digits: int = 1) -> list[str]:
        return [label, fmt(ours, digits), fmt(base, digits), fmt(ratio(ours, base), 2)]

    rows = [
        row("RSS at end of busy window (MiB)", o.busy.rss_mib, b.busy.rss_mib),
        row("RSS peak (MiB)", o.peak_rss_mib, b.peak_rss_mib),
        row("CPU busy (% of one core)", o.busy.cpu_percent, b.busy.cpu_percent),
        row(
            "CPU idle (% of one core)",
            o.idle.cpu_percent if o.idle else math.nan,
            b.idle.cpu_percent if b.idle else math.nan,
        ),
        row("drift checks started in busy window", o.busy.checks, b.busy.checks, 0),
        row("checks due but not started at window end", len(o.busy.overdue), len(b.busy.overdue), 0),
        *(
            [label, o.busy.latency_text(q), b.busy.latency_text(q), fmt(ratio(o.busy.latency(q), b.busy.latency(q)), 2)]
            for label, q in (
                ("due → Job created p50 (s)", 50),
                ("due → Job created p99 (s)", 99),
                ("due → Job created max (s)", 100),
            )
        ),
        row("API requests/min, busy", o.busy.requests_per_min, b.busy.requests_per_min, 0),
    ]
    for verb in (*VERBS, "other"):
        ov, bv = o.busy.per_min(verb), b.busy.per_min(verb)
        if round(ov) or round(bv):
            rows.append(row(f"  … {verb}", ov, bv, 0))
    rows += [
        row("API requests per drift check, busy", o.busy.requests_per_check, b.busy.requests_per_check),
        row(
            "API requests/min, idle (nothing due)",
            o.idle.requests_per_min if o.idle else math.nan,
            b.idle.requests_per_min if b.idle else math.nan,
            1,
        ),
        row(
            "all clients' API requests/min, busy",
            o.busy.all_clients_requests * 60 / o.busy.seconds,
            b.busy.all_clients_requests * 60 / b.busy.seconds,
            0,
        ),
    ]
    head = (
        f"N = {r.n}: interval {r.interval}s ({r.n / r.interval:.2f} checks/s), busy window {cfg.window:.0f}s, "
        f"idle window {cfg.idle_window:.0f}s, baseline tick {cfg.tick:g}s"
        + (f", {r.nodes} kwok nodes" if r.nodes else "")
    )
    tail = ""
    if math.isinf(r.restart_seconds):
        tail = f"\nOur operator restarted on the {r.n} objects: not done reconciling them within the limit."
    elif not math.isnan(r.restart_seconds):
        tail = (
            f"\nOur operator restarted on the {r.n} objects: quiet again after {r.restart_seconds:.1f}s "
            f"and {r.restart_requests:.0f} API requests."
        )
    return f"{head}\n\n{table(['', 'ours', 'baseline', 'ours/baseline'], rows)}{tail}"


def growth_table(results: Sequence[SizeResult]) -> str:
    rows = []
    for r in results:
        o, b = r.ours, r.baseline
        rows.append(
            [
                str(r.n),
                f"{fmt(o.busy.rss_mib, 0)} / {fmt(b.busy.rss_mib, 0)}",
                f"{fmt(o.busy.cpu_percent)} / {fmt(b.busy.cpu_percent)}",
                f"{o.busy.latency_text(99)} / {b.busy.latency_text(99)}",
                f"{fmt(o.busy.requests_per_min, 0)} / {fmt(b.busy.requests_per_min, 0)}",
                f"{fmt(o.idle.requests_per_min if o.idle else math.nan)} / "
                f"{fmt(b.idle.requests_per_min if b.idle else math.nan, 0)}",
            ]
        )
    headers = ["N", "RSS MiB ours / base", "CPU % busy", "p99 s", "req/min busy", "req/min idle"]
    return table(headers, rows)


def check_smoke(results: Sequence[SizeResult]) -> list[str]:
    """Correctness only, never time: every object checked by both, numbers finite."""
    problems = []
    for r in results:
        for who, res in (("ours", r.ours), ("baseline", r.baseline)):
            w = res.busy
            if w.objects_checked != r.n:
                problems.append(f"{who}: {w.objects_checked} of {r.n} objects got a drift Job in the busy window")
            if not w.latencies or not all(math.isfinite(x) for x in w.latencies):
                problems.append(f"{who}: no finite due → Job latencies ({len(w.latencies)} samples)")
            if not sum(w.requests.values()) > 0 or not math.isfinite(w.rss_mib) or w.rss_mib <= 0:
                problems.append(f"{who}: requests {sum(w.requests.values())}, RSS {w.rss_mib} MiB")
            if res.idle is None or not math.isfinite(res.idle.requests_per_min):
                problems.append(f"{who}: no idle measurement")
    return problems


def to_json(results: Sequence[SizeResult], cfg: Config) -> dict[str, Any]:
    def window(w: Window | None) -> dict[str, Any] | None:
        if w is None:
            return None
        d = asdict(w)
        d["latency"] = {
            "p50": w.latency(50),
            "p99": w.latency(99),
            "max": w.latency(100),
            "samples": len(w.latencies),
            "overdue_at_end": len(w.overdue),
        }
        d["requests_per_min"] = w.requests_per_min
        d["requests_per_check"] = w.requests_per_check
        return d

    out = []
    for r in results:
        d: dict[str, Any] = {
            "n": r.n,
            "interval": r.interval,
            "nodes": r.nodes,
            "restart_seconds": r.restart_seconds,
            "restart_requests": r.restart_requests,
        }
        for who, res in (("ours", r.ours), ("baseline", r.baseline)):
            d[who] = {"busy": window(res.busy), "idle": window(res.idle), "peak_rss_mib": res.peak_rss_mib}
        out.append(d)
    conf = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    return {"config": conf, "sizes": out}


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100,300,1000", help="comma list of N (default 100,300,1000)")
    p.add_argument("--rate", type=float, default=2.0, help="drift checks per second at every N (default 2)")
    p.add_argument("--interval", type=int, default=None, help="fixed drift interval in seconds instead of --rate")
    p.add_argument("--window", type=float, default=120, help="busy measuring window per operator, s (default 120)")
    p.add_argument("--idle-window", type=float, default=60, help="idle measuring window, s; 0 skips (default 60)")
    p.add_argument("--baseline-tick", type=float, default=5, help="the baseline's timer interval, s (default 5)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster instead of a fresh local one")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--smoke", action="store_true", help="CI: N=5, short windows, assert correctness (never time)")
    a = p.parse_args(argv)
    if a.smoke:
        cfg = Config((5,), 0.5, 10, 20, 8, 2, a.kubeconfig, True)
    else:
        sizes = tuple(int(s) for s in a.sizes.split(",") if s.strip())
        cfg = Config(sizes, a.rate, a.interval, a.window, a.idle_window, a.baseline_tick, a.kubeconfig, False)
    return cfg, a.json


def main(argv: Sequence[str] | None = None) -> int:
    cfg, json_path = parse_args(argv)
    results = []
    for n in cfg.sizes:
        result = run_size(cfg, n)
        results.append(result)
        print(f"\n{size_table(result, cfg)}\n", flush=True)
        if json_path is not None:  # after every size: a later one failing keeps the earlier ones
            json_path.write_text(json.dumps(to_json(results, cfg), indent=2))
    if len(results) > 1:
        print(f"Growth with N (ours / baseline):\n\n{growth_table(results)}\n")
    if cfg.smoke:
        problems = check_smoke(results)
        for problem in problems:
            print(f"SMOKE FAILED: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

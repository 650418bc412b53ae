"""Scale: N ModelDeployments, our operator against the simplest competent kopf design, same work.

    .venv/bin/python -m benchmarks.scale                           # N = 100, 300, 1000; 3 reps each
    .venv/bin/python -m benchmarks.scale --sizes 1000 --reps 3 --json out.json   # + out.png
    .venv/bin/python -m benchmarks.scale --ours-src ../wt-old      # + "ours (before)" from that tree
    .venv/bin/python -m benchmarks.scale --smoke                   # CI: N=5, 2 reps, correctness only

Per size, on a fresh local control plane (or the cluster of ``--kubeconfig``): N serving
Deployments (one kwok pod each) and N ModelDeployments. The drift interval is N / ``--rate``, so
the work (drift checks per second) is the same at every N and only the object count grows (or
pass a fixed ``--interval``). The completer (benchmarks/common.py) finishes every drift pod with
"no drift". Then ``--reps`` repetitions; in each, every operator gets one busy window alone, the
order alternating between repetitions (ours first, then the baseline first, ...). Before every
window the slate is wiped the same way: drift Jobs deleted, each object's status reset to one
seeded last check (spread over one interval by a hash of its name, the baseline's first-check
jitter, with the baseline's epoch set to match), so every window sees the SAME checks fall due at
the same offsets (the "first checks due" row). Operators:

- ours: ``python -m freshness_operator``; ours (before): the same from ``--ours-src`` (PYTHONPATH);
- baseline (benchmarks/baseline_operator.py): async kopf timer per object listing the object's
  Jobs on every tick, one shared aiohttp client.

Then idle, once per size: every interval set to 24h; the baseline and our operator (restarted on
the same objects: it rebuilds its status from the Jobs) measured with nothing due.

Measured per window: RSS (end and peak) and CPU of the operator process (/proc), drift-due ->
Job-created latency, API requests per minute by verb from the API server's own metrics (a
FlowSchema per verb for the operator's ServiceAccount). The due time of a check is the operator's
own: ours publishes it in ``status.drift.nextCheckTime``; the baseline's is the previous Job's
creationTimestamp plus the interval. A check cannot start before the previous one has finished,
so the latency is ``Job seen - max(due, previous Job seen finished)``, both as seen by this
benchmark's watches: an upper bound, since it includes the watch delivery. Checks due but never
started by the window's end count with their overdue time (a lower bound, marked ≥). Tables
show the median over repetitions and [min, max].
"""

from __future__ import annotations

import argparse
import contextlib
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


OURS, BASE, BEFORE = "ours", "baseline", "ours (before)"


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
    reps: int = 3
    ours_src: Path | None = None

    def interval_for(self, n: int) -> int:
        return self.interval or max(10, round(n / self.rate))

    @property
    def operators(self) -> tuple[str, ...]:
        return (OURS, BASE, BEFORE) if self.ours_src else (OURS, BASE)

    def order(self, rep: int) -> tuple[str, ...]:
        """The operators' order in repetition ``rep``: reversed every other one. Pure."""
        return self.operators if rep % 2 == 0 else self.operators[::-1]


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
    due: int = 0

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

    def bound(self, q: float) -> bool:
        """Whether ``latency(q)`` is only a lower bound (it comes from a never-started check)."""
        value = self.latency(q)
        return any(x >= value for x in self.overdue)


@dataclass
class Run:
    """One operator's busy window in one repetition."""

    who: str
    rep: int
    position: int
    busy: Window
    peak_rss_mib: float


@dataclass
class SizeResult:
    n: int
    interval: int
    nodes: int
    runs: list[Run]
    idle: dict[str, Window]
    restart_seconds: float
    restart_requests: float

    def of(self, who: str) -> list[Window]:
        return [r.busy for r in self.runs if r.who == who]

    def peaks(self, who: str) -> list[float]:
        return [r.peak_rss_mib for r in self.runs if r.who == who]


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
        self.drift_of: dict[str, dict[str, Any]] = {}  # the latest status.drift seen, per object
        self.since = 0.0  # Jobs created before this are a previous window's
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

    def reset(self, next_check: dict[str, float]) -> None:
        """Forget everything seen so far; the objects' first checks fall due at ``next_check``."""
        with self.lock:
            for seen in (self.job_seen, self.job_created, self.job_done, self.job_of, self.next_check):
                seen.clear()
            self.reconciled.clear()
            self.finalized.clear()
            self.next_check.update({(name, 0): due for name, due in next_check.items()})
            self.since = time.time()

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
            if parse_time(meta["creationTimestamp"]) < int(self.since):
                return
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
            self.drift_of[name] = drift
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
        self.ids: dict[str, Identity] = {}
        self.epoch = math.nan

    def setup(self) -> None:
        api, ns = self.api, self.ns
        create_namespace(api, ns)
        account = {OURS: "ours", BASE: "baseline", BEFORE: "before"}
        self.ids = {who: make_identity(api, ns, account[who], self.workdir) for who in self.cfg.operators}
        self.idents = list(self.ids.values())
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

    def wipe(self, lead: float) -> float:
        """The same slate before every window: no drift Jobs (nor their pods), no finalizer, and each
        object's status only its last check, seeded so that its next one falls due at
        ``epoch + spread(name) * interval`` (the baseline's first-check rule with that epoch),
        ``lead`` seconds from now on. Returns the epoch."""
        api, ns, jobs = self.api, self.ns, f"/apis/batch/v1/namespaces/{self.ns}/jobs"
        gone = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        api.request("DELETE", jobs, gone, params={"labelSelector": f"{STEP_LABEL}=drift"})

        def nothing_left() -> bool:
            pods = api.items(f"/api/v1/namespaces/{ns}/pods", selector=f"{STEP_LABEL}=drift")
            return not api.items(jobs, selector=f"{STEP_LABEL}=drift") and not pods

        wait_until("the drift Jobs and pods to be gone", nothing_left, 120 + self.n * 0.2, every=2)
        mdeps = api.items(mdeps_path(ns))
        patch_all(
            api,
            [
                (f"{mdeps_path(ns)}/{m['metadata']['name']}", {"metadata": {"finalizers": None}})
                for m in mdeps
                if m["metadata"].get("finalizers")
            ],
        )
        epoch = time.time() + lead
        due = {name: epoch + spread(name) * self.interval for name in self.names}
        seeds, patches = {}, []
        for m in mdeps:
            name, status = m["metadata"]["name"], m.get("status") or {}
            start = format_time(due[name] - self.interval)
            drift: dict[str, Any] = {k: None for k in status.get("drift") or {}}
            drift.update(sequence=0, startedAt=start, nextCheckTime=format_time(parse_time(start) + self.interval))
            seeds[name] = drift
            patches.append((f"{mdeps_path(ns)}/{name}/status", {"status": {**dict.fromkeys(status), "drift": drift}}))
        patch_all(api, patches)

        def seen_seeded() -> bool:  # every later event is then this window's
            with self.tracker.lock:
                return all(
                    self.tracker.drift_of.get(name, {}).get("nextCheckTime") == drift["nextCheckTime"]
                    for name, drift in seeds.items()
                )

        wait_until("the seeded statuses to come back by watch", seen_seeded, 60 + self.n * 0.1)
        self.tracker.reset({name: parse_time(d["nextCheckTime"]) for name, d in seeds.items()})
        return epoch

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
        due = sum(t0 <= self.epoch + spread(name) * self.interval < t1 for name in self.names)
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
                    due=due if rule is not None else 0,
                )
            )
        return windows

    def baseline_first_due(self, name: str) -> float:
        return self.epoch + spread(name) * self.interval

    def start(self, who: str, suffix: str) -> Process:
        log = self.workdir / f"{who.replace(' ', '-').strip('()')}-{self.n}-{suffix}.log"
        ident = self.ids[who]
        if who == BASE:
            proc = baseline_operator(ident.kubeconfig, self.ns, self.cfg.tick, self.epoch, log)
        else:
            proc = our_operator(ident.kubeconfig, self.ns, log, self.cfg.ours_src if who == BEFORE else None)
        return proc.start()

    def busy(self, who: str, rep: int, position: int) -> Run:
        """One busy window of one operator alone, on a wiped slate. The window is the same stretch
        after the epoch for every operator, so every window sees the same checks fall due; an
        operator not yet on every object when it opens carries its start-up backlog into it."""
        n, smoke = self.n, self.cfg.smoke
        self.epoch = self.wipe(lead=(15 if smoke else 20) + n * 0.15)
        opens = self.epoch + (2 if smoke else 2 + n * 0.06)
        proc = self.start(who, f"rep{rep}")
        try:
            ready = self.tracker.finalized if who == BASE else self.tracker.reconciled
            with contextlib.suppress(TimeoutError):
                wait_until(f"{who} to take every object", lambda: len(ready) >= n, opens - time.time())
            if len(ready) < n:
                print(f"# N={n} rep {rep}: {who} on {len(ready)} of {n} objects when its window opened", flush=True)
            time.sleep(max(0.0, opens - time.time()))
            [window] = self.measure([(proc, self.ids[who])], self.cfg.window, "created" if who == BASE else "status")
        finally:
            proc.stop()
        print(
            f"# N={n} rep {rep} #{position + 1} {who}: {window.checks} checks, {window.due} first checks due, "
            f"p99 {fmt(window.latency(99), 2)}s, {window.requests_per_min:.0f} req/min, "
            f"peak RSS {proc.peak_rss / MIB:.0f} MiB",
            flush=True,
        )
        return Run(who, rep, position, window, proc.peak_rss / MIB)

    def run(self) -> SizeResult:
        cfg, n = self.cfg, self.n
        runs = [self.busy(who, rep, pos) for rep in range(cfg.reps) for pos, who in enumerate(cfg.order(rep))]
        idle: dict[str, Window] = {}
        restart_s = restart_req = math.nan
        if cfg.idle_window:
            # Nothing due: every interval 24h. The baseline starts, ours restarts on the same objects
            # (it rebuilds its status from the Jobs); both measured in the same idle window.
            self.set_intervals(IDLE_INTERVAL)
            wait_until("the last checks to finish", lambda: self.tracker.running() == 0, 60 + n * 0.1)
            self.epoch = time.time() + 86400  # no first check falls due either
            base = self.start(BASE, "idle")
            ours: Process | None = None
            try:
                before, t0 = request_counts(self.api), time.monotonic()
                ours = self.start(OURS, "restart")
                restart_s = self.wait_restarted(self.ids[OURS], before, timeout=60 + n * 0.6) - t0
                restart_req = sum(self.ids[OURS].requests(diff(request_counts(self.api), before)).values())
                who = [(ours, self.ids[OURS]), (base, self.ids[BASE])]
                idle[OURS], idle[BASE] = self.measure(who, cfg.idle_window, None)
            except TimeoutError as exc:  # a finding, not a reason to lose the busy windows
                print(f"# N={n}: {exc}; no idle figures", flush=True)
                restart_s = math.inf
            finally:
                for proc in (ours, base):
                    if proc is not None:
                        proc.stop()
        return SizeResult(n, self.interval, 0, runs, idle, restart_s, restart_req)

    def set_intervals(self, interval: str) -> None:
        patch_all(
            self.api, [(f"{mdeps_path(self.ns)}/{m}", {"spec": {"drift": {"interval": interval}}}) for m in self.names]
        )

    def wait_restarted(self, ident: Identity, before: dict[str, float], timeout: float, quiet: float = 6.0) -> float:
        """Until the identity has made requests (its LISTs and WATCHes at least: an operator that
        reads from watch caches makes no GET per object) and then none for ``quiet`` seconds;
        returns (monotonic) when it last moved."""
        deadline = time.monotonic() + timeout
        last, since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            made = ident.requests(diff(request_counts(self.api), before))
            total = sum(made.values())
            if total != last:
                last, since = total, time.monotonic()
            elif made["list"] + made["watch"] > 0 and time.monotonic() - since >= quiet:
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


def median(values: Sequence[float]) -> float:
    return percentile([v for v in values if not math.isnan(v)], 50)


def cell(values: Sequence[float], digits: int = 1, bound: bool = False) -> str:
    """The median over repetitions, and the range when there are several. Pure."""
    mark = "≥ " if bound else ""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2:
        return mark + fmt(median(values), digits)
    return f"{mark}{fmt(median(finite), digits)} [{fmt(min(finite), digits)}, {fmt(max(finite), digits)}]"


def size_table(r: SizeResult, cfg: Config) -> str:
    whos = cfg.operators
    metrics: list[tuple[str, Callable[[Window], float], int]] = [
        ("RSS at end of busy window (MiB)", lambda w: w.rss_mib, 1),
        ("CPU busy (% of one core)", lambda w: w.cpu_percent, 1),
        ("first checks due in window (seeded)", lambda w: w.due, 0),
        ("drift checks started in window", lambda w: w.checks, 0),
        ("checks due but not started at window end", lambda w: len(w.overdue), 0),
        ("due → Job created p50 (s)", lambda w: w.latency(50), 2),
        ("due → Job created p99 (s)", lambda w: w.latency(99), 2),
        ("due → Job created max (s)", lambda w: w.latency(100), 2),
        ("API requests/min, busy", lambda w: w.requests_per_min, 0),
        *((f"  … {verb}", (lambda w, v=verb: w.per_min(v)), 0) for verb in (*VERBS, "other")),
        ("API requests per drift check, busy", lambda w: w.requests_per_check, 1),
        ("all clients' API requests/min, busy", lambda w: w.all_clients_requests * 60 / w.seconds, 0),
    ]
    rows = [
        [
            "RSS peak (MiB)",
            *(cell(r.peaks(who)) for who in whos),
            fmt(ratio(*(median(r.peaks(w)) for w in whos[:2])), 2),
        ]
    ]
    for label, value, digits in metrics:
        per = {who: [value(w) for w in r.of(who)] for who in whos}
        if label.startswith("  …") and not any(round(v) for vs in per.values() for v in vs):
            continue
        q = {"p50": 50, "p99": 99, "max": 100}.get(label.split()[-2]) if "due → Job" in label else None
        cells = [cell(per[who], digits, q is not None and any(w.bound(q) for w in r.of(who))) for who in whos]
        rows.append([label, *cells, fmt(ratio(median(per[OURS]), median(per[BASE])), 2)])
    idle = [r.idle[who].requests_per_min if who in r.idle else math.nan for who in whos]
    idle_cpu = [r.idle[who].cpu_percent if who in r.idle else math.nan for who in whos]
    rows.append(["API requests/min, idle (nothing due)", *(fmt(v) for v in idle), fmt(ratio(idle[0], idle[1]), 2)])
    rows.append(["CPU idle (% of one core)", *(fmt(v) for v in idle_cpu), fmt(ratio(idle_cpu[0], idle_cpu[1]), 2)])
    orders = "; ".join(" → ".join(cfg.order(rep)) for rep in range(cfg.reps))
    head = (
        f"N = {r.n}: interval {r.interval}s ({r.n / r.interval:.2f} checks/s), busy window {cfg.window:.0f}s per "
        f"operator, {cfg.reps} repetitions (orders: {orders}), idle window {cfg.idle_window:.0f}s, "
        f"baseline tick {cfg.tick:g}s" + (f", {r.nodes} kwok nodes" if r.nodes else "")
    )
    tail = "\nCells: median over repetitions [min, max]; ≥: includes checks never started (a lower bound)."
    if math.isinf(r.restart_seconds):
        tail += f"\nOur operator restarted on the {r.n} objects: not done reconciling them within the limit."
    elif not math.isnan(r.restart_seconds):
        tail += (
            f"\nOur operator restarted on the {r.n} objects: quiet again after {r.restart_seconds:.1f}s "
            f"and {r.restart_requests:.0f} API requests."
        )
    return f"{head}\n\n{table(['', *whos, 'ours/baseline'], rows)}{tail}"


def growth_table(results: Sequence[SizeResult], cfg: Config) -> str:
    rows = []
    for r in results:
        for who in cfg.operators:
            ws = r.of(who)
            rows.append(
                [
                    str(r.n),
                    who,
                    fmt(median(r.peaks(who)), 0),
                    fmt(median([w.latency(50) for w in ws]), 2),
                    fmt(median([w.latency(99) for w in ws]), 2),
                    fmt(median([w.requests_per_check for w in ws])),
                    fmt(r.idle[who].requests_per_min) if who in r.idle else "-",
                ]
            )
    headers = ["N", "operator", "RSS peak MiB", "p50 s", "p99 s", "requests/check", "req/min idle"]
    return table(headers, rows)


def figure(results: Sequence[SizeResult], cfg: Config, path: Path) -> None:
    """The main figure as a PNG: due → Job p50/p99 and requests per check against N, per operator
    (median over repetitions, bars: the range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, req) = plt.subplots(1, 2, figsize=(11, 4.2))
    ns = [r.n for r in results]
    for who, colour in zip(cfg.operators, ("tab:blue", "tab:red", "tab:gray"), strict=False):
        for q, style in ((50, "--"), (99, "-")):
            values = [[w.latency(q) for w in r.of(who)] for r in results]
            mid = [median(v) for v in values]
            err = [
                [m - min(v) for m, v in zip(mid, values, strict=True)],
                [max(v) - m for m, v in zip(mid, values, strict=True)],
            ]
            lat.errorbar(ns, mid, yerr=err, fmt=style + "o", color=colour, capsize=3, label=f"{who} p{q}")
        per = [[w.requests_per_check for w in r.of(who)] for r in results]
        req.plot(ns, [median(v) for v in per], "-o", color=colour, label=who)
    lat.set(
        xlabel="ModelDeployments (N)", ylabel="drift due → Job created (s)", title="Latency (≥ where never started)"
    )
    req.set(xlabel="ModelDeployments (N)", ylabel="API requests per drift check", title="Requests per check, busy")
    for ax in (lat, req):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"benchmarks/scale.py: {cfg.reps} repetitions, {cfg.window:.0f}s windows, medians (bars: range)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def check_smoke(results: Sequence[SizeResult], cfg: Config) -> list[str]:
    """Correctness only, never time: every object checked by every operator in every window, the
    order alternating, numbers finite."""
    problems = []
    for r in results:
        for rep in range(cfg.reps):
            order = tuple(run.who for run in sorted((x for x in r.runs if x.rep == rep), key=lambda x: x.position))
            if order != cfg.order(rep):
                problems.append(f"repetition {rep}: operators ran as {order}, not {cfg.order(rep)}")
        for run in r.runs:
            w, who = run.busy, f"{run.who} (rep {run.rep})"
            if w.objects_checked != r.n:
                problems.append(f"{who}: {w.objects_checked} of {r.n} objects got a drift Job in the window")
            if w.due < 1:
                problems.append(f"{who}: no first check fell due in the window")
            if not w.latencies or not all(math.isfinite(x) for x in w.latencies):
                problems.append(f"{who}: no finite due → Job latencies ({len(w.latencies)} samples)")
            if not sum(w.requests.values()) > 0 or not math.isfinite(w.rss_mib) or w.rss_mib <= 0:
                problems.append(f"{who}: requests {sum(w.requests.values())}, RSS {w.rss_mib} MiB")
        if len({run.busy.due for run in r.runs}) != 1:
            problems.append(f"windows saw different first checks due: {[run.busy.due for run in r.runs]}")
        for who in (OURS, BASE):
            if who not in r.idle or not math.isfinite(r.idle[who].requests_per_min):
                problems.append(f"{who}: no idle measurement")
    return problems


def to_json(results: Sequence[SizeResult], cfg: Config) -> dict[str, Any]:
    def window(w: Window) -> dict[str, Any]:
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

    out = [
        {
            "n": r.n,
            "interval": r.interval,
            "nodes": r.nodes,
            "restart_seconds": r.restart_seconds,
            "restart_requests": r.restart_requests,
            "runs": [
                {
                    "who": x.who,
                    "rep": x.rep,
                    "position": x.position,
                    "peak_rss_mib": x.peak_rss_mib,
                    "busy": window(x.busy),
                }
                for x in r.runs
            ],
            "idle": {who: window(w) for who, w in r.idle.items()},
        }
        for r in results
    ]
    conf = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    return {"config": conf, "sizes": out}


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None, Path | None]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
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
    p.add_argument("--smoke", action="store_true", help="CI: N=5, 2 reps, short windows, correctness (never time)")
    a = p.parse_args(argv)
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
            sizes, a.rate, a.interval, a.window, a.idle_window, a.baseline_tick, a.kubeconfig, False, a.reps, src
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

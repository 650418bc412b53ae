"""benchmarks.scale: one size on one cluster: seeding, the wiped slate, the busy and idle windows."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.baseline_operator import spread
from benchmarks.common import (
    STEP_LABEL,
    Cluster,
    Completer,
    Identity,
    Process,
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
    request_counts,
    serving_deployment,
    wait_until,
)
from benchmarks.scale.model import (
    BASE,
    BEFORE,
    CHANGED,
    IDLE_INTERVAL,
    MIB,
    OURS,
    PLAIN,
    PODS_PER_NODE,
    Config,
    Run,
    SizeResult,
    Window,
)
from benchmarks.scale.tracker import Tracker

# Room for the serving pods and the drift pods of one window (wiped before the next): kwok nodes
# are cheap but not free (each renews a Lease), so not six pods' room per object as before.
SPARE_PODS = 2000
# The controller-manager's and scheduler's client rate on the local control plane: their defaults
# (20/s, 50/s) make the N serving Deployments' ReplicaSets and pods the longest part of a 10,000
# run; the windows' own work (2 drift Jobs a second) stays far below either.
CONTROLLERS_QPS = 200


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
        self.seeding = 0.0  # s the last N status writes took (the wipe's): the lead starts after them

    def setup(self) -> None:
        api, ns = self.api, self.ns
        create_namespace(api, ns)
        account = {OURS: "ours", BASE: "baseline", BEFORE: "before"}
        self.ids = {who: make_identity(api, ns, account[who], self.workdir) for who in self.cfg.operators}
        self.idents = list(self.ids.values())
        started = time.monotonic()
        deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
        paused = self.cfg.serving == "paused"
        serving = [serving_deployment(name) for name in self.names]
        for body in serving:  # paused: the Deployment controller creates no ReplicaSet, so no pod
            body["spec"]["paused"] = paused
        create_all(api, [(deployments, body) for body in serving])
        t0 = time.monotonic()
        create_all(api, [(mdeps_path(ns), model_deployment(name, f"{self.interval}s")) for name in self.names])
        self.seeding = time.monotonic() - t0

        def serving_ready() -> bool:
            pods = api.items(f"/api/v1/namespaces/{ns}/pods", selector=f"!{STEP_LABEL}")
            return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) >= self.n

        if not paused:
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
        ``lead`` seconds after the wipe ends (the seeding's N writes are timed, and the next wipe
        allows for as long as the last one took: at 10,000 objects on a loaded machine they take
        minutes, which a lead counted from the wipe's start left out). Returns the epoch."""
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
        epoch = time.time() + self.seeding * 1.2 + lead
        started = time.monotonic()
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
        self.seeding = time.monotonic() - started
        if epoch - time.time() < lead * 0.8:
            print(
                f"# N={self.n}: the wipe ended only {epoch - time.time():.0f}s before the checks fall due", flush=True
            )
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
        n = self.n
        self.epoch = self.wipe(lead=self.cfg.lead_for(n))
        opens = self.epoch + self.cfg.settle_for(n)
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
            f"p50 {fmt(window.latency(50), 2)}s, p99 {fmt(window.latency(99), 2)}s, "
            f"{window.requests_per_min:.0f} req/min, "
            f"{fmt(window.requests_per_check, 1)} req/check, CPU {window.cpu_percent:.0f}%, "
            f"peak RSS {proc.peak_rss / MIB:.0f} MiB",
            flush=True,
        )
        return Run(who, rep, position, window, proc.peak_rss / MIB)

    def run(self) -> SizeResult:
        cfg, n = self.cfg, self.n
        runs = [self.busy(who, rep, pos) for rep in range(cfg.reps) for pos, who in enumerate(cfg.order(rep))]
        idle: dict[str, Window] = {}
        restarts: dict[str, tuple[float, float]] = {}
        if cfg.idle_window:
            # Nothing due: every interval 24h. The baseline starts; ours restarts twice on the same
            # objects (it rebuilds its status from the Jobs): first on specs all changed while it
            # was down (each object's status written again), then plainly (nothing to write);
            # the baseline and the second ours measured in the same idle window.
            self.set_intervals(IDLE_INTERVAL)
            wait_until("the last checks to finish", lambda: self.tracker.running() == 0, 60 + n * 0.1)
            self.epoch = time.time() + 86400  # no first check falls due either
            base = self.start(BASE, "idle") if BASE in cfg.operators else None
            ours: Process | None = None
            try:
                ours, restarts[CHANGED] = self.restart()
                ours.stop()
                ours, restarts[PLAIN] = self.restart()
                who = [(ours, self.ids[OURS]), *([(base, self.ids[BASE])] if base is not None else [])]
                idle.update(zip((OURS, BASE), self.measure(who, cfg.idle_window, None), strict=False))
            except TimeoutError as exc:  # a finding, not a reason to lose the busy windows
                print(f"# N={n}: {exc}; no idle figures", flush=True)
                restarts.setdefault(CHANGED, (math.inf, math.nan))
                restarts.setdefault(PLAIN, (math.inf, math.nan))
            finally:
                for proc in (ours, base):
                    if proc is not None:
                        proc.stop()
        return SizeResult(n, self.interval, 0, runs, idle, restarts)

    def restart(self) -> tuple[Process, tuple[float, float]]:
        """Start ours on the objects; (s from its start until it had reconciled every one, its API
        requests until then)."""
        before, t0 = request_counts(self.api), time.monotonic()
        ours = self.start(OURS, f"restart{int(t0)}")
        try:
            settled = self.wait_restarted(ours, timeout=60 + self.n * 0.6, every=0.5 if self.n <= 2000 else 2) - t0
        except TimeoutError:
            ours.stop()  # the caller never gets this process to stop
            raise
        made = sum(self.ids[OURS].requests(diff(request_counts(self.api), before)).values())
        print(f"# N={self.n}: ours restarted, all reconciled after {settled:.1f}s, {made:.0f} requests", flush=True)
        return ours, (settled, made)

    def set_intervals(self, interval: str) -> None:
        patch_all(
            self.api, [(f"{mdeps_path(self.ns)}/{m}", {"spec": {"drift": {"interval": interval}}}) for m in self.names]
        )

    def wait_restarted(self, proc: Process, timeout: float, every: float) -> float:
        """Until the restarted operator has reconciled every object once: each reconcile sets the
        object's ``modelfreshness_phase`` series, which a new process has for no object, so the
        count of objects in its /metrics (only that metric asked for: ``name[]``) is how many it
        has reconciled since its start. Polled every ``every`` s; returns (monotonic) when all
        ``n`` were there (a settle time accurate to ``every``)."""
        url = f"{proc.metrics_url}?name[]=modelfreshness_phase"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=10) as reply:
                if len(reconciled(reply.read().decode(), self.ns)) >= self.n:
                    return time.monotonic()
            if not proc.alive():
                raise TimeoutError(f"{proc.name} exited during its restart:\n{proc.tail()}")
            time.sleep(every)
        raise TimeoutError(f"{proc.name} had not reconciled every object {timeout:.0f}s after its restart")


def reconciled(exposition: str, namespace: str) -> set[str]:
    """The objects of ``namespace`` with a ``modelfreshness_phase`` series in a Prometheus text exposition."""
    return {
        sample.labels["name"]
        for family in text_string_to_metric_families(exposition)
        if family.name == "modelfreshness_phase"
        for sample in family.samples
        if sample.labels.get("namespace") == namespace
    }


def run_size(cfg: Config, n: int) -> SizeResult:
    nodes = max(2, math.ceil(((n if cfg.serving == "pods" else 0) + SPARE_PODS) / PODS_PER_NODE))
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix=f"mf-bench-scale-{n}-"))
    with cluster(cfg.kubeconfig, nodes=nodes, api_qps=CONTROLLERS_QPS) as c:
        bench = Bench(cfg, c, n, workdir)
        try:
            bench.setup()
            result = bench.run()
        finally:
            bench.teardown()
    result.nodes = nodes if cfg.kubeconfig is None else 0
    result.load = (load, os.getloadavg())
    print(f"# N={n}: operator logs in {workdir}", flush=True)
    return result

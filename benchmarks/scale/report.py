"""benchmarks.scale: tables, the figure, the JSON and the smoke checks (pure over the results)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import (
    VERBS,
    fmt,
    percentile,
    ratio,
    table,
)
from benchmarks.scale.model import (
    BASE,
    OURS,
    Config,
    SizeResult,
    Window,
)


def median(values: Sequence[float]) -> float:
    return percentile([v for v in values if not math.isnan(v)], 50)


def cell(values: Sequence[float], digits: int = 1, bound: bool = False) -> str:
    """The median over repetitions, and the range when there are several. Pure."""
    mark = "≥ " if bound else ""
    finite = [v for v in values if not math.isnan(v)]
    if len(finite) < 2:
        return mark + fmt(median(values), digits)
    return f"{mark}{fmt(median(finite), digits)} [{fmt(min(finite), digits)}, {fmt(max(finite), digits)}]"


def vs_base(ours: float, baseline: float) -> str:
    """The ours/baseline column's cell ("-" without a baseline)."""
    return fmt(ratio(ours, baseline), 2)


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
            vs_base(median(r.peaks(OURS)), median(r.peaks(BASE)) if BASE in whos else math.nan),
        ]
    ]
    for label, value, digits in metrics:
        per = {who: [value(w) for w in r.of(who)] for who in whos}
        if label.startswith("  …") and not any(round(v) for vs in per.values() for v in vs):
            continue
        q = {"p50": 50, "p99": 99, "max": 100}.get(label.split()[-2]) if "due → Job" in label else None
        cells = [cell(per[who], digits, q is not None and any(w.bound(q) for w in r.of(who))) for who in whos]
        rows.append([label, *cells, vs_base(median(per[OURS]), median(per[BASE]) if BASE in per else math.nan)])
    idle = [r.idle[who].requests_per_min if who in r.idle else math.nan for who in whos]
    idle_cpu = [r.idle[who].cpu_percent if who in r.idle else math.nan for who in whos]
    base = whos.index(BASE) if BASE in whos else None
    for label, values in (("API requests/min, idle (nothing due)", idle), ("CPU idle (% of one core)", idle_cpu)):
        rows.append([label, *(fmt(v) for v in values), vs_base(values[0], values[base] if base else math.nan)])
    orders = "; ".join(" → ".join(cfg.order(rep)) for rep in range(cfg.reps))
    head = (
        f"N = {r.n}: interval {r.interval}s ({r.n / r.interval:.2f} checks/s), busy window {cfg.window:.0f}s per "
        f"operator, {cfg.reps} repetitions (orders: {orders}), idle window {cfg.idle_window:.0f}s, "
        f"baseline tick {cfg.tick:g}s, checks first due {cfg.lead_for(r.n):.0f}s after each wipe and the "
        f"window opening {cfg.settle_for(r.n):.0f}s later"
        + (f", {r.nodes} kwok nodes" if r.nodes else "")
        + (", serving Deployments paused (no serving pods)" if cfg.serving == "paused" else "")
    )
    if r.load[0]:
        loads = [" / ".join(f"{x:.1f}" for x in load) for load in r.load]
        head += f"; load average (1/5/15 min) {loads[0]} at the start, {loads[1]} at the end"
    tail = "\nCells: median over repetitions [min, max]; ≥: includes checks never started (a lower bound)."
    for kind, (seconds, requests) in r.restarts.items():
        if math.isinf(seconds):
            tail += f"\nOur operator restarted ({kind}) on the {r.n} objects: not done with them within the limit."
        else:
            tail += (
                f"\nOur operator restarted ({kind}) on the {r.n} objects: every object reconciled after "
                f"{seconds:.1f}s (from its start, read from its /metrics), {requests:.0f} API requests."
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
        if any(y > 0 for line in ax.get_lines() for y in line.get_ydata()):  # none: no check started
            ax.set_yscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"benchmarks/scale: {cfg.reps} repetitions, {cfg.window:.0f}s windows, medians (bars: range)")
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
            "load_average": {"start": r.load[0], "end": r.load[1]},
            "restarts": {kind: {"seconds": sec, "requests": req} for kind, (sec, req) in r.restarts.items()},
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

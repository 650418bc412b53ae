"""benchmarks.scale: the configuration and what one run measured (plain data)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    percentile,
)

MIB = 1024 * 1024
IDLE_INTERVAL = "24h"
PODS_PER_NODE = 110


OURS, BASE, BEFORE = "ours", "baseline", "ours (before)"
# Our operator's two restarts in the idle phase: on specs all changed while it was down, then plain.
CHANGED, PLAIN = "specs changed while down", "plain"


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
    lead: float | None = None  # s from a wiped slate to the first checks falling due (None: by N)
    settle: float | None = None  # s from then to the window's opening (None: by N)
    serving: str = "pods"  # "paused": serving Deployments paused, no ReplicaSets nor pods (cheap seeding)
    baseline: bool = True  # False: ours alone (at 10,000 the baseline's timers swamp the local API server)

    def interval_for(self, n: int) -> int:
        return self.interval or max(10, round(n / self.rate))

    def lead_for(self, n: int) -> float:
        """Time for every operator to start and take every object before checks fall due."""
        return self.lead if self.lead is not None else (15 if self.smoke else 20) + n * 0.15

    def settle_for(self, n: int) -> float:
        return self.settle if self.settle is not None else (2 if self.smoke else 2 + n * 0.06)

    @property
    def operators(self) -> tuple[str, ...]:
        return (OURS, *((BASE,) if self.baseline else ()), *((BEFORE,) if self.ours_src else ()))

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
    restarts: dict[str, tuple[float, float]]  # CHANGED / PLAIN -> (s to every object reconciled, API requests)
    load: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())  # 1/5/15-min load average at start, end

    def of(self, who: str) -> list[Window]:
        return [r.busy for r in self.runs if r.who == who]

    def peaks(self, who: str) -> list[float]:
        return [r.peak_rss_mib for r in self.runs if r.who == who]

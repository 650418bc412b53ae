"""The operators under test as subprocesses (ours, from this checkout or another source tree, and
the baseline), ready when their health URL answers; their RSS and CPU time from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from testkit.net import free_port, http_ok
from testkit.process import log_tail, stop_process
from testkit.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
TRAINER_IMAGE = "registry.example/freshness-trainer:bench"


class ProcStats:
    """RSS and CPU time of one process, from /proc (Linux)."""

    _TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def rss(self) -> int:
        """Resident set size in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu(self) -> float:
        """User plus system CPU seconds so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._TICKS


@dataclass
class Process:
    """An operator under test as a subprocess (cwd: the repository), ready when its health URL answers."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    health_url: str
    metrics_url: str = ""  # ours: its Prometheus endpoint (what it has reconciled since its start)
    proc: subprocess.Popen[bytes] | None = None
    peak_rss: int = 0
    _sampler: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self, timeout: float = 120) -> Process:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._stop.clear()
        self._sampler = threading.Thread(target=self._sample, name=f"rss {self.name}", daemon=True)
        self._sampler.start()
        wait_for(f"{self.name} to answer {self.health_url}", self._healthy, timeout)
        return self

    @property
    def stats(self) -> ProcStats:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return ProcStats(self.proc.pid)

    def _healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited during start-up:\n{self.tail()}")
        return http_ok(self.health_url)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak_rss = max(self.peak_rss, self.stats.rss())
            except (FileNotFoundError, ProcessLookupError):
                return

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self._stop.set()
        stop_process(self.proc, grace=30)

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)


def our_operator(kubeconfig: Path, namespace: str, log: Path, src: Path | None = None) -> Process:
    """``python -m freshness_operator`` watching one namespace (env per docs/contracts.md); from the
    source tree ``src`` (e.g. a git worktree of an older commit) when given, else this checkout."""
    health, metrics = free_port(), free_port()
    path = [str(src / d) for d in ("contract", "operator", "trainer", ".")] if src else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")]),
        "KUBECONFIG": str(kubeconfig),
        "FRESHNESS_NAMESPACES": namespace,
        "FRESHNESS_METRICS_PORT": str(metrics),
        "FRESHNESS_HEALTH_PORT": str(health),
        "FRESHNESS_TRAINER_IMAGE": TRAINER_IMAGE,
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "freshness_operator"]
    name = f"our operator from {src}" if src else "our operator"
    return Process(name, argv, env, log, f"http://127.0.0.1:{health}/healthz", f"http://127.0.0.1:{metrics}/metrics")


def baseline_operator(kubeconfig: Path, namespace: str, tick: float, epoch: float, log: Path) -> Process:
    """``python -m benchmarks.baseline_operator`` (the plain per-object timer) on one namespace."""
    health = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "BASELINE_NAMESPACE": namespace,
        "BASELINE_TICK": str(tick),
        "BASELINE_EPOCH": repr(epoch),
        "BASELINE_HEALTH_PORT": str(health),
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, "-m", "benchmarks.baseline_operator"]
    return Process("baseline operator", argv, env, log, f"http://127.0.0.1:{health}/healthz")

"""Readiness and liveness probes and the preStop hook, run as the kubelet runs them. Touches the
network and processes.

``httpGet`` (success: a status in [200, 400)), ``tcpSocket`` (a connection) and ``exec`` (exit 0,
run inside the container's mount and network namespaces as its user, with its environment, through
``nsenter``), with the kubelet's defaults: initialDelaySeconds 0, periodSeconds 10, timeoutSeconds
1, successThreshold 1, failureThreshold 3.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """Where the container is: its pod IP, its ports by name, its process, user and environment."""

    pod_ip: str
    ports: Mapping[str, int]
    pid: int
    uid: int
    gid: int
    cwd: str
    env: Mapping[str, str]


def _port(value: Any, target: Target) -> int:
    return int(target.ports[value]) if isinstance(value, str) and not value.isdigit() else int(value)


def check(probe: Mapping[str, Any], target: Target) -> tuple[bool, str]:
    """One attempt: (success, what was seen)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    if http := probe.get("httpGet"):
        url = f"http://{http.get('host') or target.pod_ip}:{_port(http['port'], target)}{http.get('path') or '/'}"
        headers = {h["name"]: h["value"] for h in http.get("httpHeaders") or []}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                return 200 <= resp.status < 400, f"GET {url}: {resp.status}"
        except urllib.error.HTTPError as exc:
            return 200 <= exc.code < 400, f"GET {url}: {exc.code}"
        except OSError as exc:
            return False, f"GET {url}: {exc}"
    if tcp := probe.get("tcpSocket"):
        addr = (tcp.get("host") or target.pod_ip, _port(tcp["port"], target))
        try:
            socket.create_connection(addr, timeout=timeout).close()
            return True, f"tcp {addr[0]}:{addr[1]} open"
        except OSError as exc:
            return False, f"tcp {addr[0]}:{addr[1]}: {exc}"
    command = list(probe["exec"]["command"])
    argv = ["nsenter", "-t", str(target.pid), "-m", "-n", f"--wd={target.cwd}", "-S", str(target.uid),
            "-G", str(target.gid), "--", *command]
    try:
        proc = subprocess.run(argv, env=dict(target.env), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return False, f"exec {command}: timed out after {timeout:.0f}s"
    return proc.returncode == 0, f"exec {command}: exit {proc.returncode}"


class Prober(threading.Thread):
    """Runs one probe every periodSeconds until ``stop`` is set; calls ``on_change(passing, detail)``
    when the verdict flips (after successThreshold successes or failureThreshold failures)."""

    def __init__(
        self, probe: Mapping[str, Any], target: Target, on_change: Callable[[bool, str], None],
        stop: threading.Event, initial: bool,
    ) -> None:
        super().__init__(daemon=True)
        self.probe, self.target, self.on_change, self.stop, self.passing = probe, target, on_change, stop, initial

    def run(self) -> None:
        p = self.probe
        period, delay = float(p.get("periodSeconds") or 10), float(p.get("initialDelaySeconds") or 0)
        need_ok, need_fail = int(p.get("successThreshold") or 1), int(p.get("failureThreshold") or 3)
        streak = 0  # consecutive results that disagree with the current verdict
        if self.stop.wait(delay):
            return
        while not self.stop.is_set():
            ok, detail = check(p, self.target)
            streak = 0 if ok == self.passing else streak + 1
            if streak >= (need_ok if ok else need_fail):
                self.passing, streak = ok, 0
                if not self.stop.is_set():
                    self.on_change(ok, detail)
            if self.stop.wait(period):
                return


def pre_stop(container: Mapping[str, Any], target: Target | None, grace: float) -> str:
    """Run the container's ``lifecycle.preStop`` (``sleep`` or ``exec``) before SIGTERM, as the kubelet
    does, within ``grace`` seconds; returns what happened ("" without a hook). A failing hook is
    reported, not fatal: SIGTERM follows either way."""
    hook = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if sleep := hook.get("sleep"):
        seconds = min(float(sleep["seconds"]), grace)
        time.sleep(seconds)
        return f"preStop slept {seconds:.0f}s"
    if "exec" in hook and target is not None:
        ok, detail = check({"exec": hook["exec"], "timeoutSeconds": grace}, target)
        return f"preStop {detail}" + ("" if ok else " (failed)")
    return ""

"""Process supervision for the control plane's components: start one with its log, wait until it
is healthy (failing fast when it exits), stop it by process group, reap it."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from hack.localcluster.state import ClusterError


def start(name: str, argv: list[str], log_dir: Path) -> int:
    """Start ``argv`` in its own session, output appended to ``log_dir/<name>.log``; returns its PID."""
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except OSError as exc:
        raise ClusterError(f"{name} could not be started ({exc}); see its log: {log_dir / f'{name}.log'}") from exc
    finally:
        log.close()
    return proc.pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own exited child) still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def wait_healthy(name: str, log: Path, pid: int, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check`` until true; raise ClusterError naming ``name`` and its log when the process
    exits first or ``timeout`` seconds pass. A check that raises counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise ClusterError(f"{name} exited during start-up; see its log: {log}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise ClusterError(f"{name} did not become healthy within {timeout:.0f}s; see its log: {log}")


def stop(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, and reap it."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not alive(pid):
            reap(pid)
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    reap(pid)


def reap(pid: int) -> None:
    """Collect a dead child's exit status (blocking is safe: it is already dead or a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def http_ok(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    """GET ``url`` answered 200 (raises while nothing listens; ``wait_healthy`` treats that as not yet)."""
    with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
        return bool(resp.status == 200)


def insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def admin_ctx(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx

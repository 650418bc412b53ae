"""Subprocesses the tests, the benchmarks and the demo start: stop them, read their logs."""

from __future__ import annotations

import subprocess
from pathlib import Path


def stop_process(proc: subprocess.Popen[bytes] | None, *, grace: float = 20, kill: bool = False) -> None:
    """Terminate ``proc`` (or kill it at once with ``kill``) and wait; kill it if it outlives ``grace``."""
    if proc is None or proc.poll() is not None:
        return
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def log_tail(log: Path, lines: int = 40, title: str | None = None) -> str:
    """The last ``lines`` lines of ``log`` (empty when it does not exist), under ``--- title ---``."""
    text = log.read_text(errors="replace") if log.exists() else ""
    body = "\n".join(text.splitlines()[-lines:])
    return f"--- {title} ---\n{body}" if title else body

"""Polling with a deadline: the one ``wait_for`` of the tests, the benchmarks and ``hack/``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class WaitTimeout(AssertionError, TimeoutError):
    """A wait that ran out: an AssertionError for pytest, a TimeoutError for the benchmarks' handlers."""


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 60,
    context: Callable[[], str] | None = None,
    every: float = 0.3,
) -> Any:
    """Poll ``probe`` every ``every`` seconds until it returns something truthy and return that;
    after ``timeout`` seconds raise WaitTimeout naming ``what`` (and ``context()``, e.g. a log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(every)

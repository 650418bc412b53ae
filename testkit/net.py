"""Local ports and health URLs."""

from __future__ import annotations

import socket
import ssl
import urllib.request


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str, ctx: ssl.SSLContext | None = None, timeout: float = 2) -> bool:
    """True when GET ``url`` answers 200; False when nothing answers (connection refused, timeout, HTTP error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False

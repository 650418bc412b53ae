"""Run ``freshness-serve`` as a subprocess on a free port (tests and benchmarks). Touches processes.

Clients talk to it on 127.0.0.1 (KServe's HTTP server itself listens on every interface).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """A server process; ``url`` is its loopback base URL. Use as a context manager."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.env = {"HTTP_PORT": str(self.port), "GRPC_PORT": "0", **env}
        full = {**os.environ, **self.env}
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "freshness_trainer.serve"], env=full,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def get(self, path: str) -> tuple[int, Any]:
        return request(self.url + path)

    def wait_listening(self, timeout: float = 120.0) -> None:
        """Until ``/v2/health/live`` answers (the model may or may not be ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/v2/health/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server did not listen within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        """The ``modelfreshness_serving_*`` samples, keyed by name and labels as exposed."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("modelfreshness_serving_"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self._log.close()


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 60.0) -> tuple[int, Any]:
    """(status, parsed JSON body or text) of a GET, or a POST when ``body`` is given."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def post_json(url: str, doc: Any, timeout: float = 60.0) -> tuple[int, Any]:
    return request(url, json.dumps(doc).encode(), {"content-type": "application/json"}, timeout)

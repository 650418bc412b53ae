"""A throw-away Prometheus server (Debian's ``prometheus``, from hack/install-promtool.sh) for tests.

It scrapes the given targets and evaluates the given rule groups every ``interval``; its data
lives in a temporary folder. ``start`` waits for ``/-/ready``; ``stop`` ends and reaps the process.
Touches the filesystem, a local port and a subprocess; no Kubernetes API.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from testkit.net import free_port, http_ok
from testkit.process import log_tail, stop_process
from testkit.wait import wait_for


@dataclass
class Prometheus:
    """``prometheus`` scraping ``targets`` (job name -> host:port list) with ``rule_groups`` loaded.

    ``labels`` (job name -> label set) are target labels, as Kubernetes service discovery would
    attach them (e.g. a model server pod's ``namespace`` and ``pod``).
    """

    workdir: Path
    targets: dict[str, list[str]]
    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    interval: str = "1s"
    binary: str = "prometheus"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    def config(self) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(self.workdir / "rules.yaml")],
            "scrape_configs": [
                # honor_labels as the chart's ServiceMonitor: keep the ModelDeployment's namespace/name
                {
                    "job_name": job,
                    "honor_labels": True,
                    "static_configs": [{"targets": hosts, "labels": self.labels.get(job, {})}],
                }
                for job, hosts in self.targets.items()
            ],
        }

    def start(self, timeout: float = 60) -> Prometheus:
        exe = shutil.which(self.binary)
        if exe is None:
            raise FileNotFoundError(f"{self.binary} not found; run `make setup` (hack/install-promtool.sh)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "rules.yaml").write_text(yaml.safe_dump({"groups": self.rule_groups}))
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(self.config()))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for("prometheus to be ready", self._ready, timeout, self.tail, every=0.2)
        except TimeoutError:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited ({self.proc.returncode}):\n{self.tail()}")
        return http_ok(f"{self.url}/-/ready")

    def stop(self) -> None:
        stop_process(self.proc)

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines, "prometheus log")

    def api(self, path: str, **params: str | float) -> Any:
        """GET /api/v1/<path>; returns ``data``, raises with Prometheus's error on a failed query."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
            body = json.loads(e.read() or b"{}")
        if body.get("status") != "success":
            raise ValueError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float = 1) -> list[dict[str, Any]]:
        """Series of ``expr`` at ``start``, ``start + step``, ... ``end`` (unix seconds), as Grafana asks."""
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

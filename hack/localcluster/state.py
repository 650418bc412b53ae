"""What a running local cluster looks like to its users (plain data, saved as state.json), and its error."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = Path(os.environ.get("MODELFRESHNESS_CLUSTER_DIR", REPO / ".localcluster"))


class ClusterError(RuntimeError):
    """A component did not come up; the message names it and the path of its log."""


@dataclass
class ClusterInfo:
    """What a running local cluster looks like to its users. Plain data, saved as state.json."""

    state_dir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    pids: dict[str, int] = field(default_factory=dict)  # in start order; stopped in reverse
    ports: dict[str, int] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)  # how each component was started (restart)
    client_qps: int | None = None  # the controller-manager's and scheduler's API rate (None: theirs); in argv

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfigs(self) -> Path:
        """One kubeconfig per client identity (admin, controller-manager, scheduler, kwok)."""
        return self.state_dir / "kubeconfigs"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def save(self) -> None:
        (self.state_dir / "state.json").write_text(self.to_json())

    def to_json(self) -> str:
        return json.dumps(
            {
                "state_dir": str(self.state_dir),
                "bin_dir": str(self.bin_dir),
                "kubeconfig": str(self.kubeconfig),
                "server": self.server,
                "pids": self.pids,
                "ports": self.ports,
                "argv": self.argv,
            },
            indent=2,
        )

    @classmethod
    def load(cls, state_dir: Path) -> ClusterInfo | None:
        path = state_dir / "state.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        return cls(
            state_dir=Path(raw["state_dir"]),
            bin_dir=Path(raw["bin_dir"]),
            kubeconfig=Path(raw["kubeconfig"]),
            server=raw["server"],
            pids={k: int(v) for k, v in raw["pids"].items()},
            ports={k: int(v) for k, v in raw["ports"].items()},
            argv={k: list(v) for k, v in raw.get("argv", {}).items()},
        )

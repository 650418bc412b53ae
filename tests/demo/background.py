"""`make demo` from a fresh clone, started when the session starts and waited for by its test.

The demo runs its own control plane, registry, Prometheus and pods (free ports, its own pod
network block and folders), so it does not touch the session's cluster; most of its 14 minutes are
spent waiting (schedules, rollouts, traffic at 5 requests a second), which the rest of the suite
fills. tests/conftest.py starts it only when the session selected its test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_NAME = "test_make_demo_from_a_fresh_clone"
STORY_TIMEOUT = 1080  # seconds the story may take once the operator runs (hack.demo --timeout)


@dataclass
class DemoRun:
    """One `make -C <clone> demo` in its own process group; output goes to files under ``base``."""

    work: Path
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, base: Path) -> DemoRun:
        clone, work = base / "clone", base / "work"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=300)
        # The clone reuses this checkout's virtual environment (reinstalling torch would test pip, not
        # us): with VENV given, `make demo` installs nothing into it and runs the clone's code from
        # PYTHONPATH (tests/demo/test_demo_env.py; tests/conftest.py checks the venv is left as found).
        venv = Path(sys.executable).parent.parent
        stdout, stderr = base / "stdout.txt", base / "stderr.txt"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                ["make", "-C", str(clone), "demo", f"VENV={venv}",
                 f"DEMO_ARGS=--workdir {work} --timeout {STORY_TIMEOUT}"],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        return cls(work, proc, stdout, stderr)

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """The exit status and output; stops the demo (and says so in stderr) if it is not done in ``timeout`` s."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            rc = -1
            with self.stderr.open("a") as err:
                err.write(f"\n[tests] the demo was still running after {timeout:.0f} s of waiting; stopped\n")
        return rc, self.stdout.read_text(errors="replace"), self.stderr.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the group (the demo stops what it started on it), SIGKILL after a grace period."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

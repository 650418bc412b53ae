"""A long job the session starts in the background before its first test, and a test waits for.

The suite leaves the CPU idle for much of its run (tests waiting on the control plane, schedules,
rollouts; `benchmarks/cpu_idle.sh` samples how much); `make demo` (tests/demo/background.py) and the Kueue build
(tests/operator/test_kueue.py) fill that time instead of adding theirs to it. tests/conftest.py
starts each only when the session selected a test that needs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Background:
    """A command in its own process group; its output goes to files under the folder it was given."""

    name: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(cls, name: str, argv: Sequence[str], base: Path) -> Background:
        stdout, stderr = base / f"{name}.stdout", base / f"{name}.stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        return cls(name, proc, stdout, stderr)

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """The exit status and output; stops the job (and says so in stderr) if it is not done in ``timeout`` s."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            rc = -1
            with self.stderr.open("a") as err:
                err.write(f"\n[tests] {self.name} was still running after {timeout:.0f} s of waiting; stopped\n")
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

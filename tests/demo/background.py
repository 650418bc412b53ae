"""`make demo` from a fresh clone, started when the session starts and waited for by its test.

The demo runs its own control plane, registry, Prometheus and pods (free ports, its own pod
network block and folders), so it does not touch the session's cluster; most of its run is
spent waiting (schedules, rollouts, traffic at 5 requests a second), which the rest of the suite
fills. tests/conftest.py starts it only when the session selected its test, and runs that test last.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.background import Background

REPO = Path(__file__).resolve().parents[2]
TEST_NAME = "test_make_demo_from_a_fresh_clone"
STORY_TIMEOUT = 2400
"""Seconds the story may take once the operator runs (hack.demo --timeout). The demo shares the two
cores with the suite's heaviest tests, so this bounds a hang, not the story's speed: in a cold run
on an AMD EPYC VM (2026-12-03) its two candidates were still training 16 minutes after they started
(5.6 minutes alone on that VM) while the two-pod DDP test and the scale smoke ran (load 15-19),
and the 1,080 s allowed before failed the suite. A longer bound costs nothing when the story is
quick; its test runs last and waits for it (tests/demo/test_demo.py)."""


@dataclass
class DemoRun:
    """One `make -C <clone> demo`; ``work`` holds its data, logs and summary."""

    work: Path
    job: Background

    @classmethod
    def start(cls, base: Path) -> DemoRun:
        clone, work = base / "clone", base / "work"
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=300)
        # The clone reuses this checkout's virtual environment (reinstalling torch would test pip, not
        # us): with VENV given, `make demo` installs nothing into it and runs the clone's code from
        # PYTHONPATH (tests/demo/test_demo_env.py; tests/conftest.py checks the venv is left as found).
        venv = Path(sys.executable).parent.parent
        args = f"DEMO_ARGS=--workdir {work} --timeout {STORY_TIMEOUT}"
        argv = ["make", "-C", str(clone), "demo", f"VENV={venv}", args]
        return cls(work, Background.start("demo", argv, base))

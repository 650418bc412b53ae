"""`make demo` from a fresh clone runs the tutorial's story to the end (issue: the main job)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hack import timeline_png
from tests.pngfile import png_size

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _in_order(seen: list[str], expected: list[str]) -> bool:
    it = iter(seen)
    return all(any(phase == want for phase in it) for want in expected)


def test_in_order_helper() -> None:
    assert _in_order(["Pending", "Monitoring", "Training", "Monitoring"], ["Monitoring", "Training", "Monitoring"])
    assert not _in_order(["Training", "Monitoring"], ["Monitoring", "Training"])


@pytest.mark.timeout(1200)
def test_make_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    work = tmp_path / "work"
    # The clone reuses this checkout's virtual environment (reinstalling torch would test pip, not
    # us): with VENV given, `make demo` installs nothing into it and runs the clone's code from
    # PYTHONPATH (tests/demo/test_demo_env.py; tests/conftest.py checks the venv is left as found).
    venv = Path(sys.executable).parent.parent
    proc = subprocess.run(
        ["make", "-C", str(clone), "demo", f"VENV={venv}", f"DEMO_ARGS=--workdir {work} --timeout 780"],
        text=True,
        capture_output=True,
        timeout=15 * 60,
    )
    print(proc.stdout[-6000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / "summary.json").read_text())
    # Phases are polled once a second, so short ones (RollingOut on kwok) may be missed; the
    # Events record every transition.
    assert _in_order(summary["phases"], ["Monitoring", "Training", "Packaging", "Monitoring"]), summary["phases"]
    events = summary["events"]
    assert _in_order(
        events, ["NoDrift", "DriftDetected", "TrainingStarted", "CandidateAccepted", "RolloutStarted", "RolledOut"]
    ), events
    assert _in_order(events, ["PackagingStarted", "Packaged", "RolledOut"]), events
    assert summary["servedClasses"] == ["bees", "cats", "dogs"], summary["servedClasses"]
    assert str(summary["bestOverrides"].get("train.num_classes")) == "3", summary["bestOverrides"]
    assert summary["servingImage"].startswith("registry.local/cats-dogs:"), summary["servingImage"]
    assert summary["servingImage"] != "registry.local/cats-dogs:v1"
    before, after = summary["productionAccuracyBefore"], summary["productionAccuracyAfter"]
    assert before is not None and after is not None, summary
    assert after > before, f"accuracy on the three-class production batch did not improve: {before} -> {after}"
    assert summary["gate"]["value"] > summary["gate"]["baseline"], summary["gate"]
    assert "stopped every process the demo started" in proc.stdout
    assert_prometheus_saw_the_loop(summary)
    png = Path(summary["timelinePng"])
    assert png == work / "timeline.png" and f"timeline picture:      {png}" in proc.stdout
    assert png_size(png) == (timeline_png.WIDTH, timeline_png.HEIGHT)


def assert_prometheus_saw_the_loop(summary: dict[str, Any]) -> None:
    """The chart's drift alert, as the demo's Prometheus evaluated it over the run, follows the
    verdicts: pending once the drifted check was scraped, firing after its 5 s `for`; resolved once
    the new model's first check is clean, still firing if that check found drift too."""
    drift = [(a["time"], a["state"]) for a in summary["alerts"]["ModelDriftDetected"]]
    checks = summary["checks"]
    last_clean = not checks[-1]["detected"]
    want = ["inactive", "pending", "firing"] + (["inactive"] if last_clean else [])
    assert [s for _, s in drift] == want, (drift, checks)
    pending, firing = drift[1][0], drift[2][0]
    assert firing - pending >= 4, drift  # for: 5s, evaluated every second
    milestones: dict[str, float] = {}
    for m in summary["milestones"]:
        milestones.setdefault(m["event"], m["time"])  # the first of each
    drifted = next(c for c in checks if c["detected"])
    assert drifted["time"] - 2 <= pending, (drifted, drift)  # the Event and check times have 1 s resolution
    assert milestones["DriftDetected"] - 2 <= pending
    if last_clean:
        assert drift[3][0] > milestones["RolledOut"] and checks[-1]["time"] - 2 <= drift[3][0], (milestones, drift)
    # The drift score series Prometheus stored has the score of every check the status reported.
    stored = [p["score"] for p in summary["driftScoreSeries"]]
    for check in checks:
        assert any(abs(v - check["score"]) < 1e-9 for v in stored), (check, stored)

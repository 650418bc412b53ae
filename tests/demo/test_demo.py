"""`make demo` from a fresh clone runs the tutorial's story to the end (issue: the main job)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hack import demo_story, timeline_png
from tests.demo.background import DemoRun
from tests.pngfile import png_size

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def _in_order(seen: list[str], expected: list[str]) -> bool:
    it = iter(seen)
    return all(any(phase == want for phase in it) for want in expected)


def test_in_order_helper() -> None:
    assert _in_order(["Pending", "Monitoring", "Training", "Monitoring"], ["Monitoring", "Training", "Monitoring"])
    assert not _in_order(["Training", "Monitoring"], ["Monitoring", "Training"])


@pytest.mark.timeout(1560)
def test_make_demo_from_a_fresh_clone(demo_in_background: DemoRun | None) -> None:
    # Started when the session started (tests/conftest.py, tests/demo/background.py), beside the
    # rest of the suite: its wall time is mostly waiting.
    assert demo_in_background is not None, "tests/conftest.py starts the demo when this test is selected"
    rc, stdout, stderr = demo_in_background.job.wait(timeout=24 * 60)
    print(stdout[-8000:])
    assert rc == 0, stdout[-3000:] + stderr[-3000:]
    work = demo_in_background.work
    summary = json.loads((work / "summary.json").read_text())
    events = summary["events"]
    # The first verdict on iid traffic starts no retrain: NoDrift, or DistributionDrift (the `impact`
    # trigger reports a change of the inputs without acting on it; against 660 held-out images the
    # distribution test fires on a few per cent of iid windows, benchmarks/README.md).
    verdicts = [e for e in events if e in ("NoDrift", "DistributionDrift", "DriftDetected")]
    assert verdicts[0] in ("NoDrift", "DistributionDrift"), events
    assert _in_order(
        events, [verdicts[0], "DriftDetected", "TrainingStarted", "CandidateAccepted", "PackagingStarted", "Packaged",
                 "RolloutStarted", "RolledOut",  # act one
                 "DriftDetected", "CandidateAccepted", "Packaged", "RolloutStarted", "RolloutFailed", "RolledBack"]
    ), events
    assert summary["servedClasses"] == ["bees", "cats", "dogs"], summary["servedClasses"]
    assert str(summary["bestOverrides"].get("train.num_classes")) == "3", summary["bestOverrides"]
    assert summary["gate"]["value"] > summary["gate"]["baseline"], summary["gate"]
    assert "stopped every process the demo started" in stdout
    assert_no_labels_reached_the_drift_step(summary, work)
    assert_live_traffic_got_better_without_a_failure(summary)
    assert_the_rollback_restored_the_model_that_answers(summary)
    assert_the_pods_ran_as_their_specs_say(summary, work)
    assert_prometheus_saw_the_loop(summary)
    png = Path(summary["timelinePng"])
    assert png == work / "timeline.png" and f"timeline picture:      {png}" in stdout
    assert png_size(png) == (timeline_png.WIDTH, timeline_png.HEIGHT)
    assert_the_new_models_checks_are_clean(summary)
    assert events.count("TrainingStarted") == 2, events  # act one's retrain and act two's, no third


def assert_the_new_models_checks_are_clean(summary: dict[str, Any]) -> None:
    """Issue 14, "Must show", end to end: after the retrain rolled out, the new model's own checks
    (real drift pods on the server's capture of the bee mix, traffic drawn like its 3-class training
    data) raise no drift against the held-out reference its train stage recorded. A few checks show
    it on the real loop; the rate (at most 5% of 100 checks, 95% interval, of a model the same train
    stage wrote) is tests/trainer/test_impact_model.py's.
    Before the reference grew from the 90-image validation split to val + data.reference_per_class,
    the first or second check flagged novelty (summary.json at e7d871a: 0.073 and 0.087 of the window
    vs 0.022 held out); tests/trainer/test_impact_after_retrain.py explains why."""
    post = summary["postRolloutChecks"]
    assert len(post) >= demo_story.POST_CHECKS, post
    for check in post:
        assert check["model"]["image"] == summary["newImage"] and check["referenceKind"] == "heldOut", check
        assert check["detected"] is False and not check.get("reasons"), check
        assert check["novelty"]["detected"] is False, check["novelty"]


LABEL_FREE = {"estimated-accuracy", "novelty", "distribution"}


def assert_no_labels_reached_the_drift_step(summary: dict[str, Any], work: Path) -> None:
    """The verdict came from the server's capture (a time-partitioned folder, no class folders) by a
    rule that needs no label; no measured accuracy exists, and no captured file names a label."""
    verdict = summary["driftVerdict"]
    assert verdict["detected"] and verdict["trigger"] == "impact", verdict
    assert verdict.get("accuracy") is None, verdict  # a labelled window would have reported it
    assert verdict["reasons"] and set(verdict["reasons"]) <= LABEL_FREE, verdict["reasons"]
    capture = work / "capture"
    sidecars = list(capture.rglob("*.json"))
    assert len(sidecars) >= 100, len(sidecars)
    classes = {"cats", "dogs", "bees"}
    assert not any(set(p.relative_to(capture).parts) & classes for p in capture.rglob("*")), "a class folder"
    for path in sidecars[:: max(1, len(sidecars) // 50)]:
        assert "label" not in json.loads(path.read_text()), path


def assert_live_traffic_got_better_without_a_failure(summary: dict[str, Any]) -> None:
    traffic = summary["traffic"]
    before, after = traffic["beeMix"]["before"], traffic["beeMix"]["after"]
    assert before["requests"] >= 50 and after["requests"] >= 50, traffic["beeMix"]
    assert after["accuracy"] - before["accuracy"] >= 0.15, traffic["beeMix"]
    assert before["bees_predicted"] == 0 and after["bees_predicted"] > 0.15, traffic["beeMix"]
    windows = traffic["windows"]
    for name in ("rollout", "rollback"):
        assert windows[name]["requests"] >= 50, windows
        assert windows[name]["failed"] == 0, (name, traffic["failures"])
    assert traffic["failed"] == 0, traffic["failures"]
    fresh = traffic["timeToFresh"]
    assert fresh["seconds"] > 0 and len(fresh["steps"]) == 6, fresh
    assert abs(sum(s["seconds"] for s in fresh["steps"]) - fresh["seconds"]) < 1e-6 + 0.5, fresh


def assert_the_rollback_restored_the_model_that_answers(summary: dict[str, Any]) -> None:
    new = summary["newImage"]
    assert new and new != summary["v1Image"] and summary["servingImage"] == new, summary["servingImage"]
    after = summary["traffic"]["afterRollback"]
    assert after["images"] == [new] and after["requests"] >= 20 and after["failed"] == 0, after


def assert_the_pods_ran_as_their_specs_say(summary: dict[str, Any], work: Path) -> None:
    """From /proc while they ran: step pods as UID 65532 with their own /tmp and /work; serving
    pods as 65532 with /model from the dev kubelet's pull, from the registry, of the digest their
    Deployment named (v1's as the demo pushed it, the new model's as the package step pushed it)."""
    procs = summary["processes"]
    steps = [p for p in procs if p["kind"] in ("drift", "train", "package")]
    assert {p["kind"] for p in steps} == {"drift", "train", "package"}, procs
    pods = work / "pods"
    for p in steps:
        assert p["uid"] == 65532, p
        assert all(p["mounts"][m].startswith(str(pods)) for m in ("/tmp", "/work")), p
    trains = [p for p in steps if p["kind"] == "train"]
    assert len({p["mounts"]["/tmp"] for p in trains}) == len(trains) >= 2, trains  # parallel: private
    assert len({p["mounts"]["/work"] for p in trains}) == len(trains), trains
    serving = [p for p in procs if p["kind"] == "serve"]
    cache = summary["pullCache"]  # hack/kubelet/pull.py: <cache>/sha256-<digest>/rootfs, one per pulled digest
    models = {p["mounts"].get("/model") for p in serving}
    for image in (summary["v1Image"], summary["newImage"]):
        digest = image.rsplit("@sha256:", 1)[1]
        assert f"{cache}/sha256-{digest}/rootfs/model" in models, (image, models)
    assert all(p["uid"] == 65532 for p in serving), serving


def assert_prometheus_saw_the_loop(summary: dict[str, Any]) -> None:
    """The chart's drift alert, as the demo's Prometheus evaluated it over the run, follows the
    verdicts: pending once the drifted check was scraped, firing after its 5 s `for`; resolved once
    a check of the new model is clean (then act two's drift may fire it again)."""
    drift = [(a["time"], a["state"]) for a in summary["alerts"]["ModelDriftDetected"]]
    checks = summary["checks"]
    # act one: fired on the bees; resolved by the new model's first clean check, if any; act two may fire again
    assert [s for _, s in drift][:3] == ["inactive", "pending", "firing"], (drift, checks)
    pending, firing = drift[1][0], drift[2][0]
    assert firing - pending >= 4, drift  # for: 5s, evaluated every second
    milestones: dict[str, float] = {}
    for m in summary["milestones"]:
        milestones.setdefault(m["event"], m["time"])  # the first of each
    drifted = next(c for c in checks if c["detected"])
    assert drifted["time"] - 2 <= pending, (drifted, drift)  # the Event and check times have 1 s resolution
    assert milestones["DriftDetected"] - 2 <= pending
    clean = next((c for c in checks if c["time"] > milestones["RolledOut"] and not c["detected"]), None)
    if clean is not None:
        assert drift[3] == (drift[3][0], "inactive") and drift[3][0] > milestones["RolledOut"], (milestones, drift)
        assert clean["time"] - 2 <= drift[3][0], (clean, drift)
    # The drift score series Prometheus stored has the score of every check the status reported.
    stored = [p["score"] for p in summary["driftScoreSeries"]]
    for check in checks:
        assert any(abs(v - check["score"]) < 1e-9 for v in stored), (check, stored)

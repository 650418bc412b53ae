"""The demo's parts that need no cluster: reading Prometheus's range series, the timeline's records
and its picture (a real PNG of the promised size), the live traffic's scores and windows, the time
to fresh, the serving Deployment and what /proc says of a pod's mounts. tests/demo/test_demo.py runs them for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hack import timeline_png
from hack.demo_evidence import mounts_of
from hack.demo_prometheus import alert_changes, value_changes
from hack.demo_serving import GRACE_SECONDS, deployment
from hack.demo_timeline import Timeline
from hack.demo_traffic import rollout_window, time_to_fresh
from hack.loadgen import Endpoints, Result, stats
from tests.pngfile import png_size


def series(alert: str, state: str, times: range) -> dict[str, Any]:
    return {"metric": {"alertname": alert, "alertstate": state}, "values": [[t, "1"] for t in times]}


def test_alert_changes_read_pending_firing_and_resolved_from_alerts_series() -> None:
    drift = "ModelDriftDetected"
    got = alert_changes(
        [
            series(drift, "pending", range(105, 110)),
            series(drift, "firing", range(110, 131)),
            series("ModelStale", "pending", range(100, 141)),
        ],
        100,
        140,
        1,
    )
    assert got[drift] == [(100.0, "inactive"), (105.0, "pending"), (110.0, "firing"), (131.0, "inactive")]
    assert got["ModelStale"] == [(100.0, "pending")]  # pending all along: one entry, never resolved


def test_firing_wins_over_a_pending_point_at_the_same_step() -> None:
    drift = "ModelDriftDetected"
    got = alert_changes([series(drift, "firing", range(3, 6)), series(drift, "pending", range(0, 4))], 0, 6, 1)
    assert got[drift] == [(0.0, "pending"), (3.0, "firing"), (6.0, "inactive")]


def test_value_changes_keep_the_first_point_and_each_change() -> None:
    values = [[1, "0.2"], [2, "0.2"], [3, "0.99"], [4, "0.99"], [5, "0.1"]]
    assert value_changes([{"metric": {}, "values": values}]) == [(1.0, 0.2), (3.0, 0.99), (5.0, 0.1)]
    assert value_changes([]) == []


def test_timeline_keeps_checks_phases_and_milestones_with_their_times(capsys: pytest.CaptureFixture[str]) -> None:
    t = Timeline()
    t.phase("Monitoring")
    drift = {
        "lastCheckTime": "2026-12-02T09:00:10Z",
        "detected": True,
        "score": 0.99,
        "threshold": 0.95,
        "accuracy": {"current": 0.6},
    }
    assert t.new_check(drift) and not t.new_check(drift)  # the same check twice is one check
    t.events(
        [
            {
                "metadata": {"uid": "u1", "resourceVersion": "7"},
                "reason": "DriftDetected",
                "type": "Warning",
                "lastTimestamp": "2026-12-02T09:00:11Z",
            },
            {"metadata": {"uid": "u2", "resourceVersion": "8"}, "reason": "NoDrift", "type": "Normal"},
        ]
    )
    [check] = t.checks
    assert check.time == pytest.approx(1796202010.0) and check.detected and check.accuracy == 0.6
    assert t.markers == [(pytest.approx(1796202011.0), "DriftDetected")]  # NoDrift is no milestone
    assert [p for _, p in t.phase_times] == ["Monitoring"]
    assert "drift check: detected=True score=0.99" in capsys.readouterr().out


def test_the_picture_is_a_png_of_the_promised_size(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    checks = [
        timeline_png.Check(t0 + 20, 0.4, 0.95, False, 0.97),
        timeline_png.Check(t0 + 40, 1.0, 0.95, True, 0.6),
        timeline_png.Check(t0 + 300, 0.5, 0.95, False, 0.93),
    ]
    picture = timeline_png.Picture(
        t0,
        t0 + 320,
        checks,
        [
            (t0, "Pending"),
            (t0 + 5, "Monitoring"),
            (t0 + 41, "Training"),
            (t0 + 250, "Packaging"),
            (t0 + 290, "Monitoring"),
        ],
        [(t0 + 40, "DriftDetected"), (t0 + 290, "RolledOut")],
        {"ModelDriftDetected": [(t0, "inactive"), (t0 + 41, "pending"), (t0 + 46, "firing"), (t0 + 302, "inactive")]},
    )
    path = timeline_png.draw(picture, tmp_path / "out" / "timeline.png")
    assert png_size(path) == (timeline_png.WIDTH, timeline_png.HEIGHT)
    empty = timeline_png.Picture(t0, t0 + 1, [], [])  # before any check: still a picture, not a crash
    assert png_size(timeline_png.draw(empty, tmp_path / "empty.png")) == (timeline_png.WIDTH, timeline_png.HEIGHT)


def test_spans_end_each_value_where_the_next_begins() -> None:
    assert timeline_png.spans([(0, "a"), (5, "b")], 9) == [(0, 5, "a"), (5, 9, "b")]
    assert timeline_png.spans([], 9) == []


def test_close_markers_share_one_label() -> None:
    marks = [(0.0, "A"), (1.0, "B"), (1.5, "C"), (10.0, "D")]
    assert timeline_png.grouped(marks, 2.0) == [(0.0, "A, B, C"), (10.0, "D")]


def _result(t: float, label: str, predicted: str | None, image: str = "v1", stream: str = "new-class") -> Result:
    return Result(t, stream, "10.88.0.2", "pod", image, label, predicted, "" if predicted else "timeout")


def test_live_stats_score_answers_and_count_failures_apart() -> None:
    got = stats([_result(0, "bees", "cats"), _result(1, "cats", "cats"), _result(2, "bees", "bees"),
                 _result(3, "dogs", None)])
    assert (got.requests, got.failed) == (4, 1)
    assert got.accuracy == 2 / 3 and got.bees_predicted == 1 / 3
    assert stats([]).accuracy is None


def test_time_to_fresh_splits_the_verdict_to_first_answer_by_step() -> None:
    events = [(5.0, "DriftDetected"), (100.0, "DriftDetected"), (102.0, "TrainingStarted"),
              (250.0, "CandidateAccepted"), (251.0, "PackagingStarted"), (270.0, "Packaged"),
              (271.0, "RolloutStarted"), (300.0, "RolledOut")]
    got = time_to_fresh(events, first_answer=290.5, after=50.0)  # the first verdict was before the bees
    assert got["seconds"] == 190.5
    assert [s["seconds"] for s in got["steps"]] == [2.0, 148.0, 1.0, 19.0, 1.0, 19.5]
    assert sum(s["seconds"] for s in got["steps"]) == got["seconds"]
    assert time_to_fresh(events[:1], None, after=50.0) == {}


def test_the_rollout_window_ends_after_the_old_pods_grace_period() -> None:
    events = [(10.0, "RolloutStarted"), (40.0, "RolledOut"), (500.0, "RolloutStarted"), (570.0, "RolledBack")]
    one = rollout_window(events, "rollout", 0.0, "RolledOut")
    two = rollout_window(events, "rollback", 100.0, "RolledBack")
    assert one is not None and (one.start, one.end) == (9.0, 40.0 + GRACE_SECONDS + 5)
    assert two is not None and (two.start, two.end) == (499.0, 570.0 + GRACE_SECONDS + 5)
    assert rollout_window(events, "rollback", 600.0, "RolledBack") is None


def test_the_serving_deployment_keeps_capacity_and_passes_the_restricted_level() -> None:
    dep = deployment("cats-dogs", "registry.local/cats-dogs:v1@sha256:" + "0" * 64, Path("/cap"), 60)
    spec = dep["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] and c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] < pod["terminationGracePeriodSeconds"]
    assert "MODEL_PATH" not in {e["name"] for e in c["env"]}  # the model comes from the image


def test_mounts_of_reads_the_folder_bound_at_each_mount_point() -> None:
    info = ("36 35 98:0 /pods/a/volumes/tmp /tmp rw,relatime - ext4 /dev/root rw\n"
            "37 35 98:0 /images/sha256/ab/model /model ro,relatime - ext4 /dev/root rw\n"
            "38 35 0:5 / /dev rw - tmpfs tmpfs rw\n")
    assert mounts_of(info) == {"/tmp": "/pods/a/volumes/tmp", "/model": "/images/sha256/ab/model"}


def _slice(*endpoints: tuple[str, str, bool, bool]) -> Any:
    from kubernetes import client

    return client.V1EndpointSlice(
        address_type="IPv4", metadata=client.V1ObjectMeta(name="cats-dogs-x"),
        endpoints=[client.V1Endpoint(addresses=[ip], conditions=client.V1EndpointConditions(
            ready=ready, terminating=terminating), target_ref=client.V1ObjectReference(name=pod))
            for ip, pod, ready, terminating in endpoints])


def test_the_generator_sends_only_to_ready_endpoints_that_are_not_terminating() -> None:
    from kubernetes import client

    eps = Endpoints(client.ApiClient(), "demo", "cats-dogs")
    eps.images = {"a": "img:1", "b": "img:1", "c": "img:2"}  # known pods: no API read
    eps.on_slice("ADDED", _slice(("10.88.1.1", "a", True, False), ("10.88.1.2", "b", False, False),
                                 ("10.88.1.3", "c", True, False)))
    assert eps.ready() == [("10.88.1.1", "a", "img:1"), ("10.88.1.3", "c", "img:2")]
    assert {eps.next(), eps.next()} == set(eps.ready())  # round robin
    eps.on_slice("MODIFIED", _slice(("10.88.1.1", "a", False, True), ("10.88.1.3", "c", True, False)))
    assert eps.ready() == [("10.88.1.3", "c", "img:2")]
    eps.on_slice("DELETED", _slice())
    assert eps.ready() == [] and eps.next() is None

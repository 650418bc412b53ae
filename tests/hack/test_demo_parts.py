"""The demo's parts that need no cluster: reading Prometheus's range series, the timeline's records
and its picture (a real PNG of the promised size). tests/demo/test_demo.py runs them for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hack import timeline_png
from hack.demo_prometheus import alert_changes, value_changes
from hack.demo_timeline import Timeline
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

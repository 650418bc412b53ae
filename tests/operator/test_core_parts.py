"""Unit tests of the core's small parts: durations, cron, spec parsing, the gate, serde, names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freshness_operator.core import names
from freshness_operator.core.conditions import set_condition
from freshness_operator.core.gate import best_candidate, evaluate
from freshness_operator.core.serde import from_dict, to_dict
from freshness_operator.core.spec import Promotion, SpecError, parse_spec
from freshness_operator.core.status import Candidate, CandidateState, Condition, Phase, RetrainStage, Status
from freshness_operator.core.times import Cron, parse_duration

from tests.operator.sim import BASE_SPEC, Sim, merge


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("6h", 21600), ("1h30m", 5400), ("1d", 86400), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "5", "1.5h", "h", "5 m", "-1s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 */6 * * *", datetime(2025, 1, 1, 7, 30), datetime(2025, 1, 1, 12, 0)),
        ("0 */6 * * *", datetime(2025, 1, 1, 18, 0), datetime(2025, 1, 2, 0, 0)),
        ("*/15 * * * *", datetime(2025, 1, 1, 7, 59), datetime(2025, 1, 1, 8, 0)),
        ("30 2 * * 1-5", datetime(2025, 1, 3, 3, 0), datetime(2025, 1, 6, 2, 30)),  # Fri -> Mon
        ("0 0 29 2 *", datetime(2025, 1, 1), datetime(2028, 2, 29)),
        ("0 0 1 * 0", datetime(2025, 1, 1, 1), datetime(2025, 1, 5)),  # dom OR dow: first Sunday
        ("@daily", datetime(2025, 1, 1, 0, 0), datetime(2025, 1, 2)),
        ("@hourly", datetime(2025, 1, 1, 0, 59, 59), datetime(2025, 1, 1, 1, 0)),
        ("0 12 * * 7", datetime(2025, 1, 1), datetime(2025, 1, 5, 12, 0)),  # 7 is Sunday
    ],
)
def test_cron_next_after(expr: str, after: datetime, expected: datetime) -> None:
    tz = after.replace(tzinfo=UTC)
    assert Cron.parse(expr).next_after(tz) == expected.replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["* * * *", "61 * * * *", "*/0 * * * *", "0 0 32 * *", "5-1 * * * *"])
def test_cron_refuses(expr: str) -> None:
    with pytest.raises(ValueError):
        Cron.parse(expr)


def test_spec_defaults_match_the_crd() -> None:
    spec = parse_spec(
        {
            "source": {"repo": "r"},
            "data": {"reference": "a", "current": "b"},
            "serving": {"deployment": "d", "container": "c", "image": "i"},
        }
    )
    assert spec.drift.interval_seconds == 6 * 3600 and spec.drift.schedule is None
    assert spec.training.candidates == ({},) and spec.training.max_parallel == 1
    assert spec.policy.cooldown_seconds == 86400 and spec.policy.max_retrains_per_day == 2
    assert spec.rollout.auto_rollback and spec.rollout.progress_deadline_seconds == 600
    assert spec.promotion == Promotion("val_acc", 0.0, 0.0)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"drift": {"interval": "soon"}}, "spec.drift.interval"),
        ({"drift": {"schedule": "61 * * * *"}}, "spec.drift.schedule"),
        ({"training": {"candidates": []}}, "spec.training.candidates"),
        ({"policy": {"cooldown": "1 day"}}, "spec.policy.cooldown"),
        ({"serving": {"container": ""}}, "spec.serving.container"),
        ({"drift": {"minSamples": 0}}, "spec.drift.minSamples"),
        ({"drift": {"window": "1h30m"}}, "spec.drift.window"),
        ({"drift": {"window": "0h"}}, "spec.drift.window"),
        ({"drift": {"newest": 0}}, "spec.drift.newest"),
        ({"training": {"params": {"train": {"lr": 0.1}, "train.lr": 0.2}}}, "spec.training.params.train.lr"),
        ({"training": {"params": {"train": {"opt": {}}}}}, "spec.training.params.train.opt"),
        ({"training": {"candidates": [{}, {"train": {}}]}}, "spec.training.candidates[1].train"),
        ({"training": {"candidates": [{}, 3]}}, "spec.training.candidates[1]"),
    ],
)
def test_spec_errors_name_the_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(merge(BASE_SPEC, patch))
    assert err.value.path == field


def test_nested_overrides_become_dotted_keys() -> None:
    # {train: {lr: 0.1}} as one `--set train={"lr":0.1}` would replace the whole train section
    spec = parse_spec(
        merge(
            BASE_SPEC,
            {
                "training": {
                    "params": {"train": {"epochs": 3, "opt": {"name": "sgd", "momentum": 0.9}}, "seed": 1},
                    "candidates": [{"train": {"lr": 0.01}}, {"train.lr": 0.001, "aug": {"flip": True}}],
                }
            },
        )
    )
    assert spec.training.params == {
        "train.num_classes": 3,  # BASE_SPEC's, dotted
        "train.epochs": 3,
        "train.opt.name": "sgd",
        "train.opt.momentum": 0.9,
        "seed": 1,
    }
    assert spec.training.candidates == ({"train.lr": 0.01}, {"train.lr": 0.001, "aug.flip": True})


def test_lists_stay_one_override() -> None:
    spec = parse_spec(merge(BASE_SPEC, {"training": {"params": {"train": {"milestones": [10, 20]}}}}))
    assert spec.training.params["train.milestones"] == [10, 20]


def run(
    index: int, acc: float | None, state: CandidateState = CandidateState.SUCCEEDED, baseline: float | None = None
) -> Candidate:
    return Candidate(
        index=index,
        job=f"j{index}",
        state=state,
        metrics={} if acc is None else {"val_acc": acc},
        baseline_metrics=None if baseline is None else {"val_acc": baseline},
    )


def test_best_run_ignores_failed_and_metricless_runs_and_breaks_ties_by_index() -> None:
    runs = [run(0, 0.8), run(1, 0.99, CandidateState.FAILED), run(2, None), run(3, 0.8)]
    best = best_candidate(runs, "val_acc")
    assert best is not None and best.index == 0
    assert best_candidate([run(0, None)], "val_acc") is None


@pytest.mark.parametrize(
    ("acc", "baseline", "serving", "min_improvement", "min_value", "reason"),
    [
        (0.90, 0.80, None, 0.0, 0.0, "Promoted"),
        (0.80, 0.80, None, 0.0, 0.0, "Promoted"),  # "at least minImprovement": equal passes at 0
        (0.81, 0.80, None, 0.01, 0.0, "Promoted"),  # float noise must not reject an exact improvement
        (0.805, 0.80, None, 0.01, 0.0, "NotBetterThanServing"),
        (0.70, None, {"val_acc": 0.75}, 0.0, 0.0, "NotBetterThanServing"),  # serving metrics as fallback
        (0.70, None, None, 0.0, 0.0, "Promoted"),  # no baseline at all: minValue only
        (0.70, None, None, 0.0, 0.9, "BelowMinValue"),
    ],
)
def test_gate(
    acc: float,
    baseline: float | None,
    serving: dict[str, float] | None,
    min_improvement: float,
    min_value: float,
    reason: str,
) -> None:
    gate = evaluate(run(0, acc, baseline=baseline), Promotion("val_acc", min_improvement, min_value), serving)
    assert gate.reason == reason
    assert gate.passed is (reason == "Promoted")
    assert "val_acc" in gate.message


@pytest.mark.parametrize("min_value", [0.0, 0.5])
def test_gate_refuses_a_candidate_that_did_not_learn_whatever_minvalue(min_value: float) -> None:
    best = run(0, 0.6667, baseline=0.5)
    best.metrics = {"val_acc": 0.6667, "val_acc_bees": 0.0, "val_acc_cats": 1.0, "val_acc_dogs": 1.0, "learned": 0.0}
    gate = evaluate(best, Promotion("val_acc", 0.0, min_value), None)
    assert (gate.passed, gate.reason) == (False, "DidNotLearn")
    assert gate.message == (
        "candidate 0 did not learn (learned=0): val_acc 0.6667; chance 0.3333 for 3 classes; never right on class bees"
    )


def test_gate_passes_a_candidate_that_learned_and_one_without_the_flag() -> None:
    best = run(0, 0.9, baseline=0.8)
    best.metrics = {"val_acc": 0.9, "learned": 1.0}
    assert evaluate(best, Promotion("val_acc", 0.0, 0.0), None).reason == "Promoted"
    # Another project's metrics may lack the flag: then only minValue and the baseline decide.
    assert evaluate(run(0, 0.9, baseline=0.8), Promotion("val_acc", 0.0, 0.0), None).reason == "Promoted"


def test_status_round_trips_through_its_wire_form() -> None:
    sim = Sim().to_rolling_out().rollout_completes()
    wire = to_dict(sim.status)
    assert wire["phase"] == "Monitoring"
    assert wire["drift"]["lastCheckTime"].endswith("Z")
    assert wire["conditions"][0]["lastTransitionTime"].endswith("Z")
    assert "observedGeneration" in wire["conditions"][0]
    back = from_dict(Status, wire)
    assert back == sim.status
    assert to_dict(back) == wire


def test_from_dict_tolerates_unknown_and_missing_keys() -> None:
    status = from_dict(Status, {"phase": "Training", "bogus": 1, "candidate": {"retrain": 2, "stage": "Packaging"}})
    assert status.phase is Phase.TRAINING
    assert status.retrain is not None and status.retrain.stage is RetrainStage.PACKAGING
    assert status.drift.sequence == 0


def test_condition_transition_time_moves_only_on_status_change() -> None:
    t1, t2 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    conds: list[Condition] = []
    assert set_condition(conds, "Ready", "True", "Monitoring", "m", now=t1, generation=1)
    assert not set_condition(conds, "Ready", "True", "Monitoring", "other message", now=t2, generation=2)
    assert conds[0].last_transition_time == t1 and conds[0].observed_generation == 2
    assert set_condition(conds, "Ready", "False", "Paused", "p", now=t2, generation=3)
    assert conds[0].last_transition_time == t2


def test_child_names_are_deterministic_and_fit_label_values() -> None:
    assert names.drift_job("cats", 3) == "cats-drift-3"
    assert names.train_job("cats", 2, 1) == "cats-train-2-1"
    long = "a" * 100
    name = names.train_job(long, 12, 3)
    assert len(name) <= 63 and name.endswith("-train-12-3") and name == names.train_job(long, 12, 3)
    assert names.train_job("b" * 100, 12, 3) != name
    assert len(names.label_value(long)) <= 63


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("r/cats:0.1", "0.1"),
        ("localhost:5000/cats", "latest"),
        ("r/cats:v2@sha256:" + "1" * 64, "v2"),
        ("r/cats@sha256:" + "abc" * 20 + "abcd", "abcabcabcabc"),
    ],
)
def test_version_of_image(image: str, version: str) -> None:
    assert names.version_of_image(image) == version

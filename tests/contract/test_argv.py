"""The step command lines: what the operator's builders write is what the trainer's CLI reads."""

from __future__ import annotations

from typing import Any

import pytest
from freshness_contract.argv import DriftArgs, PackageArgs, StepArgs, TrainArgs
from freshness_trainer import cli
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.operator.test_builders import jobs

ARGS: dict[str, type[StepArgs]] = {"drift": DriftArgs, "train": TrainArgs, "package": PackageArgs}


def trainer_reads(argv: list[str], kind: type[StepArgs]) -> StepArgs:
    """What ``freshness-trainer`` parses from these arguments, typed by the contract."""
    return kind.from_namespace(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("step", list(ARGS))
def test_the_trainer_reads_back_what_the_builders_wrote(step: str) -> None:
    argv = jobs()[step]["spec"]["template"]["spec"]["containers"][0]["args"]
    typed = trainer_reads(argv, ARGS[step])
    assert typed.to_argv() == argv
    assert ARGS[step].from_argv(argv) == typed


def test_what_the_trainer_got_from_the_builders() -> None:
    train = trainer_reads(jobs()["train"]["spec"]["template"]["spec"]["containers"][0]["args"], TrainArgs)
    assert isinstance(train, TrainArgs)
    assert train.overrides == ("train.lr=1.0e-05", "train.name=alex", "train.num_classes=3", "train.pretrained=true")
    assert (train.rev, train.name, train.workdir) == ("main", "cats-train-2-1", None)
    drift = trainer_reads(jobs()["drift"]["spec"]["template"]["spec"]["containers"][0]["args"], DriftArgs)
    assert isinstance(drift, DriftArgs)
    assert (drift.threshold, drift.min_samples, drift.accuracy_drop) == (0.3, 10, 0.1)


def test_a_missing_required_option_is_refused() -> None:
    with pytest.raises(ValueError, match="not package arguments"):
        PackageArgs.from_argv(["package", "--model=m"])
    with pytest.raises(ValueError, match="expected the drift step"):
        DriftArgs.from_argv(["train", "--repo=r"])


text = st.text(st.characters(blacklist_characters="\x00"), max_size=20)
numbers = st.floats(allow_nan=False)


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(
    st.one_of(
        st.builds(DriftArgs, reference=text, current=text, model=st.none() | text, threshold=st.none() | numbers,
                  min_samples=st.none() | st.integers(), accuracy_drop=st.none() | numbers, report=st.none() | text),
        st.builds(TrainArgs, repo=text, rev=text, overrides=st.lists(text, max_size=3).map(tuple),
                  name=st.none() | text, baseline_model=st.none() | text, remote=st.none() | text),
        st.builds(PackageArgs, model=text, image=text, base_image=st.none() | text, output=text, push=st.booleans()),
    )
)
def test_any_arguments_survive_the_trip(args: Any) -> None:
    """Values starting with '-', holding '=' or spaces: the trainer reads exactly what was written."""
    assert trainer_reads(args.to_argv(), type(args)) == args

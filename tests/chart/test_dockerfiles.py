"""Static checks of the images' Dockerfiles (no Docker engine here; images are built elsewhere):
hadolint, plus the rules that matter to this project, read from the parsed instructions."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from freshness_operator import builders

from tests.chart.tools import CHART, REPO, load_yaml

OPERATOR = REPO / "Dockerfile.operator"
TRAINER = REPO / "Dockerfile.trainer"
SERVER = REPO / "Dockerfile.server"


@dataclass(frozen=True)
class Instruction:
    op: str
    args: str
    stage: int  # index of the FROM this belongs to


def parse(path: Path) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line[:-1]}" if line.endswith("\\") else f"{pending} {line}"
        if line.endswith("\\"):
            continue
        op, _, args = pending.strip().partition(" ")
        op = op.upper()
        stage += op == "FROM"
        out.append(Instruction(op, " ".join(args.split()), stage))
        pending = ""
    return out


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    return dict(i.args.split("=", 1) for i in instructions if i.op == "ARG" and "=" in i.args)


def base_image(instructions: list[Instruction]) -> str:
    """The final stage's FROM, with ${ARG} defaults filled in."""
    image = final_stage(instructions)[0].args.split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults(instructions)[m.group(1)], image)


def user(instructions: list[Instruction]) -> str:
    users = [i.args for i in final_stage(instructions) if i.op == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    return users[-1]


def test_hadolint(hadolint: Path) -> None:
    proc = subprocess.run(
        [str(hadolint), "--no-color", str(OPERATOR), str(TRAINER), str(SERVER)],
        text=True, capture_output=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [OPERATOR, TRAINER, SERVER], ids=lambda p: p.name)
def test_runs_as_numeric_non_root_user(path: Path) -> None:
    uid, _, gid = user(parse(path)).partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {uid} must be a numeric non-root uid (runAsNonRoot)"
    assert not gid or (gid.isdigit() and int(gid) > 0)


@pytest.mark.parametrize("path", [OPERATOR, TRAINER, SERVER], ids=lambda p: p.name)
def test_no_secrets_or_remote_adds(path: Path) -> None:
    for ins in parse(path):
        assert ins.op != "ADD", "use COPY; ADD fetches URLs and unpacks archives implicitly"
        if ins.op in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|TOKEN|SECRET|API_KEY)", ins.args, re.I), ins.args


def test_operator_image() -> None:
    ins = parse(OPERATOR)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base_image(ins)), base_image(ins)
    runs = " ".join(i.args for i in ins if i.op == "RUN")
    installs = re.findall(r"pip install [^&;]*", runs)
    assert installs and all('".[operator]"' in c for c in installs), installs
    text = OPERATOR.read_text()
    # Comments may explain; instructions must never pull torch or the trainer extra in.
    instructions_text = " ".join(f"{i.op} {i.args}" for i in ins).lower()
    assert "torch" not in instructions_text and "[trainer" not in instructions_text
    assert "trainer]" not in text
    entry = [i.args for i in final_stage(ins) if i.op == "ENTRYPOINT"]
    assert entry == ['["freshness-operator"]']
    # The chart runs the pod as the image's uid; they must agree.
    values = load_yaml(CHART / "values.yaml")
    uid = int(user(ins).split(":")[0])
    assert values["podSecurityContext"]["runAsUser"] == uid
    exposed = {int(p) for i in final_stage(ins) if i.op == "EXPOSE" for p in i.args.split()}
    assert exposed == {values["metricsPort"], values["healthPort"]}


def copied(instructions: list[Instruction]) -> set[str]:
    """The local paths COPYed into the image (multi-stage ``--from=`` copies aside)."""
    return {
        src.rstrip("/")
        for i in instructions
        if i.op == "COPY" and "--from=" not in i.args
        for src in i.args.split()[:-1]
    }


@pytest.mark.parametrize(
    ("path", "side", "other"),
    [(OPERATOR, "operator", "trainer"), (TRAINER, "trainer", "operator")],
    ids=["operator", "trainer"],
)
def test_each_image_ships_the_contract_and_its_own_side_only(path: Path, side: str, other: str) -> None:
    """Neither side imports the other (.importlinter, independence): the images prove it by not shipping it."""
    sources = copied(parse(path))
    assert {"contract", side} <= sources, sources
    assert other not in sources, f"{path.name} copies {other}/"


def test_operator_extra_has_no_torch() -> None:
    """What the operator image installs: the base dependencies and the operator extra, no torch."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["operator"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in deps}
    assert not names & {"torch", "torchvision", "dvc", "evidently"}, names


def test_trainer_image() -> None:
    ins = parse(TRAINER)
    assert re.fullmatch(r"pytorch/pytorch:[\w.]+-cuda[\w.-]+-runtime", base_image(ins)), base_image(ins)
    runs = " ".join(i.args for i in final_stage(ins) if i.op == "RUN")
    assert re.search(r"pip install [^&;]*\"\.\[trainer\]\"", runs), runs
    assert re.search(r"apt-get install [^&;]*\bgit\b", runs), "dvc exp run needs git"
    assert "rm -rf /var/lib/apt/lists" in runs
    entry = [i.args for i in final_stage(ins) if i.op == "ENTRYPOINT"]
    assert entry == ['["freshness-trainer"]']
    env = " ".join(i.args for i in final_stage(ins) if i.op == "ENV")
    assert "DVC_NO_ANALYTICS=1" in env


def test_trainer_crane_is_the_version_the_local_cluster_builds() -> None:
    """The package step pushes with the same crane in the image as on the local cluster."""
    args = dict(i.args.split("=", 1) for i in parse(TRAINER) if i.op == "ARG" and "=" in i.args)
    pinned = re.search(r"^require github.com/google/go-containerregistry (\S+)$",
                       (REPO / "hack" / "gomod" / "crane" / "go.mod").read_text(), re.M)
    assert pinned and args["CRANE_VERSION"] == pinned.group(1), (args, pinned)


def test_trainer_user_is_the_uid_the_jobs_run_as() -> None:
    assert int(user(parse(TRAINER)).split(":")[0]) == builders.NONROOT_UID


def test_trainer_extra_brings_dvc_and_evidently() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["trainer"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in extra}
    assert {"dvc", "evidently", "torch"} <= names


@pytest.mark.parametrize("path", [OPERATOR, TRAINER, SERVER], ids=lambda p: p.name)
def test_copied_sources_survive_dockerignore(path: Path) -> None:
    """Every local COPY source is in the build context that .dockerignore leaves."""
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [r for r in rules if r and not r.startswith("#")]

    def included(rel: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if pattern == "**" or fnmatch.fnmatch(rel, pattern) or rel.startswith(pattern + "/"):
                keep = negate
        return keep

    for ins in parse(path):
        if ins.op != "COPY" or "--from=" in ins.args:
            continue
        for src in ins.args.split()[:-1]:
            rel = src.rstrip("/")
            assert (REPO / rel).exists(), f"{path.name} copies {src}, which does not exist"
            assert included(rel), f"{path.name} copies {src}, which .dockerignore excludes"


def test_server_image() -> None:
    """The serving image: slim Python, CPU torch, the serve extra, the server on the packaged model."""
    from freshness_trainer import oci
    from freshness_trainer.serve import settings

    ins = parse(SERVER)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base_image(ins)), base_image(ins)
    runs = " ".join(i.args for i in ins if i.op == "RUN")
    assert re.search(r"pip install [^&;]*\"\.\[serve\]\"", runs), runs
    assert "[trainer" not in runs and "dvc" not in runs.lower()
    final = final_stage(ins)
    assert [i.args for i in final if i.op == "ENTRYPOINT"] == ['["freshness-serve"]']
    env = " ".join(i.args for i in final if i.op == "ENV")
    # The entrypoint's model path is where the package step puts the model layer.
    assert f"MODEL_PATH=/{oci.MODEL_PATH_IN_IMAGE}" in env
    assert f"/{oci.MODEL_PATH_IN_IMAGE}" == settings.DEFAULT_MODEL_PATH
    assert int(user(ins).split(":")[0]) == builders.NONROOT_UID
    exposed = {int(p) for i in final if i.op == "EXPOSE" for p in i.args.split()}
    assert exposed == {settings.Settings.http_port, settings.Settings.grpc_port}
    assert oci.DEFAULT_BASE_IMAGE.startswith("ghcr.io/model-freshness/freshness-server:")


def test_serve_extra_has_no_dvc_or_evidently() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serve"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in extra}
    assert {"torch", "torchvision", "kserve"} <= names
    assert not names & {"dvc", "evidently", "pandas", "scikit-learn"}, names

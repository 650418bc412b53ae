"""Issue 16: one candidate trained by 2 pods x 1 process (DDP, gloo on the CPU) on the local control plane.

The Job and its headless Service are exactly what the operator creates (``builders.train_job``,
``builders.train_service``); the Job controller makes the Indexed pods, the endpointslice
controller names them, and the dev kubelet (hack/process_runner.py) runs them as real processes,
each in its own network namespace, hostname and kubelet-written /etc/hosts (hack/kubelet/hosts.py).
The candidate's outcome is read as the operator reads it (``observe.job_observation``). Only the
ownerReference is dropped: no ModelDeployment exists here, and the garbage collector deletes
what an absent owner owns. The same params run once as a single process beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from freshness_operator import builders, observe
from freshness_operator.core.actions import CreateTrainJob
from freshness_operator.core.owner import Owner
from freshness_operator.core.spec import parse_spec

from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.hack.runner_kit import ROOT, Runner, start_runner
from tests.trainer.conftest import GIT_IDENTITY, copy_project, run

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
# The smallest run that still learns on the sample set (64 px is AlexNet's minimum); 4 epochs
# keep the test within CI's time on 2 loaded cores. train.batch_size 16 is the global batch.
OVERRIDES: dict[str, Any] = {"train.epochs": 4, "train.hidden_units": 128, "train.num_classes": 2}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example DVC project as a bare repository the pods' UID can read (like a git server)."""
    work = tmp_path_factory.mktemp("multinode")
    copy_project(work / "src")
    bare = work / "project.git"
    run(["git", "clone", "--bare", "--quiet", str(work / "src"), str(bare)], work)
    for path in [bare, *bare.rglob("*")]:
        os.chown(path, builders.NONROOT_UID, builders.NONROOT_UID, follow_symlinks=False)
    return bare


@pytest.fixture(scope="module")
def runner(cluster: Cluster, project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    work = tmp_path_factory.mktemp("runner")
    path = os.pathsep.join(str(ROOT / d) for d in ("contract", "operator", "trainer", ""))  # this checkout's code
    args = [f"--share={project}", *[f"--image-env={k}" for k in (*GIT_IDENTITY, "PYTHONPATH")]]
    with start_runner(cluster, work, args, {**GIT_IDENTITY, "PYTHONPATH": path}) as r:
        yield r
    shutil.rmtree(work / "pods", ignore_errors=True)


def single_process(project: Path, tmp: Path) -> subprocess.Popen[str]:
    """The same candidate as one process (no launch env), started beside the cluster run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHNESS_")}
    env.update(GIT_IDENTITY, PYTHONPATH=os.pathsep.join([str(ROOT / "contract"), str(ROOT / "trainer")]),
               DVC_NO_ANALYTICS="1", HOME=str(tmp), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    # The bare repository belongs to the pods' UID, which git refuses to clone from as root: its
    # source, the same commit, serves this process.
    argv = [sys.executable, "-m", "freshness_trainer.cli", "train", f"--repo={project.parent / 'src'}", "--rev=HEAD",
            *[f"--set={builders.format_override(k, v)}" for k, v in OVERRIDES.items()],
            f"--result-path={tmp / 'single.json'}"]
    return subprocess.Popen(argv, cwd=tmp, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_pods_train_one_candidate_with_ddp_on_gloo(runner: Runner, cluster: Cluster, project: Path,
                                                      tmp_path: Path) -> None:
    spec = parse_spec({
        "source": {"repo": str(project), "revision": "HEAD"},
        "data": {"reference": "/unused", "current": "/unused"},
        "serving": {"deployment": "d", "container": "c", "image": "registry.local/cats"},
        "training": {"nodes": 2, "nodeSelector": {"kubernetes.io/hostname": runner.node}, "timeout": "30m"},
    })
    owner = Owner("cats", runner.namespace, "no-owner")
    name = "cats-train-1-0"
    job = builders.train_job(owner, spec, CreateTrainJob(name, 1, 0, OVERRIDES), "registry.local/trainer:dev")
    service = builders.train_service(owner, job)
    assert service is not None
    for obj in (service, job):
        obj["metadata"].pop("ownerReferences")
        cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))
    single = single_process(project, tmp_path)

    def finished() -> dict[str, Any] | None:
        try:  # one slow answer of a loaded API server is "not yet", not a failure: the deadline is wait_for's
            out = cluster.kubectl("get", "job", name, "-n", runner.namespace, "-o", "json", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            return None
        got: dict[str, Any] = json.loads(out.stdout) if out.returncode == 0 else {}
        done = {c["type"] for c in (got.get("status") or {}).get("conditions") or [] if c["status"] == "True"}
        return got if done & {"Complete", "Failed"} else None

    done = wait_for(f"Job {name} to finish", finished, 1500, runner.tail)
    pods = json.loads(cluster.kubectl("get", "pods", "-n", runner.namespace, "-l",
                                      f"batch.kubernetes.io/job-name={name}", "-o", "json").stdout)["items"]
    seen = observe.job_observation(done, pods)
    assert seen is not None and seen.outcome is not None, done
    assert seen.outcome.ok, f"{seen.outcome.reason}: {seen.outcome.message}\n{runner.tail()}"
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_index) == ["0", "1"] and all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Each pod had its own name: <job>-<index> under the Service (the Job controller's hostname).
    assert {p["spec"]["hostname"] for p in pods} == {f"{name}-0", f"{name}-1"}
    # Rank 0 alone wrote the result; rank 1's pod ended without one.
    rank1 = by_index["1"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert not rank1.get("message"), rank1
    metrics = dict(seen.outcome.result.metrics)  # type: ignore[union-attr]
    assert metrics["world_size"] == 2, metrics  # the process group formed with both pods' ranks
    assert "2 ranks" in seen.outcome.message
    out, _ = single.communicate(timeout=1500)
    assert single.returncode == 0, out[-3000:]
    alone = json.loads((tmp_path / "single.json").read_text())["train"]["metrics"]
    assert alone["world_size"] == 1 and metrics["learned"] == 1.0
    print(f"2 pods x 1 process: val_acc {metrics['val_acc']}, {metrics['seconds_per_epoch']} s/epoch; "
          f"1 process: val_acc {alone['val_acc']}, {alone['seconds_per_epoch']} s/epoch")
    assert abs(metrics["val_acc"] - alone["val_acc"]) <= 0.03, (metrics, alone)

"""The launcher's failure paths and pure helpers; no binaries needed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from hack import localcluster


def _fake_bin(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_component_that_dies_is_named_with_its_log(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_bin(bin_dir, "etcd", "echo 'etcd: cannot bind' >&2; exit 3")
    state = tmp_path / "state"
    with pytest.raises(localcluster.ClusterError) as err:
        localcluster.up(state, bin_dir=bin_dir)
    log = state / "logs" / "etcd.log"
    assert "etcd exited during start-up" in str(err.value)
    assert str(log) in str(err.value)
    assert "cannot bind" in log.read_text()
    assert not (state / "state.json").exists(), "a failed start must not leave state behind"


def test_missing_binary_is_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    with pytest.raises(localcluster.ClusterError, match=r"etcd could not be started"):
        localcluster.up(tmp_path / "state", bin_dir=bin_dir)


def test_started_processes_are_stopped_when_a_later_component_fails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # An "etcd" that stays up and answers nothing: start-up times out on it, and it must be killed.
    # It writes its own PID (the shell execs sleep, so the PID stays): the check is of that process,
    # not of every `sleep 300` on the machine (a shell's own `sleep 300` once failed this test).
    pid_file = tmp_path / "etcd.pid"
    _fake_bin(bin_dir, "etcd", f"echo $$ > {pid_file}; exec sleep 300")
    with pytest.raises(localcluster.ClusterError, match="etcd did not become healthy within 1s"):
        localcluster.up(tmp_path / "state", bin_dir=bin_dir, timeouts=localcluster.Timeouts(etcd=1.0))
    pid = int(pid_file.read_text())
    assert not localcluster.alive(pid), f"the launcher left its etcd (PID {pid}) running"


def test_kwok_leaves_step_pods_to_the_test() -> None:
    stages = list(yaml.safe_load_all(localcluster.kwok_stages()))
    assert [s["metadata"]["name"] for s in stages] == ["pod-ready", "pod-complete", "pod-delete"]
    complete = stages[1]["spec"]["selector"]["matchExpressions"]
    assert {"key": '.metadata.labels["modelfreshness.io/step"]', "operator": "DoesNotExist"} in complete


def test_kwok_node_has_gpus_and_the_annotation_kwok_manages() -> None:
    node = localcluster.kwok_node("n0", gpus=4)
    assert node["metadata"]["annotations"][localcluster.KWOK_NODE_ANNOTATION] == "fake"  # type: ignore[index]
    assert json.loads(json.dumps(node))["status"]["capacity"]["nvidia.com/gpu"] == "4"


def test_an_extra_component_is_started_recorded_and_stopped_with_the_rest(tmp_path: Path) -> None:
    """The wiring a new component (a registry, Kueue) uses: a Component in a wave of its own."""
    (tmp_path / "logs").mkdir()
    info = localcluster.ClusterInfo(tmp_path, tmp_path, tmp_path / "admin.kubeconfig", "https://127.0.0.1:1")
    sleeper = localcluster.Component("sleeper", lambda i: ["sleep", "301"], lambda i: True, lambda t: 5)
    localcluster.start_wave(info, [sleeper], localcluster.Timeouts())
    pid = info.pids["sleeper"]
    assert localcluster.alive(pid)
    assert json.loads((tmp_path / "state.json").read_text())["argv"]["sleeper"] == ["sleep", "301"]
    assert localcluster.down(tmp_path, info) == ["sleeper"]
    assert not localcluster.alive(pid)


def test_an_extra_component_that_never_gets_healthy_is_named_with_its_timeout(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    info = localcluster.ClusterInfo(tmp_path, tmp_path, tmp_path / "admin.kubeconfig", "https://127.0.0.1:1")
    mute = localcluster.Component("mute", lambda i: ["sleep", "302"], lambda i: False, lambda t: t.kwok)
    try:
        with pytest.raises(localcluster.ClusterError, match=r"mute did not become healthy within 1s; see its log: "):
            localcluster.start_wave(info, [mute], localcluster.Timeouts(kwok=1.0))
    finally:
        localcluster.down(tmp_path, info)
    assert not localcluster.alive(info.pids["mute"])

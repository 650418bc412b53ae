"""hack/build-binaries.sh's two build lanes, with a stand-in `go` on PATH (no compile): the lanes
overlap, a failure in either fails the script, and an unknown extra is refused before any build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "build-binaries.sh"

# Records "<start> <end> <module folder> <package>" per build, takes half a second, writes the -o file;
# exits 1 for the module named in FAIL_IN.
FAKE_GO = r"""#!/usr/bin/env bash
[[ "$1" == build ]] || { echo "fake go: only build" >&2; exit 3; }
out="" pkg=""; prev=""
for a in "$@"; do [[ "$prev" == -o ]] && out="$a"; pkg="$a"; prev="$a"; done
start=$(date +%s.%N); sleep 0.5
echo "$start $(date +%s.%N) $(basename "$PWD") $pkg" >> "$GO_LOG"
[[ "$(basename "$PWD")" == "${FAIL_IN:-none}" ]] && { echo "fake go: failing in $PWD" >&2; exit 1; }
printf '#!/bin/sh\n' > "$out" && chmod +x "$out"
"""


def _run(tmp_path: Path, *args: str, fail_in: str = "none") -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "go").write_text(FAKE_GO)
    (fake / "go").chmod(0o755)
    cache = tmp_path / "cache"
    helm = cache / "bin" / "helm-npm-2.1.0" / "helm"  # already fetched: no npm
    helm.parent.mkdir(parents=True, exist_ok=True)
    helm.write_text("#!/bin/sh\n")
    helm.chmod(0o755)
    log = tmp_path / "go.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "MODELFRESHNESS_CACHE": str(cache),
           "GO_LOG": str(log), "FAIL_IN": fail_in}
    proc = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
    builds = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return proc, builds


def test_the_two_lanes_build_at_the_same_time_and_link_every_binary(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    current = Path(proc.stdout.strip().splitlines()[-1])
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok",
                 "registry", "crane", "helm"):
        assert (current / name).exists(), name
    k8s = [(float(b[0]), float(b[1])) for b in builds if b[2] == "k8s"]
    others = [(float(b[0]), float(b[1])) for b in builds if b[2] in ("etcd", "kwok", "registry", "crane")]
    assert len(k8s) == 4 and len(others) == 4, builds
    assert any(s1 < e2 and s2 < e1 for s1, e1 in k8s for s2, e2 in others), builds  # some overlap


def test_a_failure_in_the_background_lane_fails_the_script(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path, fail_in="kwok")
    assert proc.returncode != 0
    assert "building etcd, kwok, the registry or crane failed" in proc.stderr, proc.stderr
    assert not (tmp_path / "cache" / "bin" / "current").exists()  # nothing linked as if ready
    assert [b[2] for b in builds].count("k8s") == 4, builds  # the other lane finished its builds


def test_a_failure_in_the_foreground_lane_fails_the_script(tmp_path: Path) -> None:
    proc, _ = _run(tmp_path, fail_in="k8s")
    assert proc.returncode != 0 and "fake go: failing" in proc.stderr, proc.stderr
    assert not (tmp_path / "cache" / "bin" / "current").exists()


def test_an_unknown_extra_is_refused_before_anything_builds(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path, "kueue", "istio")
    assert proc.returncode == 2 and "unknown extra component 'istio' (known: kueue)" in proc.stderr, proc.stderr
    assert builds == []

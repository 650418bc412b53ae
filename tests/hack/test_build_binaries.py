"""hack/build-binaries.sh with a stand-in `go` on PATH (no compile): it builds and links every binary,
a failed build fails it with nothing linked, and an unknown extra is refused before any build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "build-binaries.sh"

# Records "<module folder> <package> <its DWARF flag>" per build and writes the -o file;
# exits 1 for the module named in FAIL_IN.
FAKE_GO = r"""#!/usr/bin/env bash
[[ "$1" == build ]] || { echo "fake go: only build" >&2; exit 3; }
out="" pkg="" dwarf="dwarf"; prev=""
for a in "$@"; do [[ "$prev" == -o ]] && out="$a"; [[ "$a" == -gcflags=all=-dwarf=false ]] && dwarf="nodwarf"
  pkg="$a"; prev="$a"; done
echo "$(basename "$PWD") $pkg $dwarf" >> "$GO_LOG"
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


def test_every_binary_is_built_once_and_linked(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    current = Path(proc.stdout.strip().splitlines()[-1])
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok",
                 "registry", "crane", "helm"):
        assert (current / name).exists(), name
    assert sorted(b[0] for b in builds) == ["crane", "etcd", "k8s", "k8s", "k8s", "k8s", "kwok", "registry"], builds
    assert all(b[2] == "nodwarf" for b in builds), builds  # the compiler writes no DWARF the linker strips
    again, rebuilt = _run(tmp_path)  # cached by version: a warm machine builds nothing
    assert again.returncode == 0 and rebuilt == [], (again.stderr, rebuilt)


def test_a_failed_build_fails_the_script_and_links_nothing(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path, fail_in="kwok")
    assert proc.returncode != 0 and "fake go: failing" in proc.stderr, proc.stderr
    assert not (tmp_path / "cache" / "bin" / "current").exists()
    assert "k8s" not in [b[0] for b in builds], builds  # stopped at the first failure


def test_an_unknown_extra_is_refused_before_anything_builds(tmp_path: Path) -> None:
    proc, builds = _run(tmp_path, "kueue", "istio")
    assert proc.returncode == 2 and "unknown extra component 'istio' (known: kueue)" in proc.stderr, proc.stderr
    assert builds == []

"""Orchestration latency: drift verdict -> serving Deployment patched and available, step work excluded.

This is NOT the time to a fresh model a user sees: training, the image build, image pulls and a
real model server's start-up are all excluded (listed by ``EXCLUDED``, printed with the table).
It measures what the operator and the control plane add around that work.

    .venv/bin/python -m benchmarks.time_to_fresh                  # 20 runs
    .venv/bin/python -m benchmarks.time_to_fresh --runs 5 --json out.json
    .venv/bin/python -m benchmarks.time_to_fresh --smoke          # CI: 2 runs, asserts they complete

Our operator (``python -m freshness_operator``) on one namespace of a fresh local control plane
(or the cluster of ``--kubeconfig``). Each run is a new ModelDeployment with its own serving
Deployment (2 kwok replicas, surge 1, no unavailability), one after the other. The completer
(benchmarks/common/completer.py) plays the steps with instant results: the drift pod reports drift, the
train pod a candidate better than the serving model, the package pod the image it was asked for.

The clock starts when the drift pod's result is written (its pods/status patch returns) and stops
when this benchmark's watch sees the Deployment rolled out to the new image (kubectl rollout
status' rule: every replica updated and available, no old ones left). The stages in between say
where the time goes; "train/package pod" are the control plane running a Job's pod that finishes
at once, standing in for training and the image build.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    STEP_LABEL,
    Api,
    Completer,
    Watch,
    cluster,
    container_arg,
    create_all,
    create_namespace,
    delete_namespace,
    drift_doc,
    fmt,
    mdeps_path,
    model_deployment,
    our_operator,
    package_doc,
    percentile,
    serving_deployment,
    table,
    train_doc,
    wait_until,
)
from testkit.api import Watches

REPLICAS = 2
TARGET_SECONDS = 30.0
EXCLUDED = (
    "the drift check's own work (its pod reports a verdict at once)",
    "training (the train pod reports a finished candidate at once)",
    "the image build and push (the package pod reports the image at once)",
    "image pulls and the model server's start-up and warm-up (kwok pods are Ready at once)",
)


def result_for(pod: dict[str, Any]) -> dict[str, Any]:
    """The instant result of each step: drifted, a better candidate, the image asked for. Pure."""
    step = pod["metadata"]["labels"][STEP_LABEL]
    if step == "drift":
        return drift_doc(True)
    if step == "train":
        return train_doc(uuid.uuid4().hex[:10])
    image = container_arg(pod, "--image")
    if image is None:
        raise ValueError(f"package pod {pod['metadata']['name']} has no --image argument")
    return package_doc(image)


def rolled_out(dep: dict[str, Any]) -> bool:
    """kubectl rollout status' rule. Pure."""
    spec, status = dep["spec"], dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(status.get("observedGeneration") or 0) >= int(dep["metadata"].get("generation") or 0)
        and int(status.get("updatedReplicas") or 0) >= want
        and int(status.get("replicas") or 0) <= int(status.get("updatedReplicas") or 0)
        and int(status.get("availableReplicas") or 0) >= int(status.get("updatedReplicas") or 0)
    )


class Tracker:
    """First-seen times of step Jobs, the image patch, the rollout and the operator's verdict."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.lock = threading.Lock()
        self.job_seen: dict[str, float] = {}
        self.job_done: dict[str, float] = {}
        self.patched: dict[str, float] = {}
        self.rolled: dict[str, float] = {}
        self.status_rolled: dict[str, float] = {}
        self.outcome: dict[str, str] = {}
        self._watches = Watches(
            Watch(api, f"/apis/batch/v1/namespaces/{namespace}/jobs", self._on_job, selector=STEP_LABEL),
            Watch(api, f"/apis/apps/v1/namespaces/{namespace}/deployments", self._on_deployment),
            Watch(api, mdeps_path(namespace), self._on_mdep),
        )

    def start(self) -> Tracker:
        self._watches.start()
        return self

    def stop(self) -> None:
        self._watches.stop()

    def _on_job(self, type_: str, job: dict[str, Any], seen: float) -> None:
        name = job["metadata"]["name"]
        conditions = (job.get("status") or {}).get("conditions") or []
        with self.lock:
            self.job_seen.setdefault(name, seen)
            if any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions):
                self.job_done.setdefault(name, seen)

    def _on_deployment(self, type_: str, dep: dict[str, Any], seen: float) -> None:
        name = dep["metadata"]["name"]
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        if "@sha256:" not in image:  # not ours yet: the operator rolls out <image>:<version>@<digest>
            return
        with self.lock:
            self.patched.setdefault(name, seen)
            if rolled_out(dep):
                self.rolled.setdefault(name, seen)

    def _on_mdep(self, type_: str, mdep: dict[str, Any], seen: float) -> None:
        name = mdep["metadata"]["name"]
        candidate = (mdep.get("status") or {}).get("candidate") or {}
        with self.lock:
            if candidate.get("outcome"):
                self.outcome[name] = str(candidate["outcome"])
            if candidate.get("outcome") == "RolledOut":
                self.status_rolled.setdefault(name, seen)


# (label, from, to); "*": a Job's pod that finishes at once, standing in for training or the build.
STAGES = (
    ("drift pod finished → drift Job complete (job controller)", "verdict", "drift_complete"),
    ("drift Job complete → train Job created (operator)", "drift_complete", "train_job"),
    ("train Job created → train pod finished*", "train_job", "train_done"),
    ("train pod finished → train Job complete (job controller)", "train_done", "train_complete"),
    ("train Job complete → package Job created (operator)", "train_complete", "package_job"),
    ("package Job created → package pod finished*", "package_job", "package_done"),
    ("package pod finished → package Job complete (job controller)", "package_done", "package_complete"),
    ("package Job complete → image patched (operator)", "package_complete", "patched"),
    ("image patched → rolled out (Deployment controller, kwok)", "patched", "rolled"),
)
OPERATOR_STAGES = (("drift_complete", "train_job"), ("train_complete", "package_job"), ("package_complete", "patched"))


@dataclass
class Run:
    name: str
    verdict: float
    drift_complete: float
    train_job: float
    train_done: float
    train_complete: float
    package_job: float
    package_done: float
    package_complete: float
    patched: float
    rolled: float
    status_rolled: float

    def span(self, start: str, end: str) -> float:
        return float(getattr(self, end)) - float(getattr(self, start))

    @property
    def total(self) -> float:
        return self.rolled - self.verdict

    @property
    def without_step_pods(self) -> float:
        return self.total - self.span("train_job", "train_done") - self.span("package_job", "package_done")

    @property
    def operator(self) -> float:
        return sum(self.span(a, b) for a, b in OPERATOR_STAGES)

    @property
    def to_status(self) -> float:
        return self.status_rolled - self.verdict


def one_run(api: Api, ns: str, name: str, tracker: Tracker, completer: Completer, timeout: float) -> Run:
    api.request("POST", mdeps_path(ns), model_deployment(name, "1h"))

    def finished() -> bool:
        if tracker.outcome.get(name) not in (None, "RolledOut"):
            raise RuntimeError(f"{name}: the retrain ended with {tracker.outcome[name]}, not RolledOut")
        return name in tracker.rolled and name in tracker.status_rolled

    wait_until(f"{name} rolled out", finished, timeout, every=0.2)
    jobs, complete, done = tracker.job_seen, tracker.job_done, completer.finished
    drift, train, package = f"{name}-drift-1", f"{name}-train-1-0", f"{name}-package-1"
    return Run(
        name=name,
        verdict=done[drift],
        drift_complete=complete[drift],
        train_job=jobs[train],
        train_done=done[train],
        train_complete=complete[train],
        package_job=jobs[package],
        package_done=done[package],
        package_complete=complete[package],
        patched=tracker.patched[name],
        rolled=tracker.rolled[name],
        status_rolled=tracker.status_rolled[name],
    )


def run(runs: int, kubeconfig: Path | None) -> list[Run]:
    workdir = Path(tempfile.mkdtemp(prefix="mf-bench-ttf-"))
    names = [f"tf{i:02d}" for i in range(runs)]
    with cluster(kubeconfig, nodes=2) as c:
        api, ns = c.api, f"bench-ttf-{uuid.uuid4().hex[:4]}"
        create_namespace(api, ns)
        tracker = Tracker(api, ns).start()
        completer = Completer(api, ns, result_for).start()
        operator = None
        try:
            deployments = f"/apis/apps/v1/namespaces/{ns}/deployments"
            create_all(api, [(deployments, serving_deployment(n, REPLICAS)) for n in names])

            def serving_ready() -> bool:
                deps = api.items(deployments)
                return len(deps) == runs and all(rolled_out(d) and d["status"].get("replicas") for d in deps)

            wait_until("the serving Deployments to be available", serving_ready, 120 + 2 * runs, every=1)
            operator = our_operator(c.kubeconfig, ns, workdir / "operator.log").start()
            results = []
            for name in names:
                r = one_run(api, ns, name, tracker, completer, timeout=120)
                results.append(r)
                print(f"# {name}: {r.total:.2f}s orchestration latency (verdict → rolled out)", flush=True)
            return results
        except Exception:
            if operator is not None:
                print(f"--- operator log ({workdir / 'operator.log'}) ---\n{operator.tail()}", file=sys.stderr)
            raise
        finally:
            if operator is not None:
                operator.stop()
            completer.stop()
            tracker.stop()
            if not c.own:
                delete_namespace(api, ns)


def report(runs: Sequence[Run]) -> str:
    def row(label: str, values: Sequence[float]) -> list[str]:
        return [label, *(fmt(percentile(values, q), 2) for q in (0, 50, 90, 100))]

    rows = [row(label, [r.span(a, b) for r in runs]) for label, a, b in STAGES]
    rows += [
        row("**orchestration latency: drift verdict → rolled out**", [r.total for r in runs]),
        row("drift verdict → rolled out, less the * step pods", [r.without_step_pods for r in runs]),
        row("of which the operator (three reactions)", [r.operator for r in runs]),
        row("drift verdict → status says RolledOut", [r.to_status for r in runs]),
    ]
    return table([f"seconds, over {len(runs)} runs", "min", "p50", "p90", "max"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.time_to_fresh", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20, help="loops to time, one after the other (default 20)")
    p.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster instead of a fresh local one")
    p.add_argument("--json", type=Path, default=None, help="also write the runs here")
    p.add_argument("--smoke", action="store_true", help="CI: 2 runs, assert they complete (never time)")
    a = p.parse_args(argv)
    runs = run(2 if a.smoke else a.runs, a.kubeconfig)
    print(f"\n{report(runs)}\n")
    print("excluded (simulated as instant): " + "; ".join(EXCLUDED))
    totals = [r.total for r in runs]
    print(f"target: orchestration latency under {TARGET_SECONDS:.0f}s; max {max(totals):.2f}s")
    if a.json is not None:
        a.json.write_text(json.dumps({"runs": [asdict(r) for r in runs]}, indent=2))
    if a.smoke:
        bad = [r.name for r in runs if not all(math.isfinite(x) and x >= 0 for x in (r.total, r.to_status))]
        if bad or len(runs) != 2:
            print(f"SMOKE FAILED: runs without a finite, ordered time to fresh: {bad}", file=sys.stderr)
            return 1
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

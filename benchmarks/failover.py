"""Failover: ``kill -9`` of the leader of two operator replicas, time until the standby acts.

    .venv/bin/python -m benchmarks.failover                     # 10 kills, the chart's timings 15/10/2
    .venv/bin/python -m benchmarks.failover --kills 20 --json out.json
    .venv/bin/python -m benchmarks.failover --smoke             # CI: 2 kills, short timings, no timing asserted

Two ``python -m freshness_operator`` processes with ``FRESHNESS_LEADER_ELECTION=true`` on one
namespace of a fresh local control plane (or ``--kubeconfig``), as the chart runs two replicas.
Each round is one loop of a new ModelDeployment (its own serving Deployment, 1 kwok replica): the
completer (benchmarks/common/completer.py) plays the steps at once (drift found, a better candidate, the
image asked for). The leader is killed with SIGKILL on the watch event of one of its own writes,
in turn: the drift Job created, the train Job created, the package Job created, the image
patched. The killed process is then started again as a new pod would be (a new identity): it
stands by for the next round.

Measured per kill, from the moment before the SIGKILL (this process's clock):
- **lease acquired**: the Lease's ``acquireTime``, written by the new leader (same machine's clock);
- **first action**: the first write of the new leader this benchmark's watches see (a Job created,
  a status changed, the serving image changed) after it acquired the Lease.
Counted over the run: duplicate Jobs (more than one Job of one step and check or retrain number of
one ModelDeployment), double patches (a serving Deployment whose image changed more than once, or
whose revision is past 2), and action lines logged by a replica while it did not hold the Lease.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    STEP_LABEL,
    Api,
    Completer,
    Process,
    Watch,
    cluster,
    create_all,
    create_namespace,
    delete_namespace,
    fmt,
    mdeps_path,
    model_deployment,
    our_operator,
    parse_time,
    percentile,
    serving_deployment,
    table,
    wait_until,
)
from benchmarks.time_to_fresh import result_for
from testkit import labels as label

LEASE = "bench-leader"
PHASES = ("drift Job created", "train Job created", "package Job created", "image patched")
CHART_TIMING = (15.0, 10.0, 2.0)  # leaseDuration, renewDeadline, retryPeriod: the chart's defaults
SMOKE_TIMING = (6.0, 4.0, 1.0)
ACTION = re.compile(r": Job \S+ (created|exists already)|: (rolling out|restoring) image|: deleting old Job")


@dataclass
class Kill:
    round: int
    phase: str
    killed: str
    successor: str
    lease_acquired: float  # seconds after the kill
    first_action: float


@dataclass
class World:
    """What the watches saw: writes with their arrival times, image changes, Job labels."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    writes: list[tuple[float, str]] = field(default_factory=list)
    images: dict[str, list[str]] = field(default_factory=dict)
    statuses: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, dict[str, str]] = field(default_factory=dict)
    hook: Any = None  # called with (what, name) on each write: the kill trigger

    def on_job(self, type_: str, job: dict[str, Any], seen: float) -> None:
        meta = job["metadata"]
        with self.lock:
            if meta["uid"] in self.jobs:
                return
            self.jobs[meta["uid"]] = dict(meta.get("labels") or {}) | {"name": meta["name"]}
            self.writes.append((seen, f"Job {meta['name']} created"))
        self._fire("job", meta["name"])

    def on_deployment(self, type_: str, dep: dict[str, Any], seen: float) -> None:
        name, image = dep["metadata"]["name"], dep["spec"]["template"]["spec"]["containers"][0]["image"]
        with self.lock:
            history = self.images.setdefault(name, [])
            if history and history[-1] == image:
                return
            history.append(image)
            if len(history) > 1:
                self.writes.append((seen, f"Deployment {name} image {image}"))
        if len(history) > 1:
            self._fire("patch", name)

    def on_mdep(self, type_: str, mdep: dict[str, Any], seen: float) -> None:
        name, status = mdep["metadata"]["name"], mdep.get("status")
        with self.lock:
            if name in self.statuses and self.statuses[name] != status:
                self.writes.append((seen, f"ModelDeployment {name} status"))
            self.statuses[name] = status

    def _fire(self, what: str, name: str) -> None:
        hook = self.hook
        if hook is not None:
            hook(what, name)

    def first_write_after(self, t: float) -> float:
        with self.lock:
            return min((w for w, _ in self.writes if w >= t), default=math.nan)


class Replicas:
    """Two operator processes competing for the Lease; a killed one is replaced by a new identity."""

    def __init__(self, kubeconfig: Path, ns: str, workdir: Path, timing: tuple[float, float, float]) -> None:
        self.kubeconfig, self.ns, self.workdir, self.timing = kubeconfig, ns, workdir, timing
        self.procs: dict[str, Process] = {}
        self._n = 0

    def spawn(self) -> str:
        identity = f"op-{self._n}"
        self._n += 1
        proc = our_operator(self.kubeconfig, self.ns, self.workdir / f"{identity}.log")
        lease, renew, retry = self.timing
        proc.env = {
            **proc.env,
            "FRESHNESS_LEADER_ELECTION": "true",
            "FRESHNESS_LEASE_NAME": LEASE,
            "FRESHNESS_LEASE_NAMESPACE": self.ns,
            "FRESHNESS_LEADER_IDENTITY": identity,
            "FRESHNESS_LEASE_DURATION": str(lease),
            "FRESHNESS_RENEW_DEADLINE": str(renew),
            "FRESHNESS_RETRY_PERIOD": str(retry),
        }
        proc.name = identity
        self.procs[identity] = proc.start()
        return identity

    def kill(self, identity: str) -> float:
        proc = self.procs[identity].proc
        assert proc is not None
        at = time.time()
        proc.kill()
        return at

    def standby_violations(self) -> list[str]:
        """Action lines a replica logged while it did not hold the Lease."""
        wrong = []
        for identity, proc in self.procs.items():
            acting = False
            for line in proc.log.read_text(errors="replace").splitlines():
                if "campaigning for Lease" in line or "stops acting" in line:
                    acting = False
                elif "acquired Lease" in line:
                    acting = True
                elif ACTION.search(line) and not acting:
                    wrong.append(f"{identity}: {line}")
        return wrong

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def lease(api: Api, ns: str) -> dict[str, Any]:
    return api.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}", allow=(404,))


def holder(api: Api, ns: str) -> str:
    return str((lease(api, ns).get("spec") or {}).get("holderIdentity") or "")


def one_round(api: Api, ns: str, i: int, world: World, replicas: Replicas) -> Kill:
    name, phase = f"fo{i:02d}", PHASES[i % len(PHASES)]
    leader = holder(api, ns)
    killed: list[float] = []
    trigger = {
        PHASES[0]: ("job", f"{name}-drift-1"),
        PHASES[1]: ("job", f"{name}-train-1-0"),
        PHASES[2]: ("job", f"{name}-package-1"),
        PHASES[3]: ("patch", name),
    }[phase]

    def hook(what: str, obj: str) -> None:
        if not killed and (what, obj) == trigger:
            killed.append(replicas.kill(leader))

    world.hook = hook
    api.request("POST", mdeps_path(ns), model_deployment(name, "1h"))
    wait_until(f"{name}: the leader killed on '{phase}'", lambda: killed, 120, every=0.05)
    world.hook = None
    successor = wait_until("a new leader", lambda: (h := holder(api, ns)) not in ("", leader) and h, 120, every=0.1)
    acquired = parse_time(str(lease(api, ns)["spec"]["acquireTime"]))

    def done() -> bool:
        candidate = ((world.statuses.get(name) or {}).get("candidate")) or {}
        if candidate.get("outcome") not in (None, "RolledOut"):
            raise RuntimeError(f"{name}: the loop ended with {candidate['outcome']}, not RolledOut")
        return candidate.get("outcome") == "RolledOut"

    wait_until(f"{name} rolled out by {successor}", done, 180, every=0.2)
    replicas.procs[leader].stop()  # reaps the killed process
    replicas.spawn()  # the replacement pod stands by for the next round
    kill = Kill(i, phase, leader, successor, acquired - killed[0], world.first_write_after(acquired) - killed[0])
    print(
        f"# round {i}: killed {leader} on '{phase}'; {successor} acquired the Lease after "
        f"{kill.lease_acquired:.2f}s, first action after {kill.first_action:.2f}s",
        flush=True,
    )
    return kill


def duplicates(world: World) -> tuple[int, int]:
    """(duplicate Jobs, double patches) over the run. Pure over ``world``."""
    seen: dict[tuple[str, ...], int] = {}
    for job in world.jobs.values():
        number = job.get(label.CHECK) or job.get(label.RETRAIN) or ""
        key = (job.get(label.DEPLOYMENT, ""), job.get(label.STEP, ""), number, job.get(label.CANDIDATE, ""))
        seen[key] = seen.get(key, 0) + 1
    jobs = sum(n - 1 for n in seen.values())
    patches = sum(max(0, len(h) - 2) for h in world.images.values())
    return jobs, patches


def run(kills: int, kubeconfig: Path | None, timing: tuple[float, float, float]) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mf-bench-failover-"))
    names = [f"fo{i:02d}" for i in range(kills)]
    with cluster(kubeconfig, nodes=2) as c:
        api, ns = c.api, f"bench-fo-{uuid.uuid4().hex[:4]}"
        create_namespace(api, ns)
        world = World()
        watches = [
            Watch(api, f"/apis/batch/v1/namespaces/{ns}/jobs", world.on_job, selector=STEP_LABEL),
            Watch(api, f"/apis/apps/v1/namespaces/{ns}/deployments", world.on_deployment),
            Watch(api, mdeps_path(ns), world.on_mdep),
        ]
        completer = Completer(api, ns, result_for).start()
        replicas = Replicas(c.kubeconfig, ns, workdir, timing)
        try:
            create_all(api, [(f"/apis/apps/v1/namespaces/{ns}/deployments", serving_deployment(n)) for n in names])
            for w in watches:
                w.start()
            first = replicas.spawn()
            wait_until(f"{first} to lead", lambda: holder(api, ns) == first, 60, every=0.2)
            replicas.spawn()
            results = [one_round(api, ns, i, world, replicas) for i in range(kills)]
            revisions = {
                d["metadata"]["name"]: (d["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
                for d in api.items(f"/apis/apps/v1/namespaces/{ns}/deployments")
            }
            dup_jobs, double = duplicates(world)
            double += sum(1 for r in revisions.values() if r not in (None, "1", "2"))
            return {
                "kills": [asdict(k) for k in results],
                "duplicate_jobs": dup_jobs,
                "double_patches": double,
                "standby_actions": replicas.standby_violations(),
                "timing": dict(zip(("leaseDuration", "renewDeadline", "retryPeriod"), timing, strict=True)),
                "load_average": list(os.getloadavg()),
            }
        except Exception:
            for identity, proc in replicas.procs.items():
                print(f"--- {identity} ({proc.log}) ---\n{proc.tail()}", file=sys.stderr)
            raise
        finally:
            replicas.stop()
            completer.stop()
            for w in watches:
                w.stop()
            if not c.own:
                delete_namespace(api, ns)


def report(result: dict[str, Any]) -> str:
    kills = [Kill(**k) for k in result["kills"]]

    def row(label: str, values: Sequence[float]) -> list[str]:
        return [label, *(fmt(percentile(values, q), 2) for q in (0, 50, 90, 100))]

    t = result["timing"]
    rows = [
        row("kill -9 → Lease acquired by the standby", [k.lease_acquired for k in kills]),
        row("kill -9 → first action of the new leader", [k.first_action for k in kills]),
    ]
    head = f"seconds, {len(kills)} kills (lease {t['leaseDuration']:g}/{t['renewDeadline']:g}/{t['retryPeriod']:g} s)"
    counts = (
        f"duplicate Jobs: {result['duplicate_jobs']}; double patches: {result['double_patches']}; "
        f"actions logged by a replica without the Lease: {len(result['standby_actions'])}"
    )
    return table([head, "min", "p50", "p90", "max"], rows) + "\n\n" + counts


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10, help="rounds, one kill -9 of the leader each (default 10)")
    p.add_argument("--lease", type=float, nargs=3, default=None, metavar=("DURATION", "RENEW", "RETRY"),
                   help="lease timings in seconds (default: the chart's 15 10 2; smoke: 6 4 1)")  # fmt: skip
    p.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster instead of a fresh local one")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument(
        "--smoke", action="store_true", help="CI: 2 kills with short timings; assert no duplicate (never time)"
    )
    a = p.parse_args(argv)
    timing = tuple(a.lease) if a.lease else (SMOKE_TIMING if a.smoke else CHART_TIMING)
    result = run(2 if a.smoke else a.kills, a.kubeconfig, (timing[0], timing[1], timing[2]))
    print(f"\n{report(result)}\n")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{x:.2f}" for x in result["load_average"]))
    if a.json is not None:
        a.json.write_text(json.dumps(result, indent=2))
    bad = result["duplicate_jobs"] or result["double_patches"] or result["standby_actions"]
    if bad:
        print(f"FAILED: duplicates or a standby that acted: {json.dumps(result, indent=2)}", file=sys.stderr)
        return 1
    if a.smoke:
        finite = all(math.isfinite(k["lease_acquired"]) and math.isfinite(k["first_action"]) for k in result["kills"])
        if len(result["kills"]) != 2 or not finite:
            print("SMOKE FAILED: a kill without a finite failover", file=sys.stderr)
            return 1
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`'s traffic: start the load generator (hack/loadgen.py) on the production batches, and
turn its results and the ModelDeployment's Events into the summary's facts. ``start`` touches the
network; the rest is pure.

* live accuracy and the share predicted as bees on the bee mix, answered by the old model (before)
  and by the new one (after), keyed by the image of the pod that answered;
* failed requests during the rollout (RolloutStarted -> RolledOut, plus the old pods' grace period)
  and during act two's rollback (RolloutStarted -> RolledBack, plus the same), and in the whole run;
* the time to fresh: the drift verdict (the DriftDetected Event) -> the first request the new
  model answered, split by step from the Events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hack.demo_serving import GRACE_SECONDS
from hack.demo_timeline import say
from hack.loadgen import Endpoints, LoadGen, Result, Stats, load_stream, stats

STREAMS = ("iid", "new-class", "rotation")
TIMEOUT = 10.0  # seconds a request may take before it counts as failed


def start(api: Any, namespace: str, service: str, production: Path, rate: float) -> LoadGen:
    streams = {name: load_stream(production / name, seed=i) for i, name in enumerate(STREAMS)}
    gen = LoadGen(Endpoints(api, namespace, service), service, streams, rate, TIMEOUT, say)
    gen.start()
    gen.switch("iid")
    return gen


@dataclass
class Story:
    """Where `make demo` is in its story (hack/demo.py drives it)."""

    bees_at: float | None = None  # the bee mix started
    verdict: dict[str, Any] | None = None  # status.drift of the check that found drift
    new_image: str | None = None  # the retrained model's image, once it serves
    post_checks: list[dict[str, Any]] = field(default_factory=list)  # the new model's checks
    act_two_at: float | None = None
    gate: dict[str, Any] | None = None  # the retrain that rolled out
    best_overrides: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Window:
    name: str
    start: float
    end: float

    def of(self, results: Sequence[Result]) -> list[Result]:
        return [r for r in results if self.start <= r.time < self.end]


def first(events: Sequence[tuple[float, str]], reason: str, after: float = 0.0) -> float | None:
    return next((t for t, r in events if r == reason and t >= after), None)


def rollout_window(events: Sequence[tuple[float, str]], name: str, after: float, end_reason: str) -> Window | None:
    """RolloutStarted (the first at or after ``after``) to ``end_reason``, plus the grace period the
    old or failed pods may still answer in."""
    begin = first(events, "RolloutStarted", after)
    end = first(events, end_reason, begin) if begin is not None else None
    if begin is None or end is None:
        return None
    return Window(name, begin - 1, end + GRACE_SECONDS + 5)


def by_image(results: Sequence[Result], stream: str, image: str) -> Stats:
    return stats([r for r in results if r.stream == stream and r.image == image])


STEPS = (
    ("drift verdict -> training started", "DriftDetected", "TrainingStarted"),
    ("training the candidates (dvc exp run)", "TrainingStarted", "CandidateAccepted"),
    ("gate -> packaging started", "CandidateAccepted", "PackagingStarted"),
    ("packaging the image", "PackagingStarted", "Packaged"),
    ("packaged -> rollout started", "Packaged", "RolloutStarted"),
    ("rollout started -> first answer by the new model", "RolloutStarted", "FirstAnswer"),
)


def time_to_fresh(events: Sequence[tuple[float, str]], first_answer: float | None, after: float = 0.0
                  ) -> dict[str, Any]:
    """Seconds per step from the drift verdict to the new model's first answer (Events have 1 s resolution)."""
    times = dict[str, float]()
    verdict = first(events, "DriftDetected", after)
    if verdict is None:
        return {}
    times["DriftDetected"] = verdict
    for _, begin, end in STEPS:
        if end == "FirstAnswer":
            if first_answer is not None:
                times[end] = first_answer
        elif (t := first(events, end, times.get(begin, verdict))) is not None:
            times[end] = t
    steps = [{"step": name, "seconds": round(times[e] - times[b], 1)} for name, b, e in STEPS
             if b in times and e in times]
    total = round(times["FirstAnswer"] - verdict, 1) if "FirstAnswer" in times else None
    return {"seconds": total, "steps": steps}


def facts(results: Sequence[Result], events: Sequence[tuple[float, str]], story: Story, v1_image: str
          ) -> dict[str, Any]:
    """The summary's traffic facts (module docstring)."""
    new = story.new_image or ""
    answered_new = [r.time for r in results if r.image == new and r.predicted is not None]
    after = story.bees_at if story.bees_at is not None else 0.0
    rollout = rollout_window(events, "rollout", after, "RolledOut")
    rollback = (rollout_window(events, "rollback", story.act_two_at, "RolledBack")
                if story.act_two_at is not None else None)
    back = first(events, "RolledBack", story.act_two_at) if story.act_two_at is not None else None
    before_s, after_s = by_image(results, "new-class", v1_image), by_image(results, "new-class", new)
    out: dict[str, Any] = {
        "requests": len(results),
        "failed": sum(r.predicted is None for r in results),
        "failures": [{"time": r.time, "ip": r.ip, "pod": r.pod, "error": r.error} for r in results if r.error][:50],
        "beeMix": {"before": vars(before_s), "after": vars(after_s)},
        "iid": vars(by_image(results, "iid", v1_image)),
        "firstAnswerByNewModel": min(answered_new) if answered_new else None,
        "timeToFresh": time_to_fresh(events, min(answered_new) if answered_new else None, after),
        "windows": {},
    }
    for w in (rollout, rollback):
        if w is not None:
            out["windows"][w.name] = {"start": w.start, "end": w.end, **vars(stats(w.of(results)))}
    if back is not None:
        restored = [r for r in results if r.time >= back + GRACE_SECONDS + 5]
        out["afterRollback"] = {
            "images": sorted({r.image for r in restored if r.predicted is not None}),
            **vars(stats(restored)),
        }
    return out

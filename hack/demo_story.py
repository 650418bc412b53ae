"""`make demo`'s story, driven from what the ModelDeployment's status says (hack/demo.py runs it).

iid traffic until a clean check, then the bee mix until drift; the retrain and its rollout; then
POST_CHECKS clean checks of the new model on the same traffic; then (act two) rotated images and
a broken candidate, until the rollback has settled and the restored model has answered.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from hack import demo_serving, demo_traffic
from hack.demo_timeline import DemoError, say

if TYPE_CHECKING:
    from hack.demo import Demo

POST_CHECKS = 3  # checks of the new model on the bee mix before act two (tests/demo asserts all are clean)


def watch(demo: Demo) -> dict[str, Any]:
    """Print the timeline and drive the story from what status says: iid traffic until a clean
    check, then the bee mix until drift; the retrain; POST_CHECKS clean checks of the new model;
    then (act two) rotated images and a broken candidate until the rollback has settled."""
    deadline = time.monotonic() + demo.timeout
    t, gen, s = demo.timeline, demo.loadgen, demo.story
    assert gen is not None
    while time.monotonic() < deadline:
        demo.check_children_alive()
        demo.evidence.scan()
        status = demo.mdep().get("status") or {}
        t.phase(status.get("phase"))
        t.events(demo.mdep_events())
        drift = status.get("drift") or {}
        if t.new_check(drift):
            s.checks.append({**drift, "stream": gen.stream, "seenAt": time.time()})
            measured = (drift.get("model") or {}).get("image")
            if s.bees_at is None and drift.get("detected") is False:
                gen.switch("new-class")
                s.bees_at = time.time()
            elif s.bees_at is not None and drift.get("detected") and s.verdict is None:
                s.verdict = dict(drift)
            elif s.new_image and s.act_two_at is None and measured == s.new_image:
                s.post_checks.append(dict(drift))
                if len(s.post_checks) >= POST_CHECKS:
                    if not demo.act_two:
                        return outcome(demo, status)
                    start_act_two(demo)
        t.candidate(status.get("candidate") or {})
        model = status.get("model") or {}
        if s.new_image is None and t.gate and model.get("version") == t.version:
            s.new_image, s.gate, s.best_overrides = model.get("image"), t.gate, t.best_overrides
            say(f"serving model is now {model.get('version')} ({model.get('image')}); waiting for "
                f"{POST_CHECKS} checks of the new model on the same traffic")
        if s.act_two_at is not None and settled_after_rollback(demo):
            return outcome(demo, status)
        if status.get("phase") == "Failed":
            raise DemoError(f"the loop failed: {json.dumps(status.get('conditions'), indent=1)}")
        time.sleep(1)
    raise DemoError(f"the story did not finish within {demo.timeout:.0f}s; phases seen: {t.phases}")


def start_act_two(demo: Demo) -> None:
    assert demo.loadgen
    demo.story.act_two_at = time.time()
    say("act two: rotated images arrive, and a permissive policy lets a broken candidate through")
    demo.loadgen.switch("rotation")
    patch = {"spec": {
        "source": {"revision": demo.broken_rev},  # its train stage corrupts the model file it wrote
        "training": {"candidates": [{"train.epochs": 4}], "maxParallel": 1},
        "promotion": {"minImprovement": -1.0},  # demo only: accept a candidate no better than serving
        "drift": {"trigger": "distribution"},  # the rotation changes the inputs: retrain on that alone
        "policy": {"cooldown": "10s"},  # the first retrain started minutes ago
    }}
    demo.kubectl("patch", "mdep", demo.name, "-n", demo.namespace, "--type=merge", "-p", json.dumps(patch))


def settled_after_rollback(demo: Demo) -> bool:
    """RolledBack, the failed pod gone, and the restored model answered 20 requests after the grace period."""
    s, gen = demo.story, demo.loadgen
    assert gen is not None and s.act_two_at is not None
    back = demo_traffic.first(demo.timeline.event_times, "RolledBack", s.act_two_at - 1)
    if back is None:
        return False
    eps = gen.endpoints.ready()
    # counted as the summary counts them: after the failed pods' grace period
    answered = [r for r in gen.since(back + demo_serving.GRACE_SECONDS + 5)
                if r.image == s.new_image and r.predicted is not None]
    return (time.time() > back + demo_serving.GRACE_SECONDS + 5 and len(eps) == 2
            and all(img == s.new_image for _, _, img in eps) and len(answered) >= 20)


def outcome(demo: Demo, status: dict[str, Any]) -> dict[str, Any]:
    return {**demo.timeline.outcome(status), "story": demo.story}

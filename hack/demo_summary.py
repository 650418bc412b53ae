"""`make demo`'s summary: what the run showed, written to <workdir>/summary.json and printed.

Traffic facts come from hack/demo_traffic.py (the generator's results and the Events), the
processes' users and mounts from hack/demo_evidence.py, the alerts from the demo's Prometheus.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hack import demo_prometheus, demo_traffic, timeline_png
from hack.demo_timeline import say, unix

if TYPE_CHECKING:
    from hack.demo import Demo



def write(demo: Demo, v1: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    from freshness_trainer import model as model_file  # torch: only once the story is done

    assert demo.loadgen and demo.prometheus
    demo.loadgen.close()
    demo.loadgen.write(demo.work / "requests.jsonl")
    status, s = outcome["status"], demo.story
    model = status.get("model") or {}
    image = demo.kubectl(
        "get", "deployment", demo.name, "-n", demo.namespace, "-o", "jsonpath={.spec.template.spec.containers[0].image}"
    )
    served = model_file.load(model["uri"])
    last_check = unix((status.get("drift") or {}).get("lastCheckTime"), time.time())
    seen = demo_prometheus.observe(demo.prometheus, demo.namespace, demo.name, demo.operator_started, last_check)
    picture = demo.timeline.picture(demo.operator_started, time.time(), seen.alerts)
    png = timeline_png.draw(picture, demo.work / "timeline.png")
    traffic = demo_traffic.facts(demo.loadgen.results, demo.timeline.event_times, s, demo.v1_image)
    summary = {
        "phases": outcome["phases"],
        "events": outcome["events"],
        "eventTimes": [{"time": t, "reason": r} for t, r in demo.timeline.event_times],
        "model": model,
        "v1Image": demo.v1_image,
        "newImage": s.new_image,
        "servingImage": image,
        "servedClasses": list(served.classes),
        "v1ValAccOnTwoClasses": v1["train"]["metrics"].get("val_acc"),
        "gate": s.gate,
        "bestOverrides": s.best_overrides,
        "driftVerdict": s.verdict,
        "postRolloutChecks": s.post_checks,
        "actTwo": s.act_two_at is not None,
        "traffic": traffic,
        "processes": demo.evidence.json(),
        "pullCache": str(demo.work / "pods" / "images"),  # the dev kubelet's pulled images (hack/kubelet/pull.py)
        "report": (status.get("drift") or {}).get("report"),
        "checks": [vars(c) for c in picture.checks],
        "milestones": [{"time": t, "event": e} for t, e in picture.markers],
        **seen.json(),
        "timelinePng": str(png),
    }
    (demo.work / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(demo, summary, seen, png)
    return summary


def print_summary(demo: Demo, summary: dict[str, Any], seen: Any, png: Path) -> None:
    model, traffic, verdict = summary["model"], summary["traffic"], summary["driftVerdict"] or {}
    say("summary")
    print(f"  phases seen:           {' -> '.join(summary['phases'])}")
    print(f"  events:                {' -> '.join(summary['events'])}")
    print(f"  drift verdict:         reasons {verdict.get('reasons')} (trigger {verdict.get('trigger')}) on "
          f"{verdict.get('samples')} captured requests, labelled accuracy {verdict.get('accuracy')}")
    print(f"    {signals(verdict)}")
    print(f"  images:                {summary['v1Image']} -> {summary['newImage']}")
    print(f"  serving image now:     {summary['servingImage']}")
    print(f"  model version:         {model.get('version')} (experiment {model.get('experiment')}), "
          f"classes {', '.join(summary['servedClasses'])}")
    print(f"  gate:                  {(summary['gate'] or {}).get('message')}")
    bee = traffic["beeMix"]
    print(f"  live, bee mix:         accuracy {bee['before']['accuracy']} -> {bee['after']['accuracy']}, "
          f"predicted bees {bee['before']['bees_predicted']} -> {bee['after']['bees_predicted']} "
          f"({bee['before']['requests']} and {bee['after']['requests']} requests)")
    print(f"  new model's checks:    {[c.get('detected') for c in summary['postRolloutChecks']]} (detected)")
    for c in summary["postRolloutChecks"]:
        print(f"    {c.get('job')}: {signals(c)}")
    for name, w in traffic["windows"].items():
        print(f"  during the {name + ':':9}  {w['requests']} requests, {w['failed']} failed")
    if "afterRollback" in traffic:
        a = traffic["afterRollback"]
        print(f"  after the rollback:    {a['requests']} requests answered by {a['images']}, {a['failed']} failed")
    print(f"  all traffic:           {traffic['requests']} requests, {traffic['failed']} failed")
    fresh = traffic["timeToFresh"]
    print(f"  time to fresh:         {fresh.get('seconds')} s (drift verdict -> the new model answers)")
    for step in fresh.get("steps", []):
        print(f"    {step['step']:52} {step['seconds']:7.1f} s")
    seen.print()
    print(f"  timeline picture:      {png}")
    print(f"  requests:              {demo.work / 'requests.jsonl'}")
    print(f"  logs and data:         {demo.work}")


def signals(check: dict[str, Any]) -> str:
    """One check's label-free signals as the summary prints them. Pure."""
    nov, est = check.get("novelty") or {}, check.get("estimatedAccuracy") or {}
    return (f"novelty {nov.get('share')} vs {nov.get('referenceRate')} held out (p {nov.get('pValue')}), "
            f"estimated accuracy {est.get('value')} vs {est.get('reference')}, distribution score "
            f"{check.get('score')}, reference {check.get('referenceSamples')} held-out images")

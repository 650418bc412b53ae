"""``freshness-trainer``: the commands the operator's Jobs run (docs/contracts.md).

Every step command writes exactly one result document (freshness_trainer.contract) to
``--result-path`` (env ``FRESHNESS_RESULT_PATH``, default ``/dev/termination-log``), also when it
fails: then ``ok`` is false, ``reason`` is CamelCase, the message names the problem and the exit
status is 1. Heavy imports (torch, DVC, Evidently) happen inside the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from freshness_trainer import contract
from freshness_trainer.errors import TrainerError

Handler = Callable[[argparse.Namespace], dict[str, Any]]


def _drift(args: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import checks, drift, params

    d = params.load(args.params).drift if args.params else params.DRIFT_DEFAULTS
    outcome = checks.run(checks.DriftInputs(
        reference=args.reference,
        current=args.current,
        model=args.model,
        threshold=d.threshold if args.threshold is None else args.threshold,
        min_samples=d.min_samples if args.min_samples is None else args.min_samples,
        accuracy_drop=d.accuracy_drop if args.accuracy_drop is None else args.accuracy_drop,
        report=args.report or "",
        pca_components=d.pca_components,
        device=args.device,
    ))
    v = outcome.verdict
    result: dict[str, Any] = {
        "detected": v.detected, "share": round(v.share, 6), "score": round(v.score, 6), "threshold": v.threshold,
        "method": drift.METHOD, "samples": outcome.samples, "referenceSamples": outcome.reference_samples,
        "topFeatures": v.top_features(),
    }
    if outcome.report:
        result["report"] = outcome.report
    if v.accuracy is not None:
        result["accuracy"] = {"current": round(v.accuracy.current, 6), "reference": round(v.accuracy.reference, 6),
                              "drop": round(v.accuracy.drop, 6)}
    why = f"score {v.score:.4f} vs threshold {v.threshold:.4f}; {len(v.drifted)} of {len(v.pvalues)} features at p<0.05"
    if v.accuracy_drifted:
        why = f"accuracy drop; {why}"
    return {"drift": result, "message": f"drift {'detected' if v.detected else 'not detected'}: {why}"}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import project
    from freshness_trainer.stages import evaluate

    with tempfile.TemporaryDirectory(prefix="freshness-train-") as tmp:
        workdir = Path(args.workdir or tmp) / "repo"
        base_rev = project.clone(args.repo, args.rev, workdir)
        project.run_experiment(workdir, args.set, args.name)
        name = args.name or project.latest_experiment(workdir)
        rev, metrics, all_params = project.show(workdir, name)
        overridden = {s.split("=", 1)[0] for s in args.set}
        chosen = {k: v for k, v in all_params.items() if k.startswith("train.") or k in overridden}
        train: dict[str, Any] = {"experiment": name, "rev": rev, "metrics": _limit(metrics), "params": _limit(chosen)}
        if args.baseline_model:
            scores, _ = evaluate.score_folder(args.baseline_model, str(workdir / "data/prepared/val"), 128)
            train["baselineMetrics"] = _limit(scores.metrics())
        if args.remote:
            train["model"] = project.publish(workdir, name, args.remote)
    return {"train": train, "message": f"experiment {name} ({rev[:8]}) from {args.repo}@{base_rev[:8]}"}


def _limit(d: dict[str, Any], n: int = 32) -> dict[str, Any]:
    return dict(sorted(d.items())[:n])


def _publish(args: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import project

    workdir = Path(args.repo)
    name = args.experiment or project.latest_experiment(workdir)
    rev, metrics, _ = project.show(workdir, name)
    where = project.publish(workdir, name, args.remote, args.git_remote)
    return {"train": {"experiment": name, "rev": rev, "metrics": _limit(metrics), "model": where},
            "message": f"pushed experiment {name} to {args.git_remote} and its outputs to {args.remote}"}


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer.stages import evaluate

    scores, _ = evaluate.score_folder(args.model, args.data, args.batch_size, args.device)
    return {"train": {"metrics": _limit(scores.metrics())},
            "message": f"accuracy {scores.accuracy:.4f} on {scores.samples} images of {args.data}"}


def _package(args: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import oci

    out = Path(args.output)
    layout = oci.build(args.model, args.image, out, args.base_image or "")
    digest = oci.push(layout, args.image, args.base_image or "") if args.push else layout.digest
    return {"package": {"image": args.image, "digest": digest},
            "message": f"{'pushed' if args.push else 'built'} {args.image}@{digest} (layout {out})"}


def _make_sample_data(args: argparse.Namespace) -> None:
    from freshness_trainer import sampledata

    manifest = sampledata.make_sample_data(Path(args.out), seed=args.seed, per_class=args.per_class,
                                           production=args.production)
    folders = manifest["folders"]
    assert isinstance(folders, dict)
    for name, counts in folders.items():
        print(f"{args.out}/{name}: {counts}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="freshness-trainer", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def step(name: str, helptext: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=helptext)
        default = os.environ.get("FRESHNESS_RESULT_PATH", contract.DEFAULT_TERMINATION_LOG)
        sp.add_argument("--result-path", default=default,
                        help="where to write the result JSON (env FRESHNESS_RESULT_PATH)")
        return sp

    d = step("drift", "compare production images with the reference through the serving model")
    d.add_argument("--reference", required=True, help="image folder the serving model was trained on")
    d.add_argument("--current", required=True, help="production images (class subfolders = labelled)")
    d.add_argument("--model", required=True, help="the serving model file")
    d.add_argument("--threshold", type=float,
                   help="drift when the score, 1 - the Simes-combined p-value of the per-feature tests, reaches "
                        "this (0.95: at most 5%% false alarms per check)")
    d.add_argument("--min-samples", type=int, help="fail with TooFewSamples below this many current images")
    d.add_argument("--accuracy-drop", type=float,
                   help="labelled current data: also drift when accuracy falls more than this below the "
                        "model's recorded val_acc")
    d.add_argument("--report", help="where to write the Evidently HTML report (path or URI)")
    d.add_argument("--params", help="params.yaml whose drift section supplies the defaults "
                                    "(threshold, min_samples, accuracy_drop, pca_components)")
    d.add_argument("--device", help="cpu or cuda (default: cuda when available)")

    t = step("train", "clone a DVC project, run one experiment (dvc exp run) and report its metrics, "
                      "including learned (0: the model is at chance)")
    t.add_argument("--repo", required=True, help="the DVC project: git URL or local path")
    t.add_argument("--rev", default="HEAD", help="git revision to start from")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dvc exp run -S override")
    t.add_argument("--name", help="experiment name")
    t.add_argument("--baseline-model", help="serving model to score on the same validation data")
    t.add_argument("--remote", help="DVC remote (directory or URI) to push the experiment's outputs to")
    t.add_argument("--workdir", help="keep the clone here instead of a temporary directory")

    pb = step("publish", "push an experiment and its model to a DVC remote")
    pb.add_argument("--repo", required=True, help="the DVC project's working copy holding the experiment")
    pb.add_argument("--experiment", help="experiment name (default: the newest)")
    pb.add_argument("--remote", required=True)
    pb.add_argument("--git-remote", default="origin")

    e = step("evaluate", "score a model file on a labelled image folder")
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True)
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--device")

    k = step("package", "build the serving image (OCI layout with the model as a layer)")
    k.add_argument("--model", required=True)
    k.add_argument("--image", required=True, help="REPO:TAG")
    k.add_argument("--base-image", help="base image reference (used by crane append on --push)")
    k.add_argument("--output", default="image-layout", help="directory of the OCI layout")
    k.add_argument("--push", action="store_true", help="push with crane")

    s = sub.add_parser("make-sample-data", help="write the built-in sample image set (no result document)")
    s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--per-class", type=int, default=120)
    s.add_argument("--production", type=int, default=200, help="images per production folder")
    return p


HANDLERS: dict[str, Handler] = {
    "drift": _drift, "train": _train, "publish": _publish, "evaluate": _evaluate, "package": _package,
}


def _emit(doc: dict[str, Any], path: str) -> None:
    try:
        text = contract.write(doc, path)
    except OSError as exc:
        print(f"freshness-trainer: cannot write the result to {path}: {exc}", file=sys.stderr)
        text = contract.encode(doc)
    print(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "make-sample-data":
        _make_sample_data(args)
        return 0
    try:
        body = HANDLERS[args.command](args)
        doc = {"step": args.command, "ok": True, **body}
        code = 0
    except TrainerError as exc:
        doc = {"step": args.command, "ok": False, "reason": exc.reason, "message": exc.message[:1024]}
        print(f"freshness-trainer {args.command}: {exc}", file=sys.stderr)
        code = 1
    except Exception as exc:  # a bug, not a bad input: still tell the operator what happened
        doc = {"step": args.command, "ok": False, "reason": "InternalError",
               "message": f"{type(exc).__name__}: {exc}"[:1024]}
        print(f"freshness-trainer {args.command}: internal error", file=sys.stderr)
        import traceback

        traceback.print_exc()
        code = 2
    doc["message"] = str(doc.get("message", ""))[:1024]
    _emit(doc, args.result_path)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

"""``freshness-trainer``: the commands the operator's Jobs run (docs/contracts.md).

Every step command writes exactly one result document (``freshness_contract``) to
``--result-path`` (env ``FRESHNESS_RESULT_PATH``, default ``/dev/termination-log``), also when it
fails: then ``ok`` is false, ``reason`` is CamelCase, the message names the problem and the exit
status is 1. The options of ``drift``, ``train`` and ``package`` are declared by
``freshness_contract.argv``, the same definition the operator builds its Jobs' arguments from.
Heavy imports (torch, DVC, Evidently) happen inside the commands.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import freshness_contract as contract
from freshness_contract.argv import DriftArgs, PackageArgs, TrainArgs

from freshness_trainer.errors import TrainerError

if TYPE_CHECKING:
    from freshness_trainer.drift_step import Impact

Handler = Callable[[argparse.Namespace], dict[str, Any] | None]  # None: no result (node 1.. of a group)
SERVER_IMAGE_ENV = "FRESHNESS_SERVER_IMAGE"  # the package step's default base image


def _drift(ns: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import drift_rule, drift_step, params

    args = DriftArgs.from_namespace(ns)
    if args.model is None:
        raise TrainerError("MissingModel", "--model: the drift step needs the serving model (spec.serving.modelUri)")
    d = params.load(args.params).drift if args.params else params.DRIFT_DEFAULTS
    window = _window(args.window)
    if args.newest is not None and args.newest < 1:
        raise TrainerError("InvalidArgument", f"--newest {args.newest}: expected a whole number >= 1")
    outcome = drift_step.run(drift_step.DriftInputs(
        reference=args.reference,
        current=args.current,
        model=args.model,
        threshold=d.threshold if args.threshold is None else args.threshold,
        min_samples=d.min_samples if args.min_samples is None else args.min_samples,
        accuracy_drop=d.accuracy_drop if args.accuracy_drop is None else args.accuracy_drop,
        report=args.report or "",
        pca_components=d.pca_components,
        stattest_threshold=d.stattest_threshold,
        device=args.device,
        window=window,
        newest=args.newest,
    ))
    v = outcome.verdict
    result: dict[str, Any] = {
        "detected": v.detected, "share": round(v.share, 6), "score": round(v.score, 6), "threshold": v.threshold,
        "method": drift_rule.METHOD, "samples": outcome.samples, "referenceSamples": outcome.reference_samples,
        "topFeatures": v.top_features(),
    }
    if outcome.report:
        result["report"] = outcome.report
    if outcome.window is not None:
        result["window"] = outcome.window.describe()
    if v.accuracy is not None:
        result["accuracy"] = {"current": round(v.accuracy.current, 6), "reference": round(v.accuracy.reference, 6),
                              "drop": round(v.accuracy.drop, 6)}
    features = f"{len(v.drifted)} of {len(v.pvalues)} features at p<{d.stattest_threshold:g}"
    why = f"score {v.score:.4f} vs threshold {v.threshold:.4f}; {features}"
    if v.accuracy_drifted:
        why = f"accuracy drop; {why}"
    if outcome.impact is not None:
        result.update(_signals(outcome.impact))
        why = f"{why}; {_signals_text(outcome.impact)}"
    return {"drift": result, "message": f"drift {'detected' if v.detected else 'not detected'}: {why}"}


def _signals(found: Impact) -> dict[str, Any]:
    """The label-free signals (issue 14) as the result contract spells them."""
    n = found.novelty
    out: dict[str, Any] = {
        "novelty": {"share": round(n.share, 6), "referenceRate": round(n.reference_rate, 6),
                    "pValue": float(f"{n.p_value:.6g}"), "detected": n.detected},
        "referenceKind": found.reference_kind,
    }
    e = found.estimate
    if e is not None:
        low, value, high = round(e.low, 6), round(e.value, 6), round(e.high, 6)
        out["estimatedAccuracy"] = {"value": value, "low": min(low, value), "high": max(high, value)}
        if found.reference_accuracy is not None:
            out["estimatedAccuracy"]["reference"] = round(found.reference_accuracy, 6)
    return out


def _signals_text(found: Impact) -> str:
    e, n = found.estimate, found.novelty
    estimate = f"estimated accuracy {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]" if e is not None else "no calibration"
    if e is not None and found.reference_accuracy is not None:
        estimate += f" vs {found.reference_accuracy:.3f} held out"
    return f"{estimate}; novelty {n.share:.3f} (reference {n.reference_rate:.3f}, p={n.p_value:.3g})"


def _window(text: str | None) -> timedelta | None:
    from freshness_trainer import partitions

    if text is None:
        return None
    try:
        return partitions.parse_duration(text)
    except ValueError as exc:
        raise TrainerError("InvalidArgument", f"--window: {exc}") from None


def _train(ns: argparse.Namespace) -> dict[str, Any] | None:
    from freshness_trainer import distributed, project
    from freshness_trainer.stages import evaluate

    args = TrainArgs.from_namespace(ns)
    group = distributed.Group.from_env()  # several pods: node 0 runs the experiment, the others join its training
    with tempfile.TemporaryDirectory(prefix="freshness-train-") as tmp:
        workdir = Path(args.workdir or tmp) / "repo"
        base_rev = project.clone(args.repo, args.rev, workdir)
        if group is not None and group.node_rank > 0:
            project.run_other_node(workdir, list(args.overrides))
            return None
        project.run_experiment(workdir, list(args.overrides), args.name)
        name = args.name or project.latest_experiment(workdir)
        rev, metrics, all_params = project.show(workdir, name)
        overridden = {s.split("=", 1)[0] for s in args.overrides}
        chosen = {k: v for k, v in all_params.items() if k.startswith("train.") or k in overridden}
        train: dict[str, Any] = {"experiment": name, "rev": rev, "metrics": _limit(metrics), "params": _limit(chosen)}
        if args.baseline_model:
            scores, _ = evaluate.score_folder(args.baseline_model, str(workdir / "data/prepared/val"), 128)
            train["baselineMetrics"] = _limit(scores.metrics())
        if args.remote:
            train["model"] = project.publish(workdir, name, args.remote)
    ranks = int(metrics.get("world_size", 1))
    on = f" on {ranks} ranks ({group.nnodes} pods x {group.nproc_per_node})" if group is not None else ""
    return {"train": train, "message": f"experiment {name} ({rev[:8]}) from {args.repo}@{base_rev[:8]}{on}"}


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


def _package(ns: argparse.Namespace) -> dict[str, Any]:
    from freshness_trainer import oci

    args = PackageArgs.from_namespace(ns)
    out = Path(args.output)
    # Default: the model server image (a packaged model serves); '' builds a model-only image.
    base = args.base_image if args.base_image is not None else os.environ.get(SERVER_IMAGE_ENV, oci.DEFAULT_BASE_IMAGE)
    layout = oci.build(args.model, args.image, out, base)
    digest = oci.push(layout, args.image, base) if args.push else layout.digest
    pinned = f"{args.image}@{digest}"  # the contract accepts only an image pinned by its digest
    return {"package": {"image": pinned, "digest": digest},
            "message": f"{'pushed' if args.push else 'built'} {pinned} (layout {out})"}


def _make_sample_data(args: argparse.Namespace) -> None:
    from freshness_trainer import sampledata

    per_class = sampledata.PER_CLASS if args.per_class is None else args.per_class
    manifest = sampledata.make_sample_data(Path(args.out), seed=args.seed, per_class=per_class,
                                           production=args.production)
    folders = manifest["folders"]
    assert isinstance(folders, dict)
    for name, counts in folders.items():
        print(f"{args.out}/{name}: {counts}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="freshness-trainer", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def step(name: str, helptext: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=helptext)
        default = os.environ.get(contract.RESULT_PATH_ENV, contract.TERMINATION_LOG)
        sp.add_argument("--result-path", default=default,
                        help="where to write the result JSON (env FRESHNESS_RESULT_PATH)")
        return sp

    DriftArgs.add_arguments(step("drift", "compare production images with the reference through the serving model"))
    TrainArgs.add_arguments(step("train", "clone a DVC project, run one experiment (dvc exp run) and report its "
                                          "metrics, including learned (0: the model is at chance)"))

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

    PackageArgs.add_arguments(step("package", "build the serving image (OCI layout with the model as a layer)"))

    s = sub.add_parser("make-sample-data", help="write the built-in sample image set (no result document)")
    s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--per-class", type=int, help="labelled images per class (default: sampledata.PER_CLASS, 420)")
    s.add_argument("--production", type=int, default=200, help="images per production folder")
    return p


HANDLERS: dict[str, Handler] = {
    "drift": _drift, "train": _train, "publish": _publish, "evaluate": _evaluate, "package": _package,
}


def _emit(doc: dict[str, Any], path: str) -> bool:
    """Write the result; False when it had to be replaced by an InvalidResult failure."""
    given = True
    try:
        contract.encode(doc)
    except contract.ResultError as exc:  # e.g. a NaN metric: report that rather than write nothing
        print(f"freshness-trainer: the result would be refused: {exc.message}", file=sys.stderr)
        doc = {"step": doc["step"], "ok": False, "reason": "InvalidResult", "message": exc.message[:1024]}
        given = False
    try:
        text = contract.write(doc, path)
    except OSError as exc:
        print(f"freshness-trainer: cannot write the result to {path}: {exc}", file=sys.stderr)
        text = contract.encode(doc)
    print(text)
    return given


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "make-sample-data":
        _make_sample_data(args)
        return 0
    try:
        body = HANDLERS[args.command](args)
        if body is None:  # node 1.. of a multi-node candidate succeeded: node 0's rank 0 writes the result
            print(f"freshness-trainer {args.command}: done; rank 0 (pod index 0) writes the result", file=sys.stderr)
            return 0
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
    if not _emit(doc, args.result_path):
        code = max(code, 1)
    return code


if __name__ == "__main__":
    raise SystemExit(main())

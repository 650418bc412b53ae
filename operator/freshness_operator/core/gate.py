"""Step 4b, the gate: the best candidate must have learned and beat the serving model. Pure."""

from __future__ import annotations

from freshness_operator.core import names, queue
from freshness_operator.core.context import Context
from freshness_operator.core.spec import Promotion
from freshness_operator.core.status import Candidate, CandidateState, Gate, Outcome, RetrainStage

# Metrics round-trip through JSON; an improvement equal to minImprovement must not fail on 1e-17.
EPSILON = 1e-9
# The trainer's verdict on whether a model learned at all (freshness_trainer.scores.learned):
# 1 when every class is sometimes predicted right and accuracy is clearly above chance, else 0.
LEARNED = "learned"
# Per-class accuracies in the trainer's metrics: val_acc_<class>.
PER_CLASS_PREFIX = "val_acc_"


def judge(ctx: Context) -> None:
    """Step 4b: once every candidate has finished, gate the best: packaging next, or an outcome."""
    retrain = ctx.status.retrain
    if retrain is None or retrain.stage is not RetrainStage.TRAINING:
        return
    if any(r.state in queue.IN_FLIGHT for r in retrain.candidates):
        return
    metric = ctx.spec.promotion.metric
    best = best_candidate(retrain.candidates, metric)
    if best is None:
        failed = [r for r in retrain.candidates if r.state is CandidateState.FAILED]
        if len(failed) == len(retrain.candidates):
            reason = failed[0].reason or "TrainingFailed"
            message = f"all {len(failed)} candidate(s) failed; candidate {failed[0].index}: {failed[0].message}"
        else:
            reason, message = "MetricMissing", f"no candidate reported the promotion metric {metric}"
        ctx.emit("TrainingFailed", f"retrain {retrain.sequence}: {reason}: {message}", warning=True)
        ctx.finish(retrain, Outcome.TRAINING_FAILED, reason, message, "failed")
        return
    retrain.best = best.index
    model = ctx.status.model
    retrain.gate = evaluate(best, ctx.spec.promotion, model.metrics if model else None)
    if not retrain.gate.passed:
        ctx.emit("CandidateRejected", f"retrain {retrain.sequence}: {retrain.gate.reason}: {retrain.gate.message}")
        ctx.finish(retrain, Outcome.REJECTED, retrain.gate.reason, retrain.gate.message, "rejected")
        return
    ctx.emit("CandidateAccepted", f"retrain {retrain.sequence}: {retrain.gate.message}")
    retrain.version = names.version(retrain.sequence, best.rev)
    retrain.package_job = names.package_job(ctx.name, retrain.sequence)
    retrain.stage = RetrainStage.PACKAGING


def best_candidate(candidates: list[Candidate], metric: str) -> Candidate | None:
    """The succeeded run with the highest ``metric`` (ties: the lowest index)."""
    scored = [r for r in candidates if r.state is CandidateState.SUCCEEDED and metric in (r.metrics or {})]
    if not scored:
        return None
    return max(scored, key=lambda r: ((r.metrics or {})[metric], -r.index))


def evaluate(best: Candidate, promotion: Promotion, serving_metrics: dict[str, float] | None) -> Gate:
    """Compare ``best`` with the serving model: the baseline the trainer measured on the same
    validation data when it reported one, else the metrics recorded when the serving model rolled out."""
    metric = promotion.metric
    value = (best.metrics or {})[metric]
    baseline = (best.baseline_metrics or {}).get(metric)
    if baseline is None:
        baseline = (serving_metrics or {}).get(metric)
    gate = Gate(
        metric=metric,
        passed=False,
        reason="",
        message="",
        value=value,
        baseline=baseline,
        min_improvement=promotion.min_improvement,
        min_value=promotion.min_value,
    )
    metrics = best.metrics or {}
    if metrics.get(LEARNED, 1.0) < 0.5:
        gate.reason = "DidNotLearn"
        gate.message = did_not_learn(best.index, metrics, metric, value)
    elif value + EPSILON < promotion.min_value:
        gate.reason = "BelowMinValue"
        gate.message = f"{metric} {value:.4f} is below minValue {promotion.min_value:.4f}"
    elif baseline is not None and value - baseline + EPSILON < promotion.min_improvement:
        gate.reason = "NotBetterThanServing"
        gate.message = (
            f"{metric} {value:.4f} vs serving {baseline:.4f}: "
            f"needs an improvement of at least {promotion.min_improvement:.4f}"
        )
    else:
        gate.passed = True
        gate.reason = "Promoted"
        against = f" vs serving {baseline:.4f}" if baseline is not None else " (no serving baseline)"
        gate.message = f"candidate {best.index}: {metric} {value:.4f}{against}"
    return gate


def did_not_learn(index: int, metrics: dict[str, float], metric: str, value: float) -> str:
    """Why the trainer judged candidate ``index`` at chance: its never-right classes and the chance level."""
    per_class = {k[len(PER_CLASS_PREFIX) :]: v for k, v in sorted(metrics.items()) if k.startswith(PER_CLASS_PREFIX)}
    never = [cls for cls, v in per_class.items() if v <= EPSILON]
    why = [f"{metric} {value:.4f}"]
    if per_class:
        why.append(f"chance {1 / len(per_class):.4f} for {len(per_class)} classes")
    if never:
        why.append(f"never right on class {', '.join(never)}")
    return f"candidate {index} did not learn ({LEARNED}=0): " + "; ".join(why)

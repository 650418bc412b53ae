"""The promotion gate: the best candidate must beat the serving model. Pure."""

from __future__ import annotations

from freshness_operator.core.spec import Promotion
from freshness_operator.core.status import Gate, RunState, RunStatus

# Metrics round-trip through JSON; an improvement equal to minImprovement must not fail on 1e-17.
EPSILON = 1e-9


def best_run(runs: list[RunStatus], metric: str) -> RunStatus | None:
    """The succeeded run with the highest ``metric`` (ties: the lowest index)."""
    scored = [r for r in runs if r.state is RunState.SUCCEEDED and metric in (r.metrics or {})]
    if not scored:
        return None
    return max(scored, key=lambda r: ((r.metrics or {})[metric], -r.index))


def evaluate(best: RunStatus, promotion: Promotion, serving_metrics: dict[str, float] | None) -> Gate:
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
    if value + EPSILON < promotion.min_value:
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

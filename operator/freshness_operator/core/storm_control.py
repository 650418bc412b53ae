"""Step 5, storm control: a confirmed drift verdict starts a retrain only when nothing holds it. Pure.

What holds it, in this order: too few drifted checks in a row, retraining disabled, the cooldown,
the per-day limit (these end at a known time: ``decide`` asks to be woken then), a check in flight
or a verdict about a model that no longer serves, a setup problem, ``spec.paused``. The reason is
the ``Suppressed`` condition's, with a ``RetrainSuppressed`` Event when it changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freshness_operator.core import drift_check, serving, training
from freshness_operator.core.context import Context
from freshness_operator.core.serde import format_time

DAY = timedelta(days=1)
Hold = tuple[str, str, datetime | None]  # reason, message, when it ends (None: when something else changes)


def start_retrain_if_allowed(ctx: Context) -> None:
    """Step 5: a confirmed drift verdict starts a retrain unless something holds it (see above)."""
    st = ctx.status
    d, retrain = st.drift, st.retrain
    if retrain is not None and retrain.in_flight:
        ctx.condition("Suppressed", "False", "RetrainInFlight", f"retrain {retrain.sequence} is in flight")
        return
    acted_on = retrain is not None and retrain.trigger_check >= d.verdict_check
    if not d.detected or acted_on:
        ctx.condition("Suppressed", "False", "NothingToSuppress", "no drift verdict waits for a retrain")
        return
    st.retrains.recent = [t for t in st.retrains.recent if t > ctx.now - DAY]
    blocked = _hold(ctx)
    if blocked is not None:
        reason, message, retry_at = blocked
        if ctx.condition("Suppressed", "True", reason, message):
            ctx.emit("RetrainSuppressed", f"{reason}: {message}")
        if retry_at is not None:
            ctx.wake_at(retry_at)
        return
    training.start(ctx)


def _hold(ctx: Context) -> Hold | None:
    st, spec, now = ctx.status, ctx.spec, ctx.now
    d, last = st.drift, st.retrains.last_started
    if d.consecutive < spec.drift.consecutive:
        need = spec.drift.consecutive
        return "ConsecutiveNotReached", f"drift in {d.consecutive} of {need} checks in a row needed", None
    if spec.policy.max_retrains_per_day == 0:
        return "RetrainingDisabled", "policy.maxRetrainsPerDay is 0: drift is reported, never retrained", None
    if last is not None and now < last + timedelta(seconds=spec.policy.cooldown_seconds):
        until = last + timedelta(seconds=spec.policy.cooldown_seconds)
        return (
            "Cooldown",
            f"last retrain started {format_time(last)}; cooldown ends {format_time(until)}",
            until,
        )
    if len(st.retrains.recent) >= spec.policy.max_retrains_per_day:
        until = min(st.retrains.recent) + DAY
        count = len(st.retrains.recent)
        limit = spec.policy.max_retrains_per_day
        return (
            "MaxRetrainsPerDay",
            f"{count} retrains in 24h (max {limit}); next at {format_time(until)}",
            until,
        )
    # Checked after the policy's limits: those say for how long; these only say "not just now".
    one_loop = _one_loop_at_a_time(ctx)
    if one_loop is not None:
        return one_loop
    blocked = serving.problem(ctx)
    if blocked is not None:
        return (*blocked, None)
    if not ctx.may_act:
        return "Paused", "spec.paused is true", None
    return None


def _one_loop_at_a_time(ctx: Context) -> Hold | None:
    """A check in flight or a verdict about a model that no longer serves: not a reason to retrain now."""
    st = ctx.status
    d, model = st.drift, st.model
    if d.job is not None:
        return "CheckInFlight", f"drift check {d.sequence} is running; its verdict decides whether to retrain", None
    if drift_check.stale_model(ctx, d.model) and d.model is not None and model is not None:
        return (
            "StaleVerdict",
            f"check {d.verdict_check} measured {d.model.version} but {model.version} serves now; "
            "the next check of the serving model decides",
            None,
        )
    return None

"""Phase and summary conditions, derived from the status the earlier steps produced. Pure."""

from __future__ import annotations

from freshness_contract.trigger import DEFAULT_ACCURACY_DROP

from freshness_operator.core import drift, progress, queue, setup
from freshness_operator.core.conditions import stamp
from freshness_operator.core.context import Context
from freshness_operator.core.rollout import opt_in_problem
from freshness_operator.core.status import (
    DEGRADED_OUTCOMES,
    FAILED_OUTCOMES,
    Outcome,
    Phase,
    Stage,
    Status,
    StepError,
)


def phase_of(status: Status, paused: bool) -> Phase:
    """The phase is a function of the status, so it survives restarts without being remembered."""
    if paused:
        return Phase.PAUSED
    d, c = status.drift, status.candidate
    if c is not None and c.in_flight:
        return Phase(c.stage.value)
    if c is not None and c.outcome in FAILED_OUTCOMES | DEGRADED_OUTCOMES:
        cleared = d.verdict_check > c.after_check and d.detected is False
        if not cleared:
            return Phase.FAILED if c.outcome in FAILED_OUTCOMES else Phase.DEGRADED
    if d.verdict_check == 0:
        return Phase.PENDING
    acted_on = c is not None and c.trigger_check >= d.verdict_check
    return Phase.DRIFT_DETECTED if d.detected and not acted_on else Phase.MONITORING


def summarize(ctx: Context) -> None:
    """Step 8: phase (with Paused/Resumed events), Drifted, Training, RolledOut and Ready."""
    st = ctx.status
    phase = phase_of(st, ctx.spec.paused)
    if phase is not st.phase and Phase.PAUSED in (phase, st.phase) and st.observed_generation:
        if phase is Phase.PAUSED:
            ctx.emit("Paused", "spec.paused is true: no Jobs are started and the Deployment is not patched")
        else:
            ctx.emit("Resumed", f"spec.paused is false: {phase.value}")
    st.phase = phase
    st.observed_generation = ctx.generation
    _drifted(ctx)
    _distribution(ctx)
    _training(ctx)
    _rolled_out(ctx)
    progress.step_progressing(ctx)
    _ready(ctx, phase)
    stamp(st.conditions, ctx.generation)
    st.step = running_step(st)


def running_step(status: Status) -> str | None:
    """What the STEP column shows: the step running now, or None."""
    d, c = status.drift, status.candidate
    if c is not None and c.stage is Stage.TRAINING:
        done = sum(r.state.value in ("Succeeded", "Failed") for r in c.runs)
        queued = sum(r.state.value == "Queued" for r in c.runs)
        return f"train {done}/{len(c.runs)}" + (f" ({queued} queued)" if queued else "")
    if c is not None and c.in_flight:
        return c.stage.value.lower()
    if d.job is not None:
        return f"check {d.sequence}"
    return None


def _drifted(ctx: Context) -> None:
    d = ctx.status.drift
    if d.discarded is not None:
        ctx.condition("Drifted", "Unknown", d.discarded.reason, d.discarded.message)
    elif d.verdict_check == 0:
        ctx.condition("Drifted", "Unknown", "NotChecked", "no drift check has finished yet")
    elif d.detected:
        c = ctx.status.candidate
        acted = f"; retrain {c.retrain} started for it" if c is not None and c.trigger_check >= d.verdict_check else ""
        ctx.condition("Drifted", "True", "DriftDetected", f"check {d.verdict_check}: share {d.share:.2f}{acted}")
    else:
        ctx.condition("Drifted", "False", "NoDrift", f"check {d.verdict_check}: share {d.share:.2f}")


def _distribution(ctx: Context) -> None:
    """DistributionDrift: the distribution test of the last verdict, whether or not it starts a retrain."""
    d, spec = ctx.status.drift, ctx.spec.drift
    if d.discarded is not None or d.verdict_check == 0 or d.distribution_detected is None:
        ctx.condition("DistributionDrift", "Unknown", "NotChecked", "no verdict about the serving model yet")
        return
    where = f"check {d.verdict_check}: score {d.score or 0:.3f} against {d.threshold or 0:.3f}"
    if not d.distribution_detected:
        ctx.condition("DistributionDrift", "False", "InputsUnchanged", where)
        return
    allowed = spec.accuracy_drop if spec.accuracy_drop is not None else DEFAULT_ACCURACY_DROP
    acted = "it starts a retrain" if d.detected and "distribution" in (d.reasons or []) else (
        f"trigger {d.trigger or spec.trigger} does not retrain for it alone: {drift.impact_text(d, allowed)}")
    ctx.condition("DistributionDrift", "True", "InputsChanged", f"{where}; {acted}")


def _training(ctx: Context) -> None:
    c = ctx.status.candidate
    if c is None:
        ctx.condition("Training", "False", "NoRetrain", "no retrain has started")
    elif c.stage is Stage.TRAINING:
        done = sum(r.state.value in ("Succeeded", "Failed") for r in c.runs)
        message = f"retrain {c.retrain}: {done} of {len(c.runs)} finished"
        waiting = queue.waiting(c, ctx.spec.training.queue)
        if waiting:
            ctx.condition("Training", "True", "CandidatesQueued", f"{message}; {waiting}")
        else:
            ctx.condition("Training", "True", "Training", message)
    elif c.in_flight:
        ctx.condition("Training", "False", "TrainingFinished", f"retrain {c.retrain}: {c.stage.value}")
    else:
        assert c.outcome is not None
        ctx.condition("Training", "False", c.outcome.value, f"retrain {c.retrain}: {c.message or ''}")


def _rolled_out(ctx: Context) -> None:
    c = ctx.status.candidate
    if c is not None and c.stage is Stage.ROLLING_OUT:
        ctx.condition("RolledOut", "Unknown", "RollingOut", f"rolling out {c.target_image}")
    elif c is not None and c.outcome is Outcome.ROLLED_OUT:
        ctx.condition("RolledOut", "True", "RolledOut", c.message or "")
    elif c is not None and c.outcome in DEGRADED_OUTCOMES:
        assert c.outcome is not None
        ctx.condition("RolledOut", "False", c.outcome.value, f"{c.reason}: {c.message}")
    elif ctx.status.condition("RolledOut") is None:
        ctx.condition("RolledOut", "Unknown", "NoRollout", "the operator has not rolled out a model yet")


def _ready(ctx: Context, phase: Phase) -> None:
    st = ctx.status
    c, d = st.candidate, st.drift
    stuck = st.condition("StepProgressing")
    if phase is Phase.PAUSED:
        status, reason, message = "False", "Paused", "spec.paused is true"
    elif phase in (Phase.FAILED, Phase.DEGRADED) and c is not None:
        status, reason, message = "False", c.reason or phase.value, c.message or ""
    elif (problem := setup.problem(ctx)) is not None:
        status, (reason, message) = "False", problem
    elif (not_opted_in := opt_in_problem(ctx)) is not None:
        status, reason, message = "False", *not_opted_in
    elif stuck is not None and stuck.status == "False":
        status, reason, message = "False", stuck.reason, stuck.message
    elif d.last_error is not None:
        status, reason, message = "False", d.last_error.reason, f"drift check failed: {d.last_error.message}"
    elif phase is Phase.PENDING:
        status, reason, message = "False", "FirstCheckPending", "waiting for the first drift check"
    else:
        status, reason, message = "True", phase.value, f"phase {phase.value}"
    if ctx.condition("Ready", status, reason, message) and status == "False":
        st.last_error = StepError(reason, message, ctx.now)

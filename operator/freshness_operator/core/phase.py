"""Step 8, phase: the phase and the summary conditions, derived from the status the earlier steps produced. Pure."""

from __future__ import annotations

from freshness_contract.trigger import DEFAULT_ACCURACY_DROP

from freshness_operator.core import drift_check, progress, queue, serving
from freshness_operator.core.conditions import stamp
from freshness_operator.core.context import Context
from freshness_operator.core.rollout import opt_in_problem
from freshness_operator.core.status import (
    DEGRADED_OUTCOMES,
    FAILED_OUTCOMES,
    Outcome,
    Phase,
    RetrainStage,
    Status,
    StepError,
)


def phase_of(status: Status, paused: bool) -> Phase:
    """The phase is a function of the status, so it survives restarts without being remembered."""
    if paused:
        return Phase.PAUSED
    d, retrain = status.drift, status.retrain
    if retrain is not None and retrain.in_flight:
        return Phase(retrain.stage.value)
    if retrain is not None and retrain.outcome in FAILED_OUTCOMES | DEGRADED_OUTCOMES:
        cleared = d.verdict_check > retrain.after_check and d.detected is False
        if not cleared:
            return Phase.FAILED if retrain.outcome in FAILED_OUTCOMES else Phase.DEGRADED
    if d.verdict_check == 0:
        return Phase.PENDING
    acted_on = retrain is not None and retrain.trigger_check >= d.verdict_check
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
    d, retrain = status.drift, status.retrain
    if retrain is not None and retrain.stage is RetrainStage.TRAINING:
        done = sum(r.state.value in ("Succeeded", "Failed") for r in retrain.candidates)
        queued = sum(r.state.value == "Queued" for r in retrain.candidates)
        return f"train {done}/{len(retrain.candidates)}" + (f" ({queued} queued)" if queued else "")
    if retrain is not None and retrain.in_flight:
        return retrain.stage.value.lower()
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
        retrain = ctx.status.retrain
        started = retrain is not None and retrain.trigger_check >= d.verdict_check
        acted = f"; retrain {retrain.sequence} started for it" if started and retrain is not None else ""
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
    acted = (
        "it starts a retrain"
        if d.detected and "distribution" in (d.reasons or [])
        else (
            f"trigger {d.trigger or spec.trigger} does not retrain for it alone: {drift_check.impact_text(d, allowed)}"
        )
    )
    ctx.condition("DistributionDrift", "True", "InputsChanged", f"{where}; {acted}")


def _training(ctx: Context) -> None:
    retrain = ctx.status.retrain
    if retrain is None:
        ctx.condition("Training", "False", "NoRetrain", "no retrain has started")
    elif retrain.stage is RetrainStage.TRAINING:
        done = sum(r.state.value in ("Succeeded", "Failed") for r in retrain.candidates)
        message = f"retrain {retrain.sequence}: {done} of {len(retrain.candidates)} finished"
        waiting = queue.waiting(retrain, ctx.spec.training.queue)
        if waiting:
            ctx.condition("Training", "True", "CandidatesQueued", f"{message}; {waiting}")
        else:
            ctx.condition("Training", "True", "Training", message)
    elif retrain.in_flight:
        ctx.condition("Training", "False", "TrainingFinished", f"retrain {retrain.sequence}: {retrain.stage.value}")
    else:
        assert retrain.outcome is not None
        message = f"retrain {retrain.sequence}: {retrain.message or ''}"
        ctx.condition("Training", "False", retrain.outcome.value, message)


def _rolled_out(ctx: Context) -> None:
    retrain = ctx.status.retrain
    if retrain is not None and retrain.stage is RetrainStage.ROLLING_OUT:
        ctx.condition("RolledOut", "Unknown", "RollingOut", f"rolling out {retrain.target_image}")
    elif retrain is not None and retrain.outcome is Outcome.ROLLED_OUT:
        ctx.condition("RolledOut", "True", "RolledOut", retrain.message or "")
    elif retrain is not None and retrain.outcome in DEGRADED_OUTCOMES:
        assert retrain.outcome is not None
        ctx.condition("RolledOut", "False", retrain.outcome.value, f"{retrain.reason}: {retrain.message}")
    elif ctx.status.condition("RolledOut") is None:
        ctx.condition("RolledOut", "Unknown", "NoRollout", "the operator has not rolled out a model yet")


def _ready(ctx: Context, phase: Phase) -> None:
    st = ctx.status
    retrain, d = st.retrain, st.drift
    stuck = st.condition("StepProgressing")
    if phase is Phase.PAUSED:
        status, reason, message = "False", "Paused", "spec.paused is true"
    elif phase in (Phase.FAILED, Phase.DEGRADED) and retrain is not None:
        status, reason, message = "False", retrain.reason or phase.value, retrain.message or ""
    elif (problem := serving.problem(ctx)) is not None:
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

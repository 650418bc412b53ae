"""Actions the API refused for good become failed steps with the API's reason. Pure.

The wiring executes the actions of a decision; when the API refuses one in a way retrying
cannot fix (400/403/404/422, an admission webhook's denial), it decides again with the refusal
in ``observed.refused``. This step runs after the steps that ask for actions: it takes the
refused action out and fails the step that asked for it, so the status, the conditions and an
Event name the object and the field, and the action is not asked for again.
"""

from __future__ import annotations

from freshness_operator.core import actions as act
from freshness_operator.core.context import Context
from freshness_operator.core.observed import Refusal
from freshness_operator.core.status import CandidateState, Outcome, StepError


def apply(ctx: Context) -> None:
    """Step 7a: fail the drift check, training run, packaging or rollout whose action was refused."""
    r = ctx.observed.refused
    if r is None:
        return
    kept = [a for a in ctx.actions if not _is(a, r)]
    if len(kept) == len(ctx.actions):
        return  # not asked for any more: nothing to fail
    ctx.actions[:] = kept
    if r.action == "CreateDriftJob":
        _drift(ctx, r)
    else:
        _retrain(ctx, r)


def _is(action: act.Action, r: Refusal) -> bool:
    if type(action).__name__ != r.action:
        return False
    if isinstance(action, act.PatchImage):
        return action.image == r.target
    return getattr(action, "name", None) == r.target


def _drift(ctx: Context, r: Refusal) -> None:
    d = ctx.status.drift
    d.job, d.job_model = None, None
    d.last_error = StepError("JobRefused", r.describe(), ctx.now)
    d.summary = "failing: JobRefused"
    ctx.count(act.Metric.DRIFT_CHECKS, "failed")
    ctx.emit("DriftCheckFailed", f"{r.target}: JobRefused: {r.describe()}", warning=True)
    if d.next_check_time is not None:
        ctx.wake_at(d.next_check_time)  # the next check comes when due, not in a tight loop


def _retrain(ctx: Context, r: Refusal) -> None:
    retrain = ctx.status.retrain
    if retrain is None:
        return
    message = r.describe()
    ctx.recheck()  # the steps after the failed one (the gate, an outcome) come in the next decision
    run = next((run for run in retrain.candidates if run.job == r.target), None)
    if r.action == "CreateTrainJob" and run is not None:
        run.state, run.reason, run.message = CandidateState.FAILED, "JobRefused", message
        run.finished_at = ctx.now
        ctx.emit("CandidateFailed", f"candidate {run.index} ({run.job}): JobRefused: {message}", warning=True)
    elif r.action == "CreatePackageJob":
        ctx.emit("PackagingFailed", f"retrain {retrain.sequence}: JobRefused: {message}", warning=True)
        ctx.finish(retrain, Outcome.PACKAGING_FAILED, "JobRefused", message, "failed")
    elif retrain.outcome is Outcome.ROLLED_BACK:  # the rollback's patch: the failed image still serves
        retrain.outcome, retrain.reason = Outcome.ROLLOUT_FAILED, "RollbackRefused"
        retrain.message = f"restoring {retrain.previous_image} was refused: {message}"
        ctx.emit("RollbackFailed", retrain.message, warning=True)
    else:
        retrain.reason = "PatchRefused"
        ctx.count(act.Metric.ROLLOUTS, "failed")
        image = retrain.target_image
        ctx.emit("RolloutFailed", f"retrain {retrain.sequence}: PatchRefused: {image}: {message}", warning=True)
        ctx.finish(retrain, Outcome.ROLLOUT_FAILED, "PatchRefused", f"{image} was refused: {message}", "failed")

"""Drift checks: record the verdict of the check in flight; start the next one when due. Pure.

A verdict carries up to three signals (distribution, estimated accuracy, novelty);
``spec.drift.trigger`` chooses which call for a retrain (``freshness_contract.trigger``).
``status.drift.detected`` is that decision, so storm control, the phase and the ``Drifted``
condition follow it; the distribution test alone is kept in ``distributionDetected`` and reported
by the ``DistributionDrift`` condition and Event.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freshness_contract import trigger
from freshness_contract.results import Accuracy, DriftResult

from freshness_operator.core import names, serving
from freshness_operator.core.actions import CreateDriftJob, Metric
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobState, StepOutcome
from freshness_operator.core.spec import Drift
from freshness_operator.core.status import DriftStatus, EstimateStatus, ModelRef, NoveltyStatus, StepError


def next_check(drift: Drift, after: datetime) -> datetime:
    """When the check after one started at ``after`` is due (interval or cron)."""
    if drift.schedule is not None:
        return drift.schedule.next_after(after)
    return after + timedelta(seconds=drift.interval_seconds or 0)


def finish(ctx: Context) -> None:
    """Step 3: when the check in flight has finished, record its verdict or its failure."""
    d = ctx.status.drift
    if d.job is None:
        return
    job = ctx.observed.job(d.job)
    if job is not None and job.state is JobState.RUNNING:
        return
    name, d.job = d.job, None
    measured, d.job_model = d.job_model, None
    if job is None:
        outcome = StepOutcome(False, "JobNotFound", f"drift Job {name} disappeared before it finished")
    else:
        outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
        ctx.duration(JobKind.DRIFT, job.started_at, job.finished_at)
    if outcome.ok and not isinstance(outcome.result, DriftResult):
        # The contract refuses this already; a verdict is never made up from a missing section.
        outcome = StepOutcome(False, "MalformedResult", "result field drift: required when ok is true")
    if outcome.ok and isinstance(outcome.result, DriftResult) and stale_model(ctx, measured):
        _discard(ctx, outcome.result, measured)
        return
    if outcome.ok and isinstance(outcome.result, DriftResult):
        _record_verdict(ctx, outcome.result, (job.finished_at if job else None) or ctx.now)
        d.model = measured
        return
    d.last_error = StepError(outcome.reason, outcome.message, ctx.now)
    d.summary = f"failing: {outcome.reason}"  # the column must not show the last good verdict
    ctx.count(Metric.DRIFT_CHECKS, "failed")
    ctx.emit("DriftCheckFailed", f"{name}: {outcome.reason}: {outcome.message}", warning=True)


def stale_model(ctx: Context, measured: ModelRef | None) -> bool:
    """True when ``measured`` is known and is not the model serving now (a rollout or an outside change)."""
    serving = ctx.status.model
    if measured is None or measured.image is None or serving is None or serving.image is None:
        return False  # a check adopted from the cluster, or nothing served yet: nothing to compare
    return measured.image != serving.image


def _discard(ctx: Context, r: DriftResult, measured: ModelRef | None) -> None:
    """A verdict about a model that no longer serves says nothing about the one that does."""
    d, serving = ctx.status.drift, ctx.status.model
    assert measured is not None and serving is not None
    message = (
        f"check {d.sequence} measured {measured.version} ({measured.image}) but {serving.version} "
        f"({serving.image}) serves now; its verdict (detected {r.detected}, "
        f"score {r.score:.3f}) is not acted on"
    )
    d.discarded = StepError("StaleVerdict", message, ctx.now)
    d.summary = "discarded: stale model"
    d.last_error = None
    ctx.count(Metric.DRIFT_CHECKS, "succeeded")
    ctx.emit("VerdictDiscarded", message)


def _accuracy(acc: Accuracy | None) -> dict[str, float] | None:
    if acc is None:
        return None
    shown = {"current": acc.current, "reference": acc.reference, "drop": acc.drop}
    return {k: v for k, v in shown.items() if v is not None} or None


def decide_trigger(spec: Drift, r: DriftResult) -> trigger.Decision:
    """Whether this verdict calls for a retrain under ``spec.trigger``. Pure.

    Labelled samples (``r.accuracy``) override the estimate with the measured accuracy.
    """
    e, acc = r.estimated_accuracy, r.accuracy
    measured = acc.current if acc is not None else None
    reference = acc.reference if measured is not None and acc is not None else (e.reference if e else None)
    allowed = spec.accuracy_drop if spec.accuracy_drop is not None else trigger.DEFAULT_ACCURACY_DROP
    return trigger.decide(
        spec.trigger,
        distribution_detected=r.detected,
        accuracy_drop=allowed,
        reference_accuracy=reference,
        estimated_accuracy=e.value if e is not None else None,
        measured_accuracy=measured,
        novelty_detected=r.novelty is not None and r.novelty.detected,
    )


def _signals(r: DriftResult) -> tuple[EstimateStatus | None, NoveltyStatus | None]:
    e, n = r.estimated_accuracy, r.novelty
    estimate = None
    if e is not None:
        drop = None if e.reference is None else round(e.reference - e.value, 6)
        estimate = EstimateStatus(e.value, e.low, e.high, e.reference, drop)
    novelty = NoveltyStatus(n.share, n.reference_rate, n.p_value, n.detected) if n is not None else None
    return estimate, novelty


def impact_text(d: DriftStatus, allowed: float) -> str:
    """The label-free signals of the last verdict in one phrase (Events, conditions). Pure."""
    parts = []
    e, n = d.estimated_accuracy, d.novelty
    if d.accuracy is not None and "current" in d.accuracy:
        parts.append(f"labelled accuracy {d.accuracy['current']:.3f}")
    if e is not None:
        against = f" vs {e.reference:.3f} held out" if e.reference is not None else ""
        parts.append(f"estimated accuracy {e.value:.3f} [{e.low:.3f}, {e.high:.3f}]{against}")
    if parts:
        parts[-1] += f" (allowed drop {allowed:.3f})"
    if n is not None:
        parts.append(f"novelty {n.share:.3f} (reference {n.reference_rate:.3f}, p={n.p_value:.3g})")
    return "; ".join(parts) or "no accuracy or novelty signal"


def _record_verdict(ctx: Context, r: DriftResult, finished: datetime) -> None:
    d, spec = ctx.status.drift, ctx.spec.drift
    previously = d.detected
    decision = decide_trigger(spec, r)
    d.detected = decision.retrain
    d.distribution_detected = r.detected
    d.estimated_accuracy, d.novelty = _signals(r)
    d.reference_kind = r.reference_kind
    d.trigger = spec.trigger
    d.reasons = list(decision.reasons) or None
    d.share = r.share
    d.score = r.score
    d.threshold = spec.threshold if r.threshold is None else r.threshold
    d.method = r.method
    d.samples = r.samples
    d.reference_samples = r.reference_samples
    d.top_features = list(r.top_features) or None
    d.report = r.report
    d.accuracy = _accuracy(r.accuracy)
    d.last_check_time = finished
    d.verdict_check = d.sequence
    d.consecutive = d.consecutive + 1 if d.detected else 0
    d.last_error = None
    d.discarded = None
    changed = " drifted" if d.detected else " changed" if r.detected else ""
    d.summary = f"{d.score:.2f}/{d.threshold:.2f}{changed}"
    ctx.count(Metric.DRIFT_CHECKS, "succeeded")
    verdict = f"share {d.share:.2f}, score {d.score:.3f}, threshold {d.threshold:.3f}, {d.samples} samples"
    allowed = spec.accuracy_drop if spec.accuracy_drop is not None else trigger.DEFAULT_ACCURACY_DROP
    signals = impact_text(d, allowed)
    if d.detected:
        top = f"; top features: {', '.join(d.top_features)}" if d.top_features else ""
        ctx.emit(
            "DriftDetected",
            f"check {d.sequence}: {verdict}; {d.consecutive} of {spec.consecutive} "
            f"drifted checks in a row{top}; trigger {spec.trigger}: {', '.join(decision.reasons)}; {signals}",
            warning=True,
        )
    elif r.detected:
        ctx.emit(
            "DistributionDrift",
            f"check {d.sequence}: the inputs changed ({verdict}) but trigger {spec.trigger} starts no retrain: "
            f"{signals}",
        )
    elif previously is not False:
        ctx.emit("NoDrift", f"check {d.sequence}: {verdict}; {signals}")


def start_if_due(ctx: Context) -> None:
    """Step 6: start the next check when due, unless one is running or a retrain is in flight."""
    d = ctx.status.drift
    retrain = ctx.status.retrain
    requested = ctx.observed.check_now
    asked = requested is not None and requested != d.check_requested
    due = next_check(ctx.spec.drift, d.started_at) if d.started_at is not None and not asked else ctx.now
    d.next_check_time = due
    if d.job is not None or (retrain is not None and retrain.in_flight) or not ctx.may_act:
        return
    if serving.problem(ctx) is not None:
        return  # ServingFound and Ready say why; the Deployment's watch event brings the next look
    if ctx.now < due:
        ctx.wake_at(due)
        return
    number = d.sequence + 1
    name = names.drift_job(ctx.name, number)
    model = ctx.status.model.uri if ctx.status.model else None
    ctx.actions.append(CreateDriftJob(name, number, model or ctx.spec.serving.model_uri))
    d.sequence, d.job, d.started_at = number, name, ctx.now
    model_now = ctx.status.model
    d.job_model = ModelRef(model_now.version, model_now.image) if model_now is not None else None
    if asked:
        d.check_requested = requested
        ctx.emit("CheckRequested", f"{names.CHECK_NOW}={requested}: check {number} started now")
    d.next_check_time = next_check(ctx.spec.drift, ctx.now)

"""Retrains: storm control, training candidates, the gate and packaging. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from freshness_contract.results import PackageResult, TrainResult

from freshness_operator.core import drift, gate, image, names, queue, rollout, setup
from freshness_operator.core.actions import CreatePackageJob, CreateTrainJob
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobObservation, JobState, StepOutcome
from freshness_operator.core.serde import format_time
from freshness_operator.core.status import CandidateStatus, Outcome, RunState, RunStatus, Stage

DAY = timedelta(days=1)


def advance(ctx: Context) -> None:
    """Step 4: move the retrain in flight as far as the observations allow."""
    c = ctx.status.candidate
    if c is None or not c.in_flight:
        return
    if c.stage is Stage.TRAINING:
        _advance_training(ctx, c)
    if c.stage is Stage.PACKAGING:
        _advance_packaging(ctx, c)
    if c.stage is Stage.ROLLING_OUT:
        rollout.advance(ctx, c)


def start_if_needed(ctx: Context) -> None:
    """Step 5: a confirmed drift verdict starts a retrain unless storm control suppresses it."""
    st = ctx.status
    d, c = st.drift, st.candidate
    if c is not None and c.in_flight:
        ctx.condition("Suppressed", "False", "RetrainInFlight", f"retrain {c.retrain} is in flight")
        return
    acted_on = c is not None and c.trigger_check >= d.verdict_check
    if not d.detected or acted_on:
        ctx.condition("Suppressed", "False", "NothingToSuppress", "no drift verdict waits for a retrain")
        return
    st.retrains.recent = [t for t in st.retrains.recent if t > ctx.now - DAY]
    blocked = _storm_control(ctx)
    if blocked is not None:
        reason, message, retry_at = blocked
        if ctx.condition("Suppressed", "True", reason, message):
            ctx.emit("RetrainSuppressed", f"{reason}: {message}")
        if retry_at is not None:
            ctx.wake_at(retry_at)
        return
    _start(ctx)


def _storm_control(ctx: Context) -> tuple[str, str, datetime | None] | None:
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
    blocked = setup.problem(ctx)
    if blocked is not None:
        return (*blocked, None)
    if not ctx.may_act:
        return "Paused", "spec.paused is true", None
    return None


def _one_loop_at_a_time(ctx: Context) -> tuple[str, str, datetime | None] | None:
    """A check in flight or a verdict about a model that no longer serves: not a reason to retrain now."""
    st = ctx.status
    d, model = st.drift, st.model
    if d.job is not None:
        return "CheckInFlight", f"drift check {d.sequence} is running; its verdict decides whether to retrain", None
    if drift.stale_model(ctx, d.model) and d.model is not None and model is not None:
        return (
            "StaleVerdict",
            f"check {d.verdict_check} measured {d.model.version} but {model.version} serves now; "
            "the next check of the serving model decides",
            None,
        )
    return None


def _start(ctx: Context) -> None:
    st, spec = ctx.status, ctx.spec
    d = st.drift
    number = max(st.retrains.count, st.candidate.retrain if st.candidate else 0) + 1
    runs = [
        RunStatus(index=i, job=names.train_job(ctx.name, number, i), overrides={**spec.training.params, **cand})
        for i, cand in enumerate(spec.training.candidates)
    ]
    trigger = f"drift check {d.verdict_check}: share {d.share or 0:.2f}, score {d.score or 0:.3f}"
    c = CandidateStatus(retrain=number, started_at=ctx.now, trigger=trigger, trigger_check=d.verdict_check, runs=runs)
    st.candidate = c
    st.retrains.last_started = ctx.now
    st.retrains.recent.append(ctx.now)
    st.retrains.count = number
    d.consecutive = 0
    ctx.condition("Suppressed", "False", "RetrainStarted", f"retrain {number} started")
    ctx.emit(
        "TrainingStarted",
        f"retrain {number}: {len(runs)} candidate(s), maxParallel {spec.training.max_parallel}; {trigger}",
    )
    _advance_training(ctx, c)


def _advance_training(ctx: Context, c: CandidateStatus) -> None:
    for run in c.runs:
        if run.state in (RunState.SUCCEEDED, RunState.FAILED):
            continue
        job = ctx.observed.job(run.job)
        if job is None:
            if run.state in queue.HAS_JOB:
                _run_failed(ctx, run, "JobNotFound", f"training Job {run.job} disappeared before it finished")
        elif job.state is JobState.RUNNING:
            queue.track(ctx, run, job)  # Queued while Kueue holds it suspended, else Running
        else:
            _record_run(ctx, run, job)
    _start_pending_runs(ctx, c)
    if any(r.state in queue.IN_FLIGHT for r in c.runs):
        return
    _judge(ctx, c)


def _start_pending_runs(ctx: Context, c: CandidateStatus) -> None:
    if not ctx.may_act:
        return
    running = queue.occupying(c)
    baseline = (ctx.status.model.uri if ctx.status.model else None) or ctx.spec.serving.model_uri
    for run in c.runs:
        if running >= ctx.spec.training.max_parallel:
            break
        if run.state is RunState.PENDING:
            ctx.actions.append(CreateTrainJob(run.job, c.retrain, run.index, run.overrides, baseline))
            run.state, run.started_at = RunState.RUNNING, ctx.now
            running += 1


def _record_run(ctx: Context, run: RunStatus, job: JobObservation) -> None:
    outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
    run.finished_at = job.finished_at or ctx.now
    run.started_at = run.started_at or job.started_at
    ctx.duration("train", job.started_at, job.finished_at)
    result = outcome.result
    if outcome.ok and not isinstance(result, TrainResult):
        outcome = StepOutcome(False, "MalformedResult", "result field train: required when ok is true")
    elif outcome.ok and isinstance(result, TrainResult) and not result.model:
        outcome = StepOutcome(False, "MissingModel", "the train result names no model file (train.model)")
    if not outcome.ok or not isinstance(result, TrainResult):
        _run_failed(ctx, run, outcome.reason, outcome.message)
        return
    run.state = RunState.SUCCEEDED
    run.metrics = dict(result.metrics)
    run.baseline_metrics = dict(result.baseline_metrics or {}) or None
    run.experiment, run.rev, run.model = result.experiment, result.rev, result.model
    metric = ctx.spec.promotion.metric
    value = run.metrics.get(metric)
    shown = f"{metric}={value:.4f}" if value is not None else f"no {metric} reported"
    ctx.emit("CandidateTrained", f"candidate {run.index} ({run.job}): {shown}")


def _run_failed(ctx: Context, run: RunStatus, reason: str, message: str) -> None:
    run.state, run.reason, run.message = RunState.FAILED, reason, message
    run.finished_at = run.finished_at or ctx.now
    ctx.emit("CandidateFailed", f"candidate {run.index} ({run.job}): {reason}: {message}", warning=True)


def _judge(ctx: Context, c: CandidateStatus) -> None:
    """All runs finished: pick the best, gate it, then packaging or an outcome."""
    metric = ctx.spec.promotion.metric
    best = gate.best_run(c.runs, metric)
    if best is None:
        failed = [r for r in c.runs if r.state is RunState.FAILED]
        if len(failed) == len(c.runs):
            reason, message = failed[0].reason or "TrainingFailed", f"all {len(c.runs)} candidate(s) failed; "
            message += f"candidate {failed[0].index}: {failed[0].message}"
        else:
            reason, message = "MetricMissing", f"no candidate reported the promotion metric {metric}"
        ctx.emit("TrainingFailed", f"retrain {c.retrain}: {reason}: {message}", warning=True)
        ctx.finish(c, Outcome.TRAINING_FAILED, reason, message, "failed")
        return
    c.best = best.index
    model = ctx.status.model
    c.gate = gate.evaluate(best, ctx.spec.promotion, model.metrics if model else None)
    if not c.gate.passed:
        ctx.emit("CandidateRejected", f"retrain {c.retrain}: {c.gate.reason}: {c.gate.message}")
        ctx.finish(c, Outcome.REJECTED, c.gate.reason, c.gate.message, "rejected")
        return
    ctx.emit("CandidateAccepted", f"retrain {c.retrain}: {c.gate.message}")
    c.version = names.version(c.retrain, best.rev)
    c.package_job = names.package_job(ctx.name, c.retrain)
    c.stage = Stage.PACKAGING


def _advance_packaging(ctx: Context, c: CandidateStatus) -> None:
    job = ctx.observed.job(c.package_job)
    best = c.best_run()
    if job is None:
        if c.package_started_at is not None:
            _packaging_failed(ctx, c, "JobNotFound", f"package Job {c.package_job} disappeared before it finished")
        elif ctx.may_act and best is not None and best.model and c.package_job:
            tag = f"{ctx.spec.serving.image}:{c.version}"
            ctx.actions.append(CreatePackageJob(c.package_job, c.retrain, best.model, tag))
            c.package_started_at = ctx.now
            ctx.emit("PackagingStarted", f"retrain {c.retrain}: building {tag} from {best.model}")
        return
    if job.state is JobState.RUNNING:
        c.package_started_at = c.package_started_at or job.started_at or ctx.now
        return
    ctx.duration("package", job.started_at, job.finished_at)
    outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
    if not outcome.ok:
        _packaging_failed(ctx, c, outcome.reason, outcome.message)
        return
    result = outcome.result
    if not isinstance(result, PackageResult):
        _packaging_failed(ctx, c, "MalformedResult", "result field package: required when ok is true")
        return
    # Only the image this retrain asked for, pinned by digest, ever reaches the Deployment.
    problem = image.problem(ctx.spec.serving.image, c.version, result.image, result.digest)
    if problem is not None:
        _packaging_failed(ctx, c, "MalformedResult", f"result field package.image: {problem}")
        return
    c.image, c.digest, c.target_image = result.reference, result.digest, result.image
    c.stage = Stage.ROLLING_OUT
    ctx.emit("Packaged", f"retrain {c.retrain}: {c.target_image}")


def _packaging_failed(ctx: Context, c: CandidateStatus, reason: str, message: str) -> None:
    ctx.emit("PackagingFailed", f"retrain {c.retrain}: {reason}: {message}", warning=True)
    ctx.finish(c, Outcome.PACKAGING_FAILED, reason, message, "failed")

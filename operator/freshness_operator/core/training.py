"""Step 4a, training: a retrain's candidates run as training Jobs, at most ``maxParallel`` at once;
each one's result (metrics, experiment, model file) or failure is recorded. Pure.

A retrain (``RetrainStatus``) is started by storm control (step 5) with one candidate per entry of
``spec.training.candidates``; once all have finished, the gate (step 4b) judges them.
"""

from __future__ import annotations

from freshness_contract.results import TrainResult

from freshness_operator.core import names, queue
from freshness_operator.core.actions import CreateTrainJob
from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobObservation, JobState, StepOutcome
from freshness_operator.core.status import Candidate, CandidateState, RetrainStage, RetrainStatus


def start(ctx: Context) -> None:
    """A new retrain from the last verdict (storm control let it through): its candidates start now."""
    st, spec = ctx.status, ctx.spec
    d = st.drift
    number = max(st.retrains.last_sequence, st.retrain.sequence if st.retrain else 0) + 1
    candidates = [
        Candidate(index=i, job=names.train_job(ctx.name, number, i), overrides={**spec.training.params, **cand})
        for i, cand in enumerate(spec.training.candidates)
    ]
    trigger = f"drift check {d.verdict_check}: share {d.share or 0:.2f}, score {d.score or 0:.3f}"
    retrain = RetrainStatus(
        sequence=number, started_at=ctx.now, trigger=trigger, trigger_check=d.verdict_check, candidates=candidates
    )
    st.retrain = retrain
    st.retrains.last_started = ctx.now
    st.retrains.recent.append(ctx.now)
    st.retrains.last_sequence = number
    d.consecutive = 0
    ctx.condition("Suppressed", "False", "RetrainStarted", f"retrain {number} started")
    ctx.emit(
        "TrainingStarted",
        f"retrain {number}: {len(candidates)} candidate(s), maxParallel {spec.training.max_parallel}; {trigger}",
    )
    _advance(ctx, retrain)


def advance(ctx: Context) -> None:
    """Step 4a: record the candidates that finished; start pending ones as slots free up."""
    r = ctx.status.retrain
    if r is not None and r.stage is RetrainStage.TRAINING:
        _advance(ctx, r)


def _advance(ctx: Context, retrain: RetrainStatus) -> None:
    for run in retrain.candidates:
        if run.state in (CandidateState.SUCCEEDED, CandidateState.FAILED):
            continue
        job = ctx.observed.job(run.job)
        if job is None:
            if run.state in queue.HAS_JOB:
                _candidate_failed(ctx, run, "JobNotFound", f"training Job {run.job} disappeared before it finished")
        elif job.state is JobState.RUNNING:
            queue.track(ctx, run, job)  # Queued while Kueue holds it suspended, else Running
        else:
            _record_candidate(ctx, run, job)
    _start_pending_candidates(ctx, retrain)


def _start_pending_candidates(ctx: Context, retrain: RetrainStatus) -> None:
    if not ctx.may_act:
        return
    running = queue.occupying(retrain)
    baseline = (ctx.status.model.uri if ctx.status.model else None) or ctx.spec.serving.model_uri
    for run in retrain.candidates:
        if running >= ctx.spec.training.max_parallel:
            break
        if run.state is CandidateState.PENDING:
            ctx.actions.append(CreateTrainJob(run.job, retrain.sequence, run.index, run.overrides, baseline))
            run.state, run.started_at = CandidateState.RUNNING, ctx.now
            running += 1


def _record_candidate(ctx: Context, run: Candidate, job: JobObservation) -> None:
    outcome = job.outcome or StepOutcome(False, "MissingResult", "the Job finished without a result")
    run.finished_at = job.finished_at or ctx.now
    run.started_at = run.started_at or job.started_at
    ctx.duration(JobKind.TRAIN, job.started_at, job.finished_at)
    result = outcome.result
    if outcome.ok and not isinstance(result, TrainResult):
        outcome = StepOutcome(False, "MalformedResult", "result field train: required when ok is true")
    elif outcome.ok and isinstance(result, TrainResult) and not result.model:
        outcome = StepOutcome(False, "MissingModel", "the train result names no model file (train.model)")
    if not outcome.ok or not isinstance(result, TrainResult):
        _candidate_failed(ctx, run, outcome.reason, outcome.message)
        return
    run.state = CandidateState.SUCCEEDED
    run.metrics = dict(result.metrics)
    run.baseline_metrics = dict(result.baseline_metrics or {}) or None
    run.experiment, run.rev, run.model = result.experiment, result.rev, result.model
    metric = ctx.spec.promotion.metric
    value = run.metrics.get(metric)
    shown = f"{metric}={value:.4f}" if value is not None else f"no {metric} reported"
    ctx.emit("CandidateTrained", f"candidate {run.index} ({run.job}): {shown}")


def _candidate_failed(ctx: Context, run: Candidate, reason: str, message: str) -> None:
    run.state, run.reason, run.message = CandidateState.FAILED, reason, message
    run.finished_at = run.finished_at or ctx.now
    ctx.emit("CandidateFailed", f"candidate {run.index} ({run.job}): {reason}: {message}", warning=True)

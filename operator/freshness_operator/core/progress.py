"""Stuck steps: a step pod that cannot be scheduled, pull its image, find a Secret or keeps
crashing shows as ``StepProgressing=False`` at once, not when the Job's deadline ends. Pure."""

from __future__ import annotations

from freshness_operator.core.context import Context
from freshness_operator.core.observed import JobKind, JobObservation, JobState
from freshness_operator.core.status import CandidateState, RetrainStage

_STEP_SPEC = {JobKind.DRIFT: "spec.drift", JobKind.TRAIN: "spec.training", JobKind.PACKAGE: "spec.package"}


def hint(job: JobObservation, reason: str) -> str:
    """What a user can change for this waiting reason (names the spec field)."""
    section = _STEP_SPEC[job.kind]
    if reason == "Unschedulable":
        if job.kind is JobKind.TRAIN:
            return "check spec.training.resources, nodeSelector and tolerations against the nodes"
        return f"check {section}.resources against the nodes"
    if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        return "check spec.training.image (the step image) and the namespace's pull access"
    if reason == "CreateContainerConfigError":
        return "a Secret or ConfigMap the pod needs is missing (spec.source.credentialsSecret, spec.env)"
    return f"see kubectl logs job/{job.name}"


def _running(ctx: Context) -> list[str]:
    """The step Jobs the status has in flight (the same names on every reconcile: no extra writes)."""
    d, retrain = ctx.status.drift, ctx.status.retrain
    names = [d.job] if d.job else []
    if retrain is not None and retrain.stage is RetrainStage.TRAINING:
        names += [r.job for r in retrain.candidates if r.state is CandidateState.RUNNING]
    packaging = retrain is not None and retrain.stage is RetrainStage.PACKAGING and retrain.package_started_at
    if packaging and retrain is not None and retrain.package_job:
        names.append(retrain.package_job)
    return names


def step_progressing(ctx: Context) -> None:
    """Step 8a: StepProgressing from the running step Jobs' pods; a StepStuck Event when it turns False."""
    running = _running(ctx)
    observed = [j for n in running if (j := ctx.observed.job(n)) is not None and j.state is JobState.RUNNING]
    stuck = [j for j in observed if j.waiting is not None]
    if stuck:
        job = stuck[0]
        assert job.waiting is not None
        w = job.waiting
        message = f"{job.kind.value} Job {job.name}: pod {w.pod}: {w.message}; {hint(job, w.reason)}"
        if len(stuck) > 1:
            message += f" ({len(stuck) - 1} more step Job(s) stuck)"
        if ctx.condition("StepProgressing", "False", w.reason, message):
            ctx.emit("StepStuck", f"{w.reason}: {message}", warning=True)
    elif running:
        ctx.condition("StepProgressing", "True", "StepsRunning", f"running: {', '.join(running)}")
    else:
        ctx.condition("StepProgressing", "True", "NoStepRunning", "no step Job is running")

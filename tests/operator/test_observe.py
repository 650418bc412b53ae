"""Reading Jobs, pods and the serving Deployment: results from termination messages."""

from __future__ import annotations

import json
from typing import Any

import freshness_contract as contract
import pytest
from freshness_operator import labels
from freshness_operator.core.observed import JobKind, JobState
from freshness_operator.observe import deployment_observation, observe

UID = "mdep-uid"


def job(name: str, step: str = "train", *, state: str = "running", owner: str = UID, **lbl: str) -> dict[str, Any]:
    conditions = []
    if state == "complete":
        conditions = [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]
    elif state == "failed":
        conditions = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": "2025-03-01T12:10:00Z",
            }
        ]
    number_label = labels.CHECK if step == "drift" else labels.RETRAIN
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "ownerReferences": [{"kind": "ModelDeployment", "uid": owner}],
            "labels": {labels.STEP: step, number_label: "1", **lbl},
            "annotations": {labels.OVERRIDES: json.dumps({"train.lr": 0.1})} if step == "train" else {},
            "creationTimestamp": "2025-03-01T12:00:00Z",
        },
        "status": {
            "startTime": "2025-03-01T12:00:01Z",
            "conditions": conditions,
            **({"completionTime": "2025-03-01T12:05:00Z"} if state == "complete" else {}),
        },
    }


def pod(job_name: str, phase: str, message: str | None, exit_code: int = 0) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
    if message is not None:
        term["message"] = message
    return {
        "metadata": {
            "name": f"{job_name}-abcde",
            "creationTimestamp": "2025-03-01T12:00:00Z",
            "ownerReferences": [{"kind": "Job", "uid": f"uid-{job_name}"}],
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "main", "state": {"terminated": term}}]},
    }


TRAIN_OK = contract.encode({"step": "train", "ok": True, "train": {"metrics": {"val_acc": 0.9}, "model": "s3://m"}})


def test_running_job() -> None:
    obs = observe(UID, [job("j", **{labels.CANDIDATE: "0"})], [], None, "server")
    (j,) = obs.jobs
    assert (j.state, j.kind, j.sequence, j.index, j.outcome) == (JobState.RUNNING, JobKind.TRAIN, 1, 0, None)
    assert j.overrides == {"train.lr": 0.1}


def test_succeeded_job_reads_the_result_section() -> None:
    obs = observe(UID, [job("j", state="complete")], [pod("j", "Succeeded", TRAIN_OK)], None, "server")
    (j,) = obs.jobs
    assert j.state is JobState.SUCCEEDED and j.outcome is not None and j.outcome.ok
    assert j.outcome.result == contract.TrainResult(metrics={"val_acc": 0.9}, model="s3://m")
    assert j.finished_at is not None and j.finished_at.minute == 5


def raw(step: str, **fields: Any) -> str:
    """A termination message as a container might write it, bypassing ``contract.encode``."""
    return json.dumps({"schemaVersion": contract.SCHEMA_VERSION, "step": step, **fields})


DIGEST = "sha256:" + "5e" * 32
PINNED = f"registry.example/cats-dogs:v1-bbbbbbbb@{DIGEST}"


@pytest.mark.parametrize(
    ("step", "message", "reason", "says"),
    [
        ("train", None, "MissingResult", "no termination message"),
        ("train", "", "MissingResult", "no termination message"),
        ("train", "{not json", "MalformedResult", "not JSON"),
        ("train", raw("train", ok=True, train={}), "MalformedResult", "result field train.metrics: required"),
        # the two faults: ok without the step's section, on the step's own Job
        ("drift", raw("drift", ok=True), "MalformedResult", "result field drift: required when ok is true"),
        ("package", raw("package", ok=True), "MalformedResult", "result field package: required when ok is true"),
        ("package", raw("package", ok=True, package={"image": "evil.example/x:1", "digest": DIGEST}),
         "MalformedResult", "result field package.image:"),
        ("package", raw("package", ok=True, package={"image": PINNED + "\n", "digest": DIGEST}),
         "MalformedResult", "result field package.image:"),
        ("package", raw("package", ok=True, package={"image": PINNED, "digest": "sha256:" + "cd" * 32}),
         "MalformedResult", "result field package.digest:"),
        ("drift", raw("train", ok=True, train={"metrics": {}}), "MalformedResult", "result field step:"),
        ("train", raw("train", ok=False), "MalformedResult", "result field reason: required when ok is false"),
        ("train", "x" * 5000, "OversizedResult", "over 4096 bytes"),
        ("drift", raw("drift", ok=True, drift={"detected": True, "share": float("nan"), "score": 1, "method": "m",
                                                "samples": 1}), "MalformedResult", "NaN"),
        ("train", contract.encode({"step": "train", "ok": False, "reason": "DatasetEmpty", "message": "no images"}),
         "DatasetEmpty", "no images"),
    ],
)
def test_bad_results_fail_the_step_with_a_reason(step: str, message: str | None, reason: str, says: str) -> None:
    obs = observe(UID, [job("j", step, state="complete")], [pod("j", "Succeeded", message)], None, "server")
    outcome = obs.jobs[0].outcome
    assert outcome is not None and not outcome.ok and outcome.result is None
    assert outcome.reason == reason and says in outcome.message, outcome.message


def test_a_pinned_package_result_is_typed() -> None:
    message = contract.encode({"step": "package", "ok": True, "package": {"image": PINNED, "digest": DIGEST}})
    obs = observe(UID, [job("j", "package", state="complete")], [pod("j", "Succeeded", message)], None, "server")
    outcome = obs.jobs[0].outcome
    assert outcome is not None and outcome.ok
    assert outcome.result == contract.PackageResult(PINNED, DIGEST)


def test_failed_job_prefers_the_step_reason_then_the_jobs() -> None:
    failed_doc = contract.encode({"step": "train", "ok": False, "reason": "OutOfMemory", "message": "CUDA OOM"})
    obs = observe(
        UID,
        [job("a", state="failed"), job("b", state="failed")],
        [pod("a", "Failed", failed_doc, 1), pod("b", "Failed", None, 137)],
        None,
        "server",
    )
    a, b = obs.jobs
    assert a.outcome is not None and (a.outcome.reason, a.outcome.message) == ("OutOfMemory", "CUDA OOM")
    assert b.outcome is not None and b.outcome.reason == "BackoffLimitExceeded"
    assert "exit code 137" in b.outcome.message
    assert a.state is JobState.FAILED and a.finished_at is not None


def test_jobs_of_other_owners_and_foreign_shapes_are_ignored() -> None:
    foreign = job("x")
    foreign["metadata"]["labels"][labels.STEP] = "lint"
    obs = observe(UID, [job("other", owner="someone-else"), foreign], [], None, "server")
    assert obs.jobs == ()


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 3},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "server", "image": "r/c:1"}]}}},
        "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, **status},
    }


def test_deployment_rolled_out() -> None:
    d = deployment_observation(deployment(), "server")
    assert d.found and d.container_found and d.image == "r/c:1" and d.rolled_out


def test_deployment_still_rolling() -> None:
    assert not deployment_observation(deployment(replicas=3, updatedReplicas=1), "server").rolled_out
    assert not deployment_observation(deployment(observedGeneration=2), "server").rolled_out


def test_progress_deadline_counts_only_for_the_current_generation() -> None:
    exceeded = {
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "c-1" has timed out progressing.',
            }
        ]
    }
    d = deployment_observation(deployment(**exceeded), "server")
    assert d.progress_deadline_exceeded and "timed out" in d.message
    assert not deployment_observation(deployment(observedGeneration=2, **exceeded), "server").progress_deadline_exceeded


def test_the_opt_in_label_is_read() -> None:
    labelled = deployment()
    labelled["metadata"]["labels"] = {"modelfreshness.io/serving-for": "cats", "app": "c"}
    assert deployment_observation(labelled, "server").serving_for == "cats"
    assert deployment_observation(deployment(), "server").serving_for is None


def test_missing_deployment_or_container() -> None:
    assert not deployment_observation(None, "server").found
    d = deployment_observation(deployment(), "sidecar")
    assert d.found and not d.container_found and d.image is None
    assert d.containers == ("server",)  # named in ContainerNotFound's message


def test_the_check_now_annotation_is_passed_on() -> None:
    assert observe(UID, [], [], None, "server", "2025-03-01T12:00").check_now == "2025-03-01T12:00"


def waiting_pod(
    job_name: str, *, scheduled: dict[str, Any] | None = None, waiting: str | None = None
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending", "conditions": [scheduled] if scheduled else []}
    if waiting:
        status["containerStatuses"] = [{"name": "main", "state": {"waiting": {"reason": waiting, "message": "why"}}}]
    return {
        "metadata": {
            "name": f"{job_name}-xyz",
            "creationTimestamp": "2025-03-01T12:00:00Z",
            "ownerReferences": [{"kind": "Job", "uid": f"uid-{job_name}"}],
        },
        "status": status,
    }


UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
}


@pytest.mark.parametrize(
    ("pod_", "reason"),
    [
        (waiting_pod("j", scheduled=UNSCHEDULABLE), "Unschedulable"),
        (waiting_pod("j", waiting="ImagePullBackOff"), "ImagePullBackOff"),
        (waiting_pod("j", waiting="ErrImagePull"), "ErrImagePull"),
        (waiting_pod("j", waiting="CreateContainerConfigError"), "CreateContainerConfigError"),
        (waiting_pod("j", waiting="CrashLoopBackOff"), "CrashLoopBackOff"),
        (waiting_pod("j", waiting="ContainerCreating"), None),  # normal start-up, not stuck
        (waiting_pod("j"), None),
    ],
)
def test_a_running_jobs_stuck_pod_is_reported(pod_: dict[str, Any], reason: str | None) -> None:
    (j,) = observe(UID, [job("j")], [pod_], None, "server").jobs
    assert (j.waiting.reason if j.waiting else None) == reason
    if reason == "Unschedulable":
        assert j.waiting is not None and "Insufficient nvidia.com/gpu" in j.waiting.message
        assert j.waiting.pod == "j-xyz"


def test_a_finished_job_is_never_stuck() -> None:
    (j,) = observe(UID, [job("j", state="failed")], [waiting_pod("j", waiting="CrashLoopBackOff")], None, "x").jobs
    assert j.waiting is None


def test_a_deadline_names_the_spec_field_to_raise() -> None:
    deadline = job("d", "drift", state="failed")
    deadline["status"]["conditions"][0].update(reason="DeadlineExceeded", message="Job was active longer than")
    train = job("t", state="failed")
    train["status"]["conditions"][0].update(reason="DeadlineExceeded", message="Job was active longer than")
    d, t = observe(UID, [deadline, train], [], None, "server").jobs
    assert d.outcome is not None and "raise spec.drift.timeout" in d.outcome.message
    assert t.outcome is not None and "raise spec.training.timeout" in t.outcome.message


def rank_pod(job_name: str, index: int, phase: str, message: str | None, exit_code: int,
             finished: str) -> dict[str, Any]:
    """A pod of a multi-node candidate's Indexed Job (the Job controller's index annotation)."""
    p = pod(job_name, phase, message, exit_code)
    p["metadata"]["name"] = f"{job_name}-{index}-xyz"
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": str(index)}
    p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = finished
    return p


def test_a_failed_rank_fails_the_candidate_with_its_own_reason() -> None:
    # Rank 1 ran out of memory; rank 0 then failed because its peer was gone (later, another reason).
    oom = contract.encode({"step": "train", "ok": False, "reason": "OutOfMemory", "message": "CUDA OOM on rank 1"})
    peer = contract.encode({"step": "train", "ok": False, "reason": "CommandFailed", "message": "dvc exp run failed"})
    obs = observe(UID, [job("a", state="failed")],
                  [rank_pod("a", 0, "Failed", peer, 1, "2025-03-01T12:04:30Z"),
                   rank_pod("a", 1, "Failed", oom, 1, "2025-03-01T12:04:00Z")], None, "server")
    (a,) = obs.jobs
    assert a.outcome is not None and a.outcome.reason == "OutOfMemory"
    assert a.outcome.message == "rank 1 (pod a-1-xyz): CUDA OOM on rank 1"


def test_a_multi_node_candidates_result_is_rank_0s() -> None:
    # Rank 1's pod is the newest and wrote no result: rank 0's is the candidate's.
    newest = rank_pod("a", 1, "Succeeded", None, 0, "2025-03-01T12:04:30Z")
    newest["metadata"]["creationTimestamp"] = "2025-03-01T12:00:09Z"
    obs = observe(UID, [job("a", state="complete")],
                  [rank_pod("a", 0, "Succeeded", TRAIN_OK, 0, "2025-03-01T12:04:00Z"), newest], None, "server")
    (a,) = obs.jobs
    assert a.outcome is not None and a.outcome.ok
    assert a.outcome.result == contract.TrainResult(metrics={"val_acc": 0.9}, model="s3://m")

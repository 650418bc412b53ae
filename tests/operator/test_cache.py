"""The watch-fed cache: reads from the indexes, the operator's own writes until the watches show them."""

from __future__ import annotations

from typing import Any

import pytest
from freshness_operator import labels
from freshness_operator.cache import EXPECTATION_SECONDS, Cache, Unordered, slim_deployment, slim_job, slim_pod
from freshness_operator.core import names
from freshness_operator.observe import deployment_observation, job_observation, pod_waiting

NS = "ml"
LABEL = names.label_value("cats")


class World:
    """Plays kopf: indexes as dicts the test edits, a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.indexes: dict[str, dict[Any, list[dict[str, Any]]]] = {
            "mdep_index": {},
            "job_index": {},
            "pod_index": {},
            "deployment_index": {},
        }
        self.cache = Cache(clock=lambda: self.now)
        self.cache.bind(self.indexes)

    def mdep(self, version: str, phase: str) -> dict[str, Any]:
        body = {"metadata": {"name": "cats", "namespace": NS, "resourceVersion": version}, "status": {"phase": phase}}
        self.indexes["mdep_index"][(NS, "cats")] = [body]
        return body

    def jobs(self, *names_: str) -> None:
        self.indexes["job_index"][(NS, LABEL)] = [job(n) for n in names_]


def job(name: str, uid: str | None = None) -> dict[str, Any]:
    meta = {
        "name": name,
        "namespace": NS,
        "uid": uid or f"uid-{name}",
        "labels": labels.for_child("cats", "drift") | {labels.CHECK: "1"},
        "annotations": {labels.OVERRIDES: "{}", "noise": "x" * 100},
        "resourceVersion": "5",
    }
    return {"metadata": meta, "spec": {"template": {"spec": {"containers": [{"name": "main"}]}}}, "status": {}}


def job_names(w: World) -> list[str]:
    return sorted(j["metadata"]["name"] for j in w.cache.children(NS, "cats")[0])


def test_a_read_before_kopf_bound_the_indexes_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match="before kopf's indexes were bound"):
        Cache().mdep(NS, "cats")
    with pytest.raises(KeyError, match="job_index"):
        Cache().bind({"mdep_index": {}})


def test_a_created_job_is_listed_until_the_watch_shows_it_then_the_watch_copy_is_read() -> None:
    w = World()
    w.jobs("cats-drift-1")
    w.cache.created_job(job("cats-drift-2"))
    assert job_names(w) == ["cats-drift-1", "cats-drift-2"]  # the next reconcile does not create it again
    seen = job("cats-drift-2")
    seen["status"] = {"active": 1}
    w.indexes["job_index"][(NS, LABEL)].append(seen)
    jobs = w.cache.children(NS, "cats")[0]
    assert [j["status"] for j in jobs if j["metadata"]["name"] == "cats-drift-2"] == [{"active": 1}]
    w.indexes["job_index"][(NS, LABEL)].pop()  # deleted by someone: the expectation is gone, nothing resurrects
    assert job_names(w) == ["cats-drift-1"]


def test_an_expectation_the_watch_never_confirms_expires() -> None:
    w = World()
    w.cache.created_job(job("cats-drift-2"))
    w.now += EXPECTATION_SECONDS - 1
    assert job_names(w) == ["cats-drift-2"]
    w.now += 1
    assert job_names(w) == []


def test_a_deleted_job_is_hidden_while_the_index_holds_it_but_a_new_one_of_that_name_is_not() -> None:
    w = World()
    w.jobs("cats-drift-1", "cats-drift-2")
    w.cache.deleted_job(NS, "cats", "cats-drift-1")
    w.now += 10 * EXPECTATION_SECONDS  # an index that missed the deletion (a re-LIST) keeps it hidden
    assert job_names(w) == ["cats-drift-2"]
    w.indexes["job_index"][(NS, LABEL)] = [job("cats-drift-1", uid="another"), job("cats-drift-2")]
    assert job_names(w) == ["cats-drift-1", "cats-drift-2"]  # same name, another uid: a new Job
    w.jobs("cats-drift-1", "cats-drift-2")
    assert job_names(w) == ["cats-drift-1", "cats-drift-2"]  # the deletion was forgotten once it showed


def test_own_status_write_is_read_until_the_watch_catches_up_and_a_newer_watch_copy_wins() -> None:
    w = World()
    w.mdep("10", "Pending")
    w.cache.wrote_mdep(
        {"metadata": {"name": "cats", "namespace": NS, "resourceVersion": "11"}, "status": {"phase": "Monitoring"}}
    )
    assert (w.cache.mdep(NS, "cats") or {})["status"] == {"phase": "Monitoring"}
    w.mdep("12", "Training")  # someone else's write after ours, delivered by the watch
    assert (w.cache.mdep(NS, "cats") or {})["status"] == {"phase": "Training"}
    w.cache.wrote_mdep({"metadata": {"name": "cats", "namespace": NS, "resourceVersion": "11"}, "status": {}})
    assert (w.cache.mdep(NS, "cats") or {})["status"] == {"phase": "Training"}  # an older answer never wins


def test_a_deleted_object_is_not_resurrected_by_our_copy() -> None:
    w = World()
    w.mdep("10", "Pending")
    w.cache.wrote_mdep({"metadata": {"name": "cats", "namespace": NS, "resourceVersion": "11"}})
    del w.indexes["mdep_index"][(NS, "cats")]
    assert w.cache.mdep(NS, "cats") is None


def test_versions_that_do_not_compare_send_the_reconcile_to_the_api() -> None:
    w = World()
    w.mdep("opaque-a", "Pending")
    w.cache.wrote_mdep({"metadata": {"name": "cats", "namespace": NS, "resourceVersion": "opaque-b"}})
    with pytest.raises(Unordered, match="opaque"):
        w.cache.mdep(NS, "cats")


def test_forget_drops_what_was_kept_for_a_deleted_modeldeployment() -> None:
    w = World()
    w.mdep("10", "Pending")
    w.cache.created_job(job("cats-drift-2"))
    w.cache.wrote_mdep({"metadata": {"name": "cats", "namespace": NS, "resourceVersion": "11"}})
    w.cache.forget(NS, "cats")
    assert job_names(w) == [] and (w.cache.mdep(NS, "cats") or {})["metadata"]["resourceVersion"] == "10"


def test_slim_copies_keep_what_observe_reads() -> None:
    full_job = job("cats-drift-1")
    full_job["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "completionTime": "2026-01-01T00:00:00Z",
    }
    slim = slim_job(full_job)
    assert "spec" not in slim and slim["metadata"]["annotations"] == {labels.OVERRIDES: "{}"}
    assert job_observation(slim, []) == job_observation(full_job, [])
    pod = {
        "metadata": {
            "name": "p",
            "uid": "u",
            "ownerReferences": [{"kind": "Job", "uid": "j"}],
            "annotations": {"a": "b"},
        },
        "spec": {"containers": [{"name": "main", "env": [{"name": "X", "value": "y" * 500}]}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"name": "main", "state": {"waiting": {"reason": "ErrImagePull"}}}],
        },
    }
    assert "spec" not in slim_pod(pod) and pod_waiting(slim_pod(pod)) == pod_waiting(pod) is not None
    dep = {
        "metadata": {"name": "d", "generation": 3, "labels": {labels.SERVING_FOR: "cats"}, "managedFields": [{}]},
        "spec": {
            "replicas": 2,
            "selector": {},
            "template": {
                "spec": {"containers": [{"name": "server", "image": "r/c:1", "ports": [{"containerPort": 80}]}]}
            },
        },
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "m"},
            ],
        },
    }
    assert "managedFields" not in slim_deployment(dep)["metadata"]
    assert deployment_observation(slim_deployment(dep), "server") == deployment_observation(dep, "server")

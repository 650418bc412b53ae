"""What a reconcile reads, served from the watches kopf already runs: no GET or LIST per reconcile.

kopf indexes (``handlers``: ``mdep_index``, ``job_index``, ``pod_index``, ``deployment_index``)
hold a slim copy of every ModelDeployment, of every Job and pod labelled
``app.kubernetes.io/managed-by=model-freshness-operator`` (keyed by namespace and their
``modelfreshness.io/deployment`` label) and of every Deployment (keyed by namespace and name; only
the fields ``observe`` reads). kopf fills them from each watch's initial LIST and keeps them
current from its events, and it runs no other handler until every index has its initial LIST, so
the first reconcile after a start already sees every existing Job.

A watch lags the operator's own writes, so this cache also keeps them until the watch shows them
(read-your-own-writes, as controller-runtime's "expectations"):

- the answer to a status write, a Deployment patch, or a GET after a conflict is used instead of
  the watch's copy while it is newer (by ``resourceVersion``; kube-apiserver's are etcd
  revisions, integers: where one does not parse, ``mdep``/``deployment`` say so and the reconcile
  GETs the object instead);
- a Job the operator created is listed from the create's answer until the watch shows it, so
  the next reconcile does not create it again;
- a Job it deleted is left out until the watch shows it gone.

A creation the watch never confirms (the Job was created and deleted again while the watch was
down and listed anew) is dropped after ``EXPECTATION_SECONDS``. A deletion is kept as long as the
index still holds that Job: kopf's LIST after an expired watch (410 Gone) reports no deletions, so
an index can keep an object deleted meanwhile; a Job the operator deleted is hidden all the same.

No I/O and no kopf import: the indexes come in as plain mappings (``bind``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from freshness_operator import labels
from freshness_operator.core import names

Key = tuple[str, str]
Body = dict[str, Any]
Indexes = Mapping[str, Mapping[Any, Iterable[Body]]]
EXPECTATION_SECONDS = 300.0
INDEXES = ("mdep_index", "job_index", "pod_index", "deployment_index")


class Unordered(Exception):
    """Two copies of an object whose resourceVersions do not compare; read it from the API."""


# ---------------------------------------------------------------- slim copies (what observe reads)


def _pick(source: Mapping[str, Any] | None, *keys: str) -> Body:
    return {k: source[k] for k in keys if source and k in source}


def slim_mdep(body: Mapping[str, Any]) -> Body:
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**{k: body[k] for k in ("apiVersion", "kind", "spec", "status") if k in body}, "metadata": meta}


IDENTITY = ("name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp", "resourceVersion")


def slim_job(body: Mapping[str, Any]) -> Body:
    meta = body.get("metadata") or {}
    slim = _pick(meta, *IDENTITY)
    overrides = (meta.get("annotations") or {}).get(labels.OVERRIDES)
    if overrides is not None:
        slim["annotations"] = {labels.OVERRIDES: overrides}
    # spec.suspend: Kueue holds a queued Job suspended until admission (core/queue.py).
    spec = _pick(body.get("spec"), "suspend")
    return {"metadata": slim, **({"spec": spec} if spec else {}), "status": dict(body.get("status") or {})}


def slim_pod(body: Mapping[str, Any]) -> Body:
    meta = _pick(body.get("metadata"), *IDENTITY)
    status = _pick(body.get("status"), "phase", "conditions", "initContainerStatuses", "containerStatuses")
    return {"metadata": meta, "status": status}


def slim_deployment(body: Mapping[str, Any]) -> Body:
    """Every Deployment is kept, so only what ``observe`` reads: the opt-in label, the containers'
    names and images, replicas, and a missed progress deadline."""
    meta = _pick(body.get("metadata"), "name", "namespace", "generation", "resourceVersion")
    opt_in = ((body.get("metadata") or {}).get("labels") or {}).get(labels.SERVING_FOR)
    if opt_in is not None:
        meta["labels"] = {labels.SERVING_FOR: opt_in}
    spec = body.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    status = _pick(body.get("status"), "observedGeneration", "replicas", "updatedReplicas", "availableReplicas")
    conditions = [
        _pick(c, "type", "status", "reason", "message")
        for c in (body.get("status") or {}).get("conditions") or []
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
    ]
    return {
        "metadata": meta,
        "spec": {
            **_pick(spec, "replicas"),
            "template": {"spec": {"containers": [_pick(c, "name", "image") for c in containers]}},
        },
        "status": {**status, "conditions": conditions},
    }


def _version(body: Mapping[str, Any]) -> int:
    value = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise Unordered(f"resourceVersion {value!r} is not an integer") from None


# ---------------------------------------------------------------- the cache


class Cache:
    """Watch-fed reads plus the operator's own writes the watches have not shown yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._indexes: Indexes | None = None
        self._fresh: dict[tuple[str, str, str], Body] = {}  # (kind, namespace, name) -> newer than the watch
        self._created: dict[Key, dict[str, tuple[float, Body]]] = {}  # (ns, label) -> Job name -> (when, body)
        self._deleted: dict[Key, dict[str, str]] = {}  # (ns, label) -> Job name -> uid

    def bind(self, indexes: Indexes) -> None:
        """kopf's indexes by name (they are live views; kopf keeps them current)."""
        missing = [name for name in INDEXES if name not in indexes]
        if missing:
            raise KeyError(f"the cache needs the kopf indexes {', '.join(missing)}")
        self._indexes = indexes

    def _index(self, name: str) -> Mapping[Any, Iterable[Body]]:
        if self._indexes is None:
            raise RuntimeError("the cache is read before kopf's indexes were bound (handlers.startup binds them)")
        return self._indexes[name]

    def _one(self, index: str, kind: str, namespace: str, name: str) -> Body | None:
        watched = next(iter(self._index(index).get((namespace, name), ())), None)
        fresh = self._fresh.get((kind, namespace, name))
        if fresh is None:
            return watched
        if watched is None:  # gone from the watch: deleted since (our copy is older than that)
            del self._fresh[(kind, namespace, name)]
            return None
        if _version(fresh) > _version(watched):
            return fresh
        del self._fresh[(kind, namespace, name)]  # the watch has caught up
        return watched

    def mdep(self, namespace: str, name: str) -> Body | None:
        """The ModelDeployment; raises ``Unordered`` when the copies cannot be ordered."""
        return self._one("mdep_index", "mdep", namespace, name)

    def deployment(self, namespace: str, name: str) -> Body | None:
        """The serving Deployment (slim); raises ``Unordered`` when the copies cannot be ordered."""
        return self._one("deployment_index", "deployment", namespace, name)

    def children(self, namespace: str, mdep: str) -> tuple[list[Body], list[Body]]:
        """The ModelDeployment's Jobs and their pods by label (ownership is checked by ``observe``)."""
        key = (namespace, names.label_value(mdep))
        now = self._clock()
        jobs = []
        deleted, hidden = self._deleted.get(key, {}), {}
        for job in self._index("job_index").get(key, ()):
            meta = job["metadata"]
            if deleted.get(meta["name"]) == meta.get("uid"):
                hidden[meta["name"]] = deleted[meta["name"]]  # deleted by us; the watch has not shown it yet
            else:
                jobs.append(job)
        if hidden:
            self._deleted[key] = hidden
        else:
            self._deleted.pop(key, None)
        seen = {job["metadata"]["name"] for job in jobs}
        created = self._created.get(key, {})
        for job_name, (when, body) in list(created.items()):
            if job_name in seen or now - when >= EXPECTATION_SECONDS:
                del created[job_name]
            else:
                jobs.append(body)
        if not created:
            self._created.pop(key, None)
        return jobs, list(self._index("pod_index").get(key, ()))

    # ------------------------------------------------------------ the operator's own writes

    def wrote_mdep(self, body: Mapping[str, Any]) -> None:
        """A status write's answer, or a GET's: newer than the watch's copy until it shows it."""
        self._put_fresh("mdep", slim_mdep(body))

    def wrote_deployment(self, body: Mapping[str, Any]) -> None:
        self._put_fresh("deployment", slim_deployment(body))

    def _put_fresh(self, kind: str, body: Body) -> None:
        meta = body["metadata"]
        key = (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))
        old = self._fresh.get(key)
        try:
            if old is not None and _version(old) >= _version(body):
                return
        except Unordered:
            pass
        self._fresh[key] = body

    def created_job(self, body: Mapping[str, Any]) -> None:
        """A Job the operator created (the create's answer), listed until the watch shows it."""
        job = slim_job(body)
        meta = job["metadata"]
        key = (str(meta.get("namespace", "")), str((meta.get("labels") or {}).get(labels.DEPLOYMENT, "")))
        self._created.setdefault(key, {})[meta["name"]] = (self._clock(), job)

    def deleted_job(self, namespace: str, mdep: str, name: str) -> None:
        """A Job the operator deleted, left out until the watch shows it gone."""
        key = (namespace, names.label_value(mdep))
        self._created.get(key, {}).pop(name, None)
        for job in self._index("job_index").get(key, ()):
            if job["metadata"]["name"] == name:
                self._deleted.setdefault(key, {})[name] = str(job["metadata"].get("uid", ""))

    def forget(self, namespace: str, name: str) -> None:
        """The ModelDeployment is gone: drop what was kept for it."""
        self._fresh.pop(("mdep", namespace, name), None)
        self._created.pop((namespace, names.label_value(name)), None)
        self._deleted.pop((namespace, names.label_value(name)), None)

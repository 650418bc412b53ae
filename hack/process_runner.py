"""Dev-only process runner: a fake kubelet that runs pods as local processes (docs/architecture.md §5).

It registers one node (default ``local-runner``), keeps it Ready with a node Lease, and for every
pod the scheduler binds to it runs the pod's containers (init containers first) as processes on
this machine: same command, args and env; each volume mapped to a temporary folder (mount paths
are rewritten in args and env); the container's termination-message path points to a file. When
the main container exits it writes the pod status — phase, exit code and termination message —
exactly where a kubelet would, so the operator reads it as in production. The image is ignored:
commands run from this machine's PATH (the project's virtual environment). A volume mounted over a
folder this machine already has (``/tmp``) is not mapped: the host's folder is used as it is.

Not for production: no isolation, no resource limits. Every other pod stays with kwok.

    python -m hack.process_runner --kubeconfig KUBECONFIG [--node local-runner]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

log = logging.getLogger("process-runner")
RUNNER_LABEL = "modelfreshness.io/runner"
MAX_MESSAGE = 4096


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_manifest(name: str) -> dict[str, Any]:
    """The runner's node: schedulable, labelled so manifests can target it. Pure."""
    capacity = {"cpu": "8", "memory": "16Gi", "pods": "20", "ephemeral-storage": "50Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {RUNNER_LABEL: "local", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def ready_status(now: str) -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ProcessRunnerReady",
                    "message": "dev-only process runner",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        }
    }


def map_paths(value: str, mounts: dict[str, str]) -> str:
    """Rewrite a container path (or ``--flag=path``) under a mount point to its host folder. Pure."""
    head, sep, tail = value.partition("=")
    if sep and tail.startswith("/") and not head.startswith("/"):
        return head + sep + map_paths(tail, mounts)
    for container_path in sorted(mounts, key=len, reverse=True):
        prefix = container_path.rstrip("/")
        if value == container_path or value.startswith(prefix + "/"):
            return mounts[container_path] + value[len(prefix) :]
    return value


def container_env(container: dict[str, Any], pod: dict[str, Any], mounts: dict[str, str]) -> dict[str, str]:
    """The container's environment on top of this process's, with fieldRefs resolved. Pure."""
    env = dict(os.environ)
    meta = pod["metadata"]
    fields = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
    }
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = map_paths(str(item["value"]), mounts)
        elif (ref := (item.get("valueFrom") or {}).get("fieldRef")) and ref.get("fieldPath") in fields:
            env[item["name"]] = fields[ref["fieldPath"]]
    return env


@dataclass
class PodRun:
    pod: dict[str, Any]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


class Runner:
    """Registers the node, watches its pods and runs them. Touches the API and the filesystem."""

    def __init__(self, api: client.CoreV1Api, coord: client.CoordinationV1Api, node: str, workroot: Path) -> None:
        self.api, self.coord, self.node, self.workroot = api, coord, node, workroot
        self.runs: dict[str, PodRun] = {}
        self.stop = threading.Event()

    # ---- node
    def register(self) -> None:
        try:
            self.api.create_node(cast(Any, node_manifest(self.node)))
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        now = _now()
        self.api.patch_node_status(self.node, ready_status(now))
        lease = {
            "metadata": {"name": self.node, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": _micro_now()},
        }
        try:
            self.coord.patch_namespaced_lease(self.node, "kube-node-lease", lease)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", cast(Any, lease))

    def heartbeat_loop(self) -> None:
        while not self.stop.wait(10):
            try:
                self.heartbeat()
            except Exception:  # keep beating through transient API errors
                log.exception("heartbeat failed")

    # ---- pods
    def watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node}"
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                stream = w.stream(self.api.list_pod_for_all_namespaces, field_selector=selector, timeout_seconds=30)
                for event in stream:
                    if self.stop.is_set():
                        break
                    pod = client.ApiClient().sanitize_for_serialization(event["object"])
                    self.on_pod(event["type"], pod)
            except ApiException as exc:
                log.warning("watch restarted: %s", exc.reason)
                time.sleep(1)

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            run = self.runs.get(uid)
            if run:
                run.cancelled.set()
                if run.proc and run.proc.poll() is None:
                    os.killpg(run.proc.pid, signal.SIGTERM)
            if kind != "DELETED":
                self._finalize_deleted(pod)
            return
        if uid in self.runs or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        run = PodRun(pod, Path(tempfile.mkdtemp(prefix=f"{pod['metadata']['name']}-", dir=self.workroot)))
        self.runs[uid] = run
        threading.Thread(target=self.run_pod, args=(run,), daemon=True).start()

    def _finalize_deleted(self, pod: dict[str, Any]) -> None:
        try:
            self.api.delete_namespaced_pod(
                pod["metadata"]["name"], pod["metadata"]["namespace"], grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete pod %s: %s", pod["metadata"]["name"], exc.reason)

    def run_pod(self, run: PodRun) -> None:
        pod, meta = run.pod, run.pod["metadata"]
        name, ns = meta["name"], meta["namespace"]
        mounts = self._volumes(run)
        self._patch_status(ns, name, self._running_status(pod))
        log.info("running pod %s/%s in %s", ns, name, run.workdir)
        for init in pod["spec"].get("initContainers") or []:
            code, message = self._run_container(run, init, mounts)
            if code != 0:
                self._finish(ns, name, pod, code, message, failed_container=init["name"])
                return
        containers = pod["spec"]["containers"]
        code, message = self._run_container(run, containers[0], mounts)
        self._finish(ns, name, pod, code, message)
        if code == 0:
            shutil.rmtree(run.workdir, ignore_errors=True)
        else:
            log.warning("pod %s/%s failed; its output is in %s", ns, name, run.workdir / f"{containers[0]['name']}.log")

    def _volumes(self, run: PodRun) -> dict[str, str]:
        """Every volume becomes a folder under the pod's workdir; returns mountPath -> folder."""
        folders = {}
        for vol in run.pod["spec"].get("volumes") or []:
            folder = run.workdir / "volumes" / vol["name"]
            folder.mkdir(parents=True, exist_ok=True)
            folders[vol["name"]] = str(folder)
        mounts: dict[str, str] = {}
        for c in (run.pod["spec"].get("initContainers") or []) + run.pod["spec"]["containers"]:
            for m in c.get("volumeMounts") or []:
                # A mount over a folder this machine already has (/tmp) is not mapped: the host's
                # own folder is used, so host paths below it (data, reports) keep their meaning.
                if m["name"] in folders and not Path(m["mountPath"]).exists():
                    mounts[m["mountPath"]] = folders[m["name"]]
        return mounts

    def _run_container(self, run: PodRun, container: dict[str, Any], mounts: dict[str, str]) -> tuple[int, str]:
        if run.cancelled.is_set():
            return 137, ""
        term_path = container.get("terminationMessagePath") or "/dev/termination-log"
        term_file = run.workdir / f"{container['name']}.termination-log"
        term_file.write_text("")
        paths = {**mounts, term_path: str(term_file)}
        argv = [map_paths(a, paths) for a in (container.get("command") or []) + (container.get("args") or [])]
        if not argv:
            return 126, f"container {container['name']} has no command: the process runner cannot run an image"
        env = container_env(container, run.pod, paths)
        # The trainer CLI writes its result where this variable says (docs/contracts.md).
        env.setdefault("FRESHNESS_RESULT_PATH", str(term_file))
        cwd = map_paths(container.get("workingDir") or str(run.workdir), paths)
        Path(cwd).mkdir(parents=True, exist_ok=True)
        with open(run.workdir / f"{container['name']}.log", "wb") as out:
            try:
                run.proc = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            except OSError as exc:
                return 127, f"could not start {argv[0]}: {exc}"[:MAX_MESSAGE]
            code = run.proc.wait()
        message = term_file.read_bytes()[:MAX_MESSAGE].decode("utf-8", "replace")
        return (code if code >= 0 else 128 - code), message

    def _running_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        return {
            "status": {
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": now,
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                "containerStatuses": [
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "started": True,
                        "state": {"running": {"startedAt": now}},
                    }
                    for c in pod["spec"]["containers"]
                ],
            }
        }

    def _finish(
        self, ns: str, name: str, pod: dict[str, Any], code: int, message: str, failed_container: str | None = None
    ) -> None:
        now = _now()
        statuses = []
        for c in pod["spec"]["containers"]:
            terminated = {
                "exitCode": code if failed_container is None else 1,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": now,
                "finishedAt": now,
            }
            if message and failed_container is None:
                terminated["message"] = message
            statuses.append(
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"terminated": terminated},
                }
            )
        phase = "Succeeded" if code == 0 and failed_container is None else "Failed"
        body = {
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
                "containerStatuses": statuses,
            }
        }
        self._patch_status(ns, name, body)
        log.info("pod %s/%s finished: %s (exit %d)", ns, name, phase, code)

    def _patch_status(self, ns: str, name: str, body: dict[str, Any]) -> None:
        try:
            self.api.patch_namespaced_pod_status(name, ns, body)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not patch pod %s/%s: %s", ns, name, exc.reason)

    def shutdown(self) -> None:
        self.stop.set()
        for run in self.runs.values():
            run.cancelled.set()
            if run.proc and run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGTERM)


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.process_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--node", default="local-runner")
    parser.add_argument("--workdir", type=Path, default=None, help="where pods' folders go (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config.load_kube_config(config_file=args.kubeconfig)
    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="process-runner-"))
    workroot.mkdir(parents=True, exist_ok=True)
    runner = Runner(client.CoreV1Api(), client.CoordinationV1Api(), args.node, workroot)

    def on_signal(signum: int, _frame: object) -> None:
        runner.shutdown()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.register()
    threading.Thread(target=runner.heartbeat_loop, daemon=True).start()
    log.info("node %s registered; running its pods under %s", args.node, workroot)
    runner.watch_pods()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Dev-only process runner: a kubelet that runs pods as local processes (docs/architecture.md §5).

It registers one node (default ``local-runner``, hack/kubelet/node.py), keeps it Ready, and for every
pod the scheduler binds to it runs the pod's init containers, then its container, as processes on
this machine, each in its own mount namespace (hack/kubelet/sandbox.py) with:

* the pod's emptyDirs private to the pod, mounted at their mountPaths; the runner's home hidden;
* exactly the environment the spec gives (env, envFrom, configMap/secret key refs, fieldRefs,
  ``$(VAR)`` expansion) over a minimal base — PATH, HOME, HOSTNAME, LANG and the variables named by
  ``--image-env`` — nothing else of the runner's (not its KUBECONFIG); a missing source fails the
  pod with CreateContainerConfigError naming the field (a kubelet would retry; a Job would hang);
* its securityContext: runAsUser/runAsGroup/fsGroup/supplementalGroups, runAsNonRoot,
  readOnlyRootFilesystem, allowPrivilegeEscalation, capabilities.drop ALL, seccomp RuntimeDefault;
* readiness and liveness probes (hack/kubelet/probes.py) driving Ready and restarts;
  restartPolicy with the kubelet's back-off; terminationGracePeriodSeconds then SIGKILL;
  activeDeadlineSeconds; the termination message (a file, or the log's tail on error).

Commands run from this machine — the "image" is the runner's Python (its virtual environment and
interpreter, bound read-only into the namespace), ``--image-path`` and ``--image-env``. An image of
the ``--registry`` (hack/registry.py) is pulled for real by digest (hack/kubelet/pull.py): the
container sees its folders (the model at /model) and its Env, runs its entrypoint when the pod
gives no command, and waits in ErrImagePull/ImagePullBackOff when the pull fails; pods reach that
registry at the same address (hack/kubelet/relay.py), crane on their PATH. ``--share`` names host
folders every pod sees read-write at the same path (the data and remotes a ModelDeployment
names). Anything else in the pod spec fails the pod with reason UnsupportedField naming the field
(hack/kubelet/podspec.py). Each pod has its own network namespace and IP on a bridge (hack/kubelet/network.py), unless
``--host-network``; with its own network a pod also gets its own hostname and a kubelet-written
/etc/hosts that answers for the pods of its ``subdomain``'s headless Service as cluster DNS would
(hack/kubelet/hosts.py).
Not for production: no resource limits; every other pod stays with kwok. Needs root.
A little over 400 lines: one pod's lifecycle (pull, init containers, restarts, status) reads in one
place; every part that stands alone lives in hack/kubelet/.

    python -m hack.process_runner --kubeconfig KUBECONFIG [--node local-runner] [--share DIR]...
        [--registry 127.0.0.1:PORT [--crane PATH]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
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

from hack.kubelet import hosts, network, podspec, probes, pull, relay, status, volumes
from hack.kubelet.image import BASE_PATH, Image
from hack.kubelet.image import from_runner as image_from
from hack.kubelet.node import Node
from hack.kubelet.podspec import Refused
from hack.kubelet.status import POD_IP

log = logging.getLogger("process-runner")
MAX_MESSAGE = 4096
SANDBOX = Path(__file__).resolve().parent / "kubelet" / "sandbox.py"


@dataclass
class PodRun:
    pod: dict[str, Any]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    ready: bool = False
    restarts: int = 0
    last_state: dict[str, Any] | None = None
    killed_because: str = ""  # why the runner stopped the process (liveness, deadline)
    ip: str = POD_IP
    netns: str | None = None
    target: probes.Target | None = None  # the running container, for an exec preStop hook
    pulled: dict[str, pull.Pulled] = field(default_factory=dict)  # container name -> its pulled image
    relay: relay.Relay | None = None

    @property
    def key(self) -> str:
        """Short and unique: names the pod's network namespace."""
        return str(self.pod["metadata"]["uid"]).replace("-", "")[:10]


class Runner:
    """Watches the node's pods and runs them. Touches the API, processes and the filesystem."""

    def __init__(
        self, api: client.CoreV1Api, coord: client.CoordinationV1Api, node: str, workroot: Path,
        image: Image | None = None, shared: Sequence[str] = (), net: network.Pods | None = None,
        puller: pull.Puller | None = None,
    ) -> None:
        self.api, self.coord, self.node, self.workroot = api, coord, node, workroot
        self.image = image or Image([], {}, None)
        self.shared, self.net, self.puller = list(shared), net, puller
        self.runs: dict[str, PodRun] = {}
        self.stop = threading.Event()

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
                    self.on_pod(event["type"], client.ApiClient().sanitize_for_serialization(event["object"]))
            except ApiException as exc:
                log.warning("watch restarted: %s", exc.reason)
                time.sleep(1)

    def on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if kind == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            run = self.runs.get(uid)
            if run and not run.cancelled.is_set():
                run.cancelled.set()
                threading.Thread(target=self._terminate, args=(run, pod, kind != "DELETED"), daemon=True).start()
            elif not run and kind != "DELETED":
                self._delete(pod)
            return
        if uid in self.runs or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        run = PodRun(pod, Path(tempfile.mkdtemp(prefix=f"{pod['metadata']['name']}-", dir=self.workroot)))
        self.runs[uid] = run
        threading.Thread(target=self.run_pod, args=(run,), daemon=True).start()

    def _terminate(self, run: PodRun, pod: dict[str, Any], delete: bool) -> None:
        """SIGTERM, terminationGracePeriodSeconds (the deletion's own grace first), then SIGKILL."""
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        grace = float(grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30))
        start = time.monotonic()
        if run.proc is not None and run.proc.poll() is None and (
            done := probes.pre_stop(run.pod["spec"]["containers"][0], run.target, grace)
        ):
            log.info("pod %s: %s", pod["metadata"]["name"], done)
        # as the kubelet: a hook that used up the grace period leaves 2 s before SIGKILL
        self._kill(run, max(grace - (time.monotonic() - start), 2.0))
        if delete:
            self._delete(pod)

    def _kill(self, run: PodRun, grace: float) -> None:
        proc = run.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.info("pod %s: grace of %.0fs over, SIGKILL", run.pod["metadata"]["name"], grace)
        with contextlib.suppress(ProcessLookupError):  # the group's other processes too
            os.killpg(proc.pid, signal.SIGKILL)

    def _delete(self, pod: dict[str, Any]) -> None:
        try:
            self.api.delete_namespaced_pod(pod["metadata"]["name"], pod["metadata"]["namespace"],
                                           grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not delete pod %s: %s", pod["metadata"]["name"], exc.reason)

    def run_pod(self, run: PodRun) -> None:
        try:
            podspec.check_fields(run.pod["spec"])
            vols = volumes.prepare(run.pod, run.workdir)
            if self.net:
                run.netns, run.ip = self.net.add(run.key)
            if self.puller and run.netns:
                host, port = self.puller.registry.rsplit(":", 1)
                run.relay = relay.Relay(run.netns, host, int(port))
        except (Refused, network.NetworkError, OSError) as exc:
            why = exc if isinstance(exc, Refused) else Refused("NetworkNotReady", str(exc))
            self._finish(run, "Failed", {"waiting": {"reason": why.reason, "message": why.message}}, why)
            return
        run.pod.setdefault("status", {}).update(podIP=run.ip, hostIP=POD_IP)  # for fieldRefs
        names = hosts.start(run.pod, run.ip, run.workdir / "hosts", self.api) if run.netns else threading.Event()
        try:
            if self._pull_images(run):
                self._run_all(run, vols)
        finally:
            names.set()
            if run.relay:
                run.relay.close()
            if self.net and run.netns:
                self.net.remove(run.key, run.ip)

    def _pull_images(self, run: PodRun) -> bool:
        """Pull every container image of the registry (retrying with back-off); False if cancelled."""
        spec = run.pod["spec"]

        def report(state: dict[str, Any]) -> None:
            self._patch_status(run, self._status(run, "Pending", state))

        for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
            if self.puller and self.puller.wants(c.get("image", "")):
                report({"waiting": {"reason": "ContainerCreating", "message": f'pulling image "{c["image"]}"'}})
                got = pull.pull_until_done(self.puller, c["image"], report, run.cancelled)
                if got is None:
                    return False
                run.pulled[c["name"]] = got
        return True

    def _run_all(self, run: PodRun, vols: dict[str, dict[str, Any]]) -> None:
        """Init containers in order, then the container, restarted as restartPolicy says."""
        spec = run.pod["spec"]
        self._patch_status(run, self._status(run, "Pending", {"waiting": {"reason": "PodInitializing"}}))
        if deadline := spec.get("activeDeadlineSeconds"):
            timer = threading.Timer(float(deadline), self._deadline, args=(run,))
            timer.daemon = True
            timer.start()
        for i, init in enumerate(spec.get("initContainers") or []):
            code, state = self._run_container(run, init, f"spec.initContainers[{i}]", vols)
            if code != 0:
                failed = f"init container {init['name']} exited {code}"
                init_why = status.why(state) or Refused("InitContainerFailed", failed)
                waiting = {"waiting": {"reason": init_why.reason, "message": init_why.message}}
                self._finish(run, "Failed", waiting, init_why, init_status=(init["name"], code))
                return
        policy, backoff = spec.get("restartPolicy", "Always"), 10.0
        while True:
            code, state = self._run_container(run, spec["containers"][0], "spec.containers[0]", vols)
            again = policy == "Always" or (policy == "OnFailure" and code != 0)
            if run.cancelled.is_set() or not again or "waiting" in state:
                break
            run.restarts, run.last_state = run.restarts + 1, state
            waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": f"back-off {backoff:.0f}s"}}
            self._patch_status(run, self._status(run, "Running", waiting))
            if run.cancelled.wait(backoff):
                break
            backoff = min(backoff * 2, 300.0)
        if run.cancelled.is_set() and run.killed_because != "DeadlineExceeded":
            return  # deleted: the pod object goes away
        phase = "Succeeded" if code == 0 and "terminated" in state else "Failed"
        why = status.why(state)
        if run.killed_because == "DeadlineExceeded":
            why = Refused("DeadlineExceeded", "pod ran past activeDeadlineSeconds")
        self._finish(run, phase, state, why)
        if phase == "Succeeded":
            shutil.rmtree(run.workdir, ignore_errors=True)
        else:
            log.warning("pod %s failed; its files are in %s", run.pod["metadata"]["name"], run.workdir)

    def _deadline(self, run: PodRun) -> None:
        if run.proc is not None and not run.cancelled.is_set():
            run.killed_because = "DeadlineExceeded"
            run.cancelled.set()
            self._kill(run, float(run.pod["spec"].get("terminationGracePeriodSeconds", 30)))

    def _run_container(
        self, run: PodRun, c: dict[str, Any], where: str, vols: dict[str, dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        """Start one container and wait for it; returns (exit code, its state for containerStatuses)."""
        if run.cancelled.is_set():
            return 137, {"terminated": {"exitCode": 137, "reason": "Error"}}
        started = status.now()
        try:
            ident, env, plan_file, term_file = self._plan(run, c, where, vols)
        except Refused as exc:
            return 128, {"waiting": {"reason": exc.reason, "message": exc.message}}
        log_fd = os.open(run.workdir / f"{c['name']}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as out:
            run.proc = subprocess.Popen([sys.executable, str(SANDBOX), str(plan_file)], env={"PATH": BASE_PATH},
                                        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        is_main = where.startswith("spec.containers")
        stop = threading.Event()
        if is_main:
            self._start_probes(run, c, ident, env, stop)
        code = run.proc.wait()
        stop.set()
        run.ready = False
        code = code if code >= 0 else 128 - code
        error = Path(f"{plan_file}.error")
        message = error.read_text() if error.exists() else ""
        plan_file.unlink(missing_ok=True)
        if message:
            return 128, {"terminated": {"exitCode": 128, "reason": "StartError", "message": message[:MAX_MESSAGE],
                                        "startedAt": started, "finishedAt": status.now()}}
        message = term_file.read_bytes()[:MAX_MESSAGE].decode("utf-8", "replace")
        if not message and code != 0 and c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = (run.workdir / f"{c['name']}.log").read_bytes()[-2048:].decode("utf-8", "replace")
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "startedAt": started,
                      "finishedAt": status.now()}
        if message:
            terminated["message"] = message
        if run.killed_because and run.killed_because != "DeadlineExceeded":
            terminated["message"] = run.killed_because
            run.killed_because = ""
        return code, {"terminated": terminated}

    def _plan(
        self, run: PodRun, c: dict[str, Any], where: str, vols: dict[str, dict[str, Any]]
    ) -> tuple[podspec.Identity, dict[str, str], Path, Path]:
        """Write the sandbox plan for one container: identity, environment, mounts, command."""
        pod, pulled = run.pod, run.pulled.get(c["name"])
        ident = podspec.identity(c, pod, where, pulled.config.get("User", "") if pulled else "")
        home = "/root" if ident.uid == 0 else "/"
        base = {"PATH": BASE_PATH, "HOME": home, "HOSTNAME": hosts.hostname(pod), "LANG": "C.UTF-8",
                **(pulled.env() if pulled else {}), **self.image.env}
        env = podspec.container_env(c, pod, base, self._lookup, where)
        term_file = run.workdir / "term" / c["name"]
        term_file.parent.mkdir(exist_ok=True)
        term_file.write_text("")
        os.chown(term_file, ident.uid, ident.gid)
        command, args = c.get("command") or [], c.get("args") or []
        argv = [podspec.expand(a, env) for a in (pulled.argv(command, args) if pulled else command + args)]
        if not argv:
            raise Refused("UnsupportedField", f"{where}.command: empty; the process runner runs an image's "
                          "entrypoint only for images of its --registry")
        files = [(c.get("terminationMessagePath") or "/dev/termination-log", str(term_file), False),
                 *volumes.with_user(ident.uid, ident.gid, env.get("HOME", "/"), term_file.parent),
                 *([("/etc/hosts", str(run.workdir / "hosts"), True)] if run.netns else [])]
        mounts = (pulled.mounts() if pulled else []) + volumes.plan(
            c, vols, home=self.image.home, image_paths=self.image.paths, shared=self.shared, files=files)
        cwd = c.get("workingDir") or (pulled.config.get("WorkingDir") if pulled else None) or "/"
        plan = {"argv": argv, "env": env, "cwd": cwd, "mounts": mounts, "netns": run.netns,
                "hostname": hosts.hostname(pod) if run.netns else None,
                "identity": {"uid": ident.uid, "gid": ident.gid, "groups": list(ident.groups),
                             "read_only_root": ident.read_only_root, "no_new_privs": ident.no_new_privs,
                             "drop_all_caps": ident.drop_all_caps, "seccomp": ident.seccomp}}
        plan_file = run.workdir / f"{c['name']}.plan.json"
        plan_file.write_text(json.dumps(plan))
        plan_file.chmod(0o600)  # it holds the container's secrets
        return ident, env, plan_file, term_file

    def _lookup(self, kind: str, ns: str, name: str) -> dict[str, str] | None:
        try:
            if kind == "Secret":
                return podspec.decode_secret(cast(dict[str, str], self.api.read_namespaced_secret(name, ns).data))
            return dict(self.api.read_namespaced_config_map(name, ns).data or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _start_probes(
        self, run: PodRun, c: dict[str, Any], ident: podspec.Identity, env: dict[str, str], stop: threading.Event
    ) -> None:
        assert run.proc is not None
        ports = {p["name"]: int(p["containerPort"]) for p in c.get("ports") or [] if p.get("name")}
        target = probes.Target(run.ip, ports, run.proc.pid, ident.uid, ident.gid, c.get("workingDir") or "/", env)
        run.target = target
        running = {"running": {"startedAt": status.now()}}

        def on_ready(ok: bool, detail: str) -> None:
            run.ready = ok
            log.info("pod %s readiness: %s (%s)", run.pod["metadata"]["name"], ok, detail)
            self._patch_status(run, self._status(run, "Running", running))

        def on_alive(ok: bool, detail: str) -> None:
            if not ok:
                run.killed_because = f"liveness probe failed: {detail}"
                log.info("pod %s: %s; restarting per restartPolicy", run.pod["metadata"]["name"], detail)
                self._kill(run, float(run.pod["spec"].get("terminationGracePeriodSeconds", 30)))

        run.ready = "readinessProbe" not in c
        self._patch_status(run, self._status(run, "Running", running))
        if probe := c.get("readinessProbe"):
            probes.Prober(probe, target, on_ready, stop, initial=False).start()
        if probe := c.get("livenessProbe"):
            probes.Prober(probe, target, on_alive, stop, initial=True).start()

    def _status(self, run: PodRun, phase: str, state: dict[str, Any]) -> dict[str, Any]:
        main = run.pulled.get(run.pod["spec"]["containers"][0]["name"])
        return status.pod_status(run.pod, phase, state, ready=run.ready, restarts=run.restarts,
                                 last_state=run.last_state, pod_ip=run.ip, image_id=main.image_id if main else "")

    def _finish(self, run: PodRun, phase: str, state: dict[str, Any], why: Refused | None = None,
                init_status: tuple[str, int] | None = None) -> None:
        run.ready = False
        body = self._status(run, phase, state)
        if why:
            body["status"].update(reason=why.reason, message=why.message)
        if init_status:
            name, code = init_status
            body["status"]["initContainerStatuses"] = status.init_failed(name, code)
        self._patch_status(run, body)
        log.info("pod %s/%s finished: %s %s", run.pod["metadata"]["namespace"], run.pod["metadata"]["name"], phase,
                 json.dumps(state))

    def _patch_status(self, run: PodRun, body: dict[str, Any]) -> None:
        meta = run.pod["metadata"]
        try:
            self.api.patch_namespaced_pod_status(meta["name"], meta["namespace"], body)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not patch pod %s/%s: %s", meta["namespace"], meta["name"], exc.reason)

    def shutdown(self) -> None:
        self.stop.set()
        for run in self.runs.values():
            run.cancelled.set()
            if run.proc and run.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.proc.pid, signal.SIGTERM)
            if self.net and run.netns:  # the pods' threads die with the runner: their namespaces go now
                self.net.remove(run.key, run.ip)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.process_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--node", default="local-runner")
    parser.add_argument("--workdir", type=Path, default=None, help="where pods' folders go (default: a temp dir)")
    parser.add_argument("--share", action="append", default=[], help="host folder every pod sees read-write")
    parser.add_argument("--image-path", action="append", default=[], help="host path pods see read-only")
    parser.add_argument("--image-env", action="append", default=[], help="variable of the runner pods get")
    parser.add_argument("--registry", help="HOST:PORT of the local registry (hack/registry.py) whose images are "
                        "pulled; pods reach it at that address")
    parser.add_argument("--crane", help="crane binary for pulls, on pods' PATH too (default: crane on PATH)")
    parser.add_argument("--host-network", dest="pod_network", action="store_false",
                        help="pods share this machine's network (pod IP 127.0.0.1) instead of one netns each")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if os.geteuid() != 0:
        parser.error("the process runner needs root: it makes a mount namespace per container and drops to its UID")
    config.load_kube_config(config_file=args.kubeconfig)
    workroot = args.workdir or Path(tempfile.mkdtemp(prefix="process-runner-"))
    workroot.mkdir(parents=True, exist_ok=True)
    crane = args.crane or shutil.which("crane") or ""
    if args.registry and not crane:
        parser.error("--registry needs crane: give --crane PATH (bash hack/build-binaries.sh builds it)")
    image = image_from(args.image_path, args.image_env, [os.path.dirname(os.path.realpath(crane))] if crane else [])
    puller = pull.Puller(args.registry, crane, workroot / "images") if args.registry else None
    net = None
    if args.pod_network and (missing := network.available()):
        parser.error(f"pod networking: {missing}; or run with --host-network")
    if args.pod_network:
        net = network.Pods()
    runner = Runner(client.CoreV1Api(), client.CoordinationV1Api(), args.node, workroot, image, args.share, net,
                    puller)

    def on_signal(signum: int, _frame: object) -> None:
        runner.shutdown()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    node = Node(runner.api, runner.coord, args.node, runner.stop)
    node.register()
    threading.Thread(target=node.heartbeat_loop, daemon=True).start()
    log.info("node %s registered; running its pods under %s", args.node, workroot)
    runner.watch_pods()
    return 0


if __name__ == "__main__":
    sys.exit(main())

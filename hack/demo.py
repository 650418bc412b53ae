"""`make demo`: the tutorial's story end to end on this machine, with the real operator and trainer.

1. Start the local control plane; kwok's nodes are tainted so that only the dev-only process
   runner's node (hack/process_runner.py) takes pods: the operator's step Jobs run there as real
   processes of the trainer CLI (`dvc exp run` on the CPU), as the pod spec says (UID 65532,
   read-only root, private /tmp and /work), on a bare copy of the project (the git server they
   push experiments to); the serving Deployment's pods run there as real `freshness-serve`
   processes, each with its own pod IP (hack/demo_serving.py).
2. Install the CRD and RBAC with the Helm chart (operator replicas 0) and run the operator as a
   local process with the chart's ServiceAccount token, so the demo also proves its RBAC.
3. Make the sample data, train the serving model v1 on two classes, package it, create the serving
   Deployment, its Service and a ModelDeployment, and start the load generator (hack/loadgen.py,
   hack/demo_traffic.py): production images as v2 requests to the ready endpoints, iid until a
   clean check, then the mix where bees appear. The server captures them (no labels); the
   operator finds drift in that capture, trains two candidates, gates the best, packages it and
   rolls the Deployment while the traffic goes on; the new model's own checks follow.
4. Act two (unless --no-act-two): rotated images arrive and a permissive policy lets a candidate
   with a corrupt model file through; its pods never become ready, the rollout misses its
   deadline, the operator rolls back, the previous model keeps answering.
5. A real Prometheus scrapes the operator and evaluates the chart's alert rules
   (hack/demo_prometheus.py); the summary prints each alert's transitions and the drift score
   series as Prometheus recorded them, the live accuracy before and after, the failed requests
   during the rollout and the rollback, and the time to fresh split by step.

Prints a timeline; ends with a summary (also written to <workdir>/summary.json) and a picture of
the run (<workdir>/timeline.png, hack/timeline_png.py); stops every process it started, on Ctrl-C too.
A little over 400 lines: the set-up steps in the order they run, one method each; the story
(demo_story), the serving side (demo_serving), the traffic (demo_traffic, loadgen) and the summary
(demo_summary) are modules of their own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hack import demo_prometheus, demo_serving, demo_story, demo_summary, demo_traffic, localcluster, registry
from hack.demo_evidence import Evidence
from hack.demo_timeline import DemoError, Timeline, say
from hack.loadgen import LoadGen
from hack.prometheus import Prometheus

REPO = Path(__file__).resolve().parent.parent
NAMESPACE = "demo"
MDEP = "cats-dogs"
TAINT = "modelfreshness.io/simulated=true:NoSchedule"
CHART = REPO / "charts" / "model-freshness-operator"
RELEASE = "freshness"
REPO_NAME = "cats-dogs"  # spec.serving.image is <registry>/cats-dogs: the package step pushes <that>:<version>
PROGRESS_DEADLINE = 120  # seconds, the Deployment's and the operator's: two pod starts under load, not more
WINDOW = 150  # spec.drift.newest: each check reads the newest captured requests (30 s at 5 per second)
# Images per production folder the load generator loops over: 1,000 (not make-sample-data's 200), so
# that a window of 150 is a fresh draw of the stream, not most of one fixed sample whose luck every
# check of a model would share (the new model's checks on the bee mix must be clean, issue 14).
PRODUCTION = 1000


class Demo:
    def __init__(self, work: Path, timeout: float, project: Path, act_two: bool = True, rate: float = 5.0) -> None:
        self.work = work
        self.namespace, self.name = NAMESPACE, MDEP
        self.act_two = act_two
        self.rate = rate
        self.loadgen: LoadGen | None = None
        self.evidence = Evidence(work / "pods")
        self.registry: registry.Registry | None = None
        self.base_image = ""
        self.capture = work / "capture"
        self.story = demo_traffic.Story()
        self.broken_rev = "HEAD"
        self.v1_image = ""
        self.project = project
        self.timeout = timeout
        self.procs: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}
        self.cluster: localcluster.ClusterInfo | None = None
        self.prometheus: Prometheus | None = None
        self.timeline = Timeline()
        self.operator_started = time.time()
        self.venv_bin = Path(sys.executable).parent

    # ------------------------------------------------------------------ helpers
    def env(self, **extra: str) -> dict[str, str]:
        assert self.cluster
        env = self.cluster.env()
        env["PATH"] = f"{self.venv_bin}{os.pathsep}{env['PATH']}"
        env.setdefault("GIT_AUTHOR_NAME", "Model Freshness Demo")
        env.setdefault("GIT_AUTHOR_EMAIL", "demo@localhost")
        env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
        env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
        env["DVC_NO_ANALYTICS"] = "1"
        env.update(extra)
        return env

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        assert self.cluster
        out = localcluster.kubectl(self.cluster, *args, input=input, check=False)
        if check and out.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        self.named[name] = proc
        return proc

    def run(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(argv, env=self.env(), text=True, capture_output=True, **kw)
        if out.returncode != 0:
            raise DemoError(f"{' '.join(argv[:3])} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        return out

    # ------------------------------------------------------------------ steps
    def start_cluster(self) -> None:
        say("starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        self.cluster = localcluster.up(self.work / "cluster")
        self.kubectl("taint", "nodes", "-l", "type=kwok", TAINT, "--overwrite")
        self.kubectl("create", "namespace", NAMESPACE)
        say(f"control plane up at {self.cluster.server}; logs in {self.cluster.log_dir}")
        self.registry = registry.start(self.work / "registry")
        self.base_image = registry.publish_server_base(self.registry)
        say(f"image registry at {self.registry.host} (hack/registry.py); the server base image {self.base_image}")

    def install_chart(self) -> Path:
        assert self.cluster
        say("installing the CRD and RBAC with the Helm chart (operator runs locally: replicas=0)")
        helm = self.cluster.bin_dir / "helm"
        self.run(
            [
                str(helm),
                "install",
                RELEASE,
                str(CHART),
                "--namespace",
                "freshness-system",
                "--create-namespace",
                "--set",
                "replicas=0",
                "--wait",
                "--timeout",
                "120s",
            ]
        )
        sa = self.kubectl(
            "get",
            "sa",
            "-n",
            "freshness-system",
            "-l",
            "app.kubernetes.io/instance=" + RELEASE,
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ).strip()
        token = self.kubectl("create", "token", sa, "-n", "freshness-system", "--duration=2h").strip()
        cfg = json.loads(self.kubectl("config", "view", "--raw", "-o", "json"))
        cfg["users"] = [{"name": "operator", "user": {"token": token}}]
        cfg["contexts"] = [{"name": "operator", "context": {"cluster": cfg["clusters"][0]["name"], "user": "operator"}}]
        cfg["current-context"] = "operator"
        path = self.work / "operator.kubeconfig"
        path.write_text(json.dumps(cfg))
        path.chmod(0o600)
        say(f"operator identity: system:serviceaccount:freshness-system:{sa}")
        return path

    def start_runner(self) -> None:
        # The step pods run as the operator's non-root UID in their own mount namespace: they see
        # the data, the production folder, the reports, the DVC remote and the project's git
        # repository (the storage a ModelDeployment names) through --share; the "image" is this
        # virtual environment, PYTHONPATH and the trainer image's git identity.
        shares = [self.work / d for d in ("data", "capture", "reports", "remote", "project.git")]
        image_env = ("PYTHONPATH", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
        argv = [sys.executable, "-m", "hack.process_runner", "--workdir", str(self.work / "pods")]
        argv += [f"--share={p}" for p in shares] + [f"--image-env={n}" for n in image_env]
        assert self.registry
        argv += [f"--registry={self.registry.host}", f"--crane={self.registry.crane}"]
        self.spawn(
            "process-runner",
            argv,
            self.env(PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "True" in self.kubectl(
                "get",
                "node",
                "local-runner",
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            ):
                say("process runner node local-runner is Ready (step Jobs and serving pods run here as processes)")
                return
            time.sleep(0.5)
        raise DemoError(f"the process runner did not register its node; see {self.work / 'process-runner.log'}")

    def start_operator(self, kubeconfig: Path) -> None:
        env = self.env(
            KUBECONFIG=str(kubeconfig),
            FRESHNESS_NAMESPACES=NAMESPACE,
            FRESHNESS_METRICS_PORT=str(localcluster.free_port()),
            FRESHNESS_HEALTH_PORT=str(localcluster.free_port()),
            FRESHNESS_TRAINER_IMAGE="registry.local/freshness-trainer:demo",
        )
        self.metrics_port = env["FRESHNESS_METRICS_PORT"]
        self.operator_started = time.time()
        self.spawn("operator", [sys.executable, "-m", "freshness_operator"], env)
        say(f"operator started (log {self.work / 'operator.log'}, metrics :{self.metrics_port}/metrics)")
        assert self.cluster
        try:
            self.prometheus = demo_prometheus.start(
                self.work / "prometheus", self.cluster.bin_dir / "helm", CHART, f"127.0.0.1:{self.metrics_port}"
            )
        except (OSError, RuntimeError) as exc:  # not installed, refused its config, or never ready
            raise DemoError(f"Prometheus did not start: {exc}") from exc
        say(
            f"Prometheus at {self.prometheus.url} scrapes the operator every {demo_prometheus.INTERVAL}s and "
            f"evaluates the chart's alert rules ({demo_prometheus.DRIFT_ALERT} for: {demo_prometheus.DRIFT_FOR})"
        )

    def make_project(self) -> None:
        """A bare copy of the project: the git server the training pods clone from and push
        experiments to (not the user's checkout)."""
        bare = self.work / "project.git"
        self.run(["git", "clone", "--bare", "--quiet", str(self.project), str(bare)])
        self.project = bare
        self.broken_rev = demo_serving.broken_revision(bare, self.env())
        say(f"project copy {bare}; act two's branch {demo_serving.BROKEN_BRANCH} ({self.broken_rev[:8]}) "
            "corrupts its model file")

    def grant_step_uid(self) -> None:
        """The step pods run as UID 65532: give it the folders they write (as one would a volume)."""
        from freshness_operator.builders import NONROOT_UID

        (self.work / "reports").mkdir(exist_ok=True)
        for top in ("reports", "remote", "project.git", "capture"):
            for path in [self.work / top, *(self.work / top).rglob("*")]:
                os.chown(path, NONROOT_UID, NONROOT_UID, follow_symlinks=False)

    def make_data(self) -> Path:
        data = self.work / "data"
        say("making the sample data set from images shipped in scikit-learn and scikit-image")
        self.run(["freshness-trainer", "make-sample-data", str(data), "--production", str(PRODUCTION)])
        self.capture.mkdir()
        return data

    def train_v1(self, data: Path, reuse: Path | None = None) -> dict[str, Any]:
        result = self.work / "v1-result.json"
        if reuse is not None:  # development: the result of an earlier run's v1 (same sample data: same seed)
            earlier: dict[str, Any] = json.loads((reuse / "v1-result.json").read_text())
            model = self.work / "remote" / "models" / "v1" / "model.pt"
            model.parent.mkdir(parents=True)
            shutil.copyfile(earlier["train"]["model"], model)
            earlier["train"]["model"] = str(model)
            result.write_text(json.dumps(earlier))
            say(f"v1 reused from {reuse}: val_acc={earlier['train']['metrics'].get('val_acc')}, model {model}")
            return earlier
        say("training the serving model v1 on two classes (cats, dogs) with `dvc exp run`")
        self.run(
            [
                "freshness-trainer",
                "train",
                "--repo",
                str(self.project),
                "--rev",
                "HEAD",
                "--set",
                f"data.source={data / 'reference'}",
                "--set",
                "train.num_classes=2",
                "--name",
                "v1",
                "--remote",
                str(self.work / "remote"),
                "--result-path",
                str(result),
            ],
            cwd=self.work,
            timeout=900,
        )
        doc: dict[str, Any] = json.loads(result.read_text())
        say(f"v1: val_acc={doc['train']['metrics'].get('val_acc', float('nan')):.3f}, model {doc['train']['model']}")
        return doc

    def create_serving(self, v1_model: str, data: Path) -> None:
        assert self.registry
        # as the package step does: the model layer onto the server base, pushed; pinned by the registry's digest
        v1_image = self.v1_image = registry.push_model(self.registry, Path(v1_model), REPO_NAME, "v1", self.base_image)
        say(f"v1 packaged and pushed: {v1_image}")
        dep = demo_serving.deployment(MDEP, v1_image, self.capture, PROGRESS_DEADLINE)
        self.apply({**dep, "metadata": {**dep["metadata"], "namespace": NAMESPACE}})
        self.apply({**demo_serving.service(MDEP), "metadata": {"name": MDEP, "namespace": NAMESPACE}})
        self.kubectl("rollout", "status", f"deployment/{MDEP}", "-n", NAMESPACE, "--timeout=300s")
        say(f"serving Deployment {MDEP} runs {v1_image}: 2 freshness-serve processes, each with its own pod IP")
        self.loadgen = demo_traffic.start(self.cluster_api(), NAMESPACE, MDEP, data / "production", self.rate)
        manifest = {
            "apiVersion": "modelfreshness.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": MDEP, "namespace": NAMESPACE},
            "spec": {
                "source": {"repo": str(self.project), "revision": "HEAD"},
                # data.current is the server's capture: unlabelled, time-partitioned
                "data": {"reference": str(data / "reference"), "current": str(self.capture)},
                "serving": {"deployment": MDEP, "container": "server", "image": self.registry.ref(REPO_NAME),
                            "modelUri": v1_model},
                "drift": {
                    "interval": "10s",
                    "minSamples": 100,
                    "newest": WINDOW,
                    "consecutive": 1,
                    "reportDir": str(self.work / "reports"),
                },
                "training": {
                    # params.yaml's defaults learn the third class on the CPU (val_acc ~0.9).
                    "params": {"train.num_classes": 3, "data.source": str(data / "extended")},
                    "candidates": [{"train.lr": 0.001}, {"train.lr": 0.0003}],
                    "maxParallel": 2,
                    "remote": str(self.work / "remote"),
                },
                "package": {"push": True, "baseImage": self.base_image},
                "promotion": {"metric": "val_acc", "minImprovement": 0.05},
                "rollout": {"progressDeadlineSeconds": PROGRESS_DEADLINE, "autoRollback": True},
                # a false alarm of the new model's own checks must not retrain it again (act two shortens it)
                "policy": {"cooldown": "30m", "maxRetrainsPerDay": 2},
            },
        }
        (self.work / "modeldeployment.json").write_text(json.dumps(manifest, indent=2))
        self.apply(manifest)
        say(f"ModelDeployment {MDEP} applied: drift checks every 10s on the newest {WINDOW} captured requests")

    def cluster_api(self) -> Any:
        from kubernetes import config

        assert self.cluster
        return config.new_client_from_config(config_file=self.cluster.env()["KUBECONFIG"])

    def mdep(self) -> dict[str, Any]:
        out = self.kubectl("get", "mdep", MDEP, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(out) if out else {}

    def mdep_events(self) -> list[dict[str, Any]]:
        out = self.kubectl(
            "get",
            "events",
            "-n",
            NAMESPACE,
            "--field-selector",
            f"involvedObject.kind=ModelDeployment,involvedObject.name={MDEP}",
            "-o",
            "json",
            check=False,
        )
        items: list[dict[str, Any]] = json.loads(out)["items"] if out else []
        return items

    def watch(self, data: Path) -> dict[str, Any]:
        return demo_story.watch(self)

    def check_children_alive(self) -> None:
        for name, proc in self.named.items():
            if proc.poll() is not None:
                raise DemoError(f"{name} exited with {proc.returncode}; see {self.work / (name + '.log')}")

    def summary(self, v1: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
        return demo_summary.write(self, v1, outcome)

    def stop(self) -> None:
        if self.loadgen:  # first: the pods are about to go, and that is no failed request of the story
            self.loadgen.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.prometheus:
            self.prometheus.stop()
        if self.registry:
            self.registry.stop()
        if self.cluster:
            localcluster.down(self.cluster.state_dir, self.cluster)
        say("stopped every process the demo started")


@contextlib.contextmanager
def interrupts_as_exit() -> Iterator[None]:
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="where data, logs and the summary go (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds the story may take once the operator runs (16 min alone on a slow 2-core VM)")
    parser.add_argument("--no-act-two", dest="act_two", action="store_false",
                        help="stop after the rollout: no broken candidate, no rollback")
    parser.add_argument("--reuse-v1", type=Path, metavar="WORKDIR",
                        help="development: take v1 from an earlier run's workdir instead of training it")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second the load generator sends")
    parser.add_argument(
        "--project", type=Path, default=REPO, help="the DVC project (a git repository) to train from; default: this one"
    )
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="freshness-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    demo = Demo(work.resolve(), args.timeout, args.project.resolve(), args.act_two, args.rate)
    with interrupts_as_exit():
        try:
            demo.start_cluster()
            kubeconfig = demo.install_chart()
            demo.start_runner()
            data = demo.make_data()
            demo.make_project()
            v1 = demo.train_v1(data, args.reuse_v1)
            demo.grant_step_uid()
            demo.create_serving(v1["train"]["model"], data)
            demo.start_operator(kubeconfig)
            outcome = demo.watch(data)
            demo.summary(v1, outcome)
        except KeyboardInterrupt:
            say("interrupted")
            return 130
        except (DemoError, localcluster.ClusterError) as exc:
            say(f"demo failed: {exc}")
            return 1
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

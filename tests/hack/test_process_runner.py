"""The dev kubelet on the real local control plane: volumes, environment, identity, probes, refusals."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from testkit.wait import wait_for
from tests.conftest import Cluster
from tests.hack.runner_kit import RUNNER_ONLY, Runner, condition, terminated

pytestmark = pytest.mark.cluster

NONROOT = {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True, "fsGroup": 65532,
           "seccompProfile": {"type": "RuntimeDefault"}}
LOCKED = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
SCRATCH = {"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "work", "mountPath": "/work"}]}
SCRATCH_VOLUMES = [{"name": "tmp", "emptyDir": {}}, {"name": "work", "emptyDir": {}}]


def test_two_pods_with_the_same_emptydir_paths_do_not_share_them(runner: Runner) -> None:
    # Each writes its own name into /tmp and /work, waits until the other has surely written too,
    # then reports what it sees there. The step pods of the operator have exactly these mounts.
    script = ('echo x > /tmp/$(POD) && echo x > /work/$(POD) && sleep 4 && '
              'echo "$(ls /tmp | grep pod-) $(ls /work | grep pod-)" > /dev/termination-log')
    env = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    for name in ("pod-a", "pod-b"):
        runner.pod(name, ["sh", "-c", script], {**SCRATCH, "env": env, "workingDir": "/work",
                                                 "securityContext": LOCKED},
                   volumes=SCRATCH_VOLUMES, securityContext=NONROOT)
    for name in ("pod-a", "pod-b"):
        pod = runner.finished(name)
        assert pod["status"]["phase"] == "Succeeded", pod["status"]
        assert terminated(pod)["message"].split() == [name, name], terminated(pod)
    assert not Path("/tmp/pod-a").exists() and not Path("/work/pod-a").exists(), "wrote to the host's folder"


def test_environment_comes_from_the_spec_and_the_api_only(runner: Runner, cluster: Cluster) -> None:
    ns = runner.namespace
    cluster.kubectl("create", "configmap", "settings", "-n", ns, "--from-literal=MODE=fast",
                    "--from-literal=LEVEL=3")
    cluster.kubectl("create", "secret", "generic", "creds", "-n", ns, "--from-literal=TOKEN=s3cret",
                    "--from-literal=USER=bob")
    env: list[dict[str, Any]] = [
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "USER"}}},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
        {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "COMBINED", "value": "$(MODE)-$(FROM_SECRET)-$$(MODE)"},
    ]
    env_from = [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}, "prefix": "S_"},
                {"secretRef": {"name": "absent-too", "optional": True}}]
    runner.pod("env", ["sh", "-c", "env > /dev/termination-log"], {"env": env, "envFrom": env_from})
    pod = runner.finished("env")
    seen = dict(line.split("=", 1) for line in terminated(pod)["message"].splitlines() if "=" in line)
    assert {k: seen.get(k) for k in ("MODE", "LEVEL", "S_TOKEN", "S_USER", "FROM_SECRET", "FROM_CM", "NS",
                                      "COMBINED")} == {
        "MODE": "fast", "LEVEL": "3", "S_TOKEN": "s3cret", "S_USER": "bob", "FROM_SECRET": "bob",
        "FROM_CM": "3", "NS": ns, "COMBINED": "fast-bob-$(MODE)"}
    assert seen["IP"] == pod["status"]["podIP"] and "GONE" not in seen
    assert "KUBECONFIG" not in seen and RUNNER_ONLY not in seen, sorted(seen)
    allowed = {"PATH", "HOME", "HOSTNAME", "LANG", "MODE", "LEVEL", "S_TOKEN", "S_USER", "PWD", "SHLVL", "_"}
    assert set(seen) <= allowed | {str(e["name"]) for e in env}, sorted(seen)


def test_a_missing_secret_fails_the_pod_naming_the_field(runner: Runner) -> None:
    env = [{"name": "A", "value": "1"}, {"name": "T", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]
    runner.pod("nosecret", ["true"], {"env": env})
    pod = runner.finished("nosecret")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "CreateContainerConfigError", pod["status"]
    assert pod["status"]["message"].startswith("spec.containers[0].env[1].valueFrom.secretKeyRef")
    assert 'secret "nope" not found' in pod["status"]["message"]


def test_the_process_runs_as_the_pods_user_locked_down(runner: Runner) -> None:
    script = ("grep -E '^(Uid|Gid|Groups|CapEff|NoNewPrivs|Seccomp):' /proc/self/status > /dev/termination-log; "
              "touch /var/tmp/pr-test 2>> /dev/termination-log; "
              "touch /work/ok && echo wrote-work >> /dev/termination-log; "
              "exec sleep 36.5")
    runner.pod("uid", ["sh", "-c", script], {**SCRATCH, "securityContext": LOCKED}, volumes=SCRATCH_VOLUMES,
               securityContext=NONROOT)
    runner.wait("uid", "Running", lambda p: p.get("status", {}).get("phase") == "Running")
    # From outside too: the process this machine runs is the pod's user.
    pid = wait_for("the pod's process", lambda: _pid_of(["sleep", "36.5"]), 30)
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split() == ["65532"] * 4 and status["Gid"].split() == ["65532"] * 4, status["Uid"]
    runner.cluster.kubectl("delete", "pod", "uid", "-n", runner.namespace, "--wait=false")
    wait_for("the process to end", lambda: not Path(f"/proc/{pid}").exists(), 30)
    message = _last_message(runner, "uid")
    fields = dict(line.split(":", 1) for line in message.splitlines() if ":" in line and line[0].isupper())
    assert fields["CapEff"].strip() == "0000000000000000" and fields["NoNewPrivs"].strip() == "1", message
    assert fields["Seccomp"].strip() == "2", message
    assert "Read-only file system" in message and "wrote-work" in message, message


def _pid_of(argv: list[str]) -> int | None:
    want = ("\0".join(argv) + "\0").encode()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes() == want:
                return int(proc.name)
        except OSError:
            continue
    return None


def _last_message(runner: Runner, name: str) -> str:
    """The termination-message file the runner keeps for a pod that was deleted."""
    files = sorted((runner.log.parent / "pods").glob(f"{name}-*/term/main"), key=lambda p: p.stat().st_mtime)
    return files[-1].read_text()


def test_deletion_waits_the_grace_period_then_kills(runner: Runner) -> None:
    runner.pod("stubborn", ["sh", "-c", "trap '' TERM; exec sleep 37.5"], terminationGracePeriodSeconds=2)
    runner.wait("stubborn", "Running", lambda p: p.get("status", {}).get("phase") == "Running")
    pid = wait_for("the pod's process", lambda: _pid_of(["sleep", "37.5"]), 30)
    start = time.monotonic()
    runner.cluster.kubectl("delete", "pod", "stubborn", "-n", runner.namespace, "--wait=false")
    time.sleep(1)
    assert Path(f"/proc/{pid}").exists(), "killed before the grace period was over"
    wait_for("SIGKILL after the grace period", lambda: not Path(f"/proc/{pid}").exists(), 20)
    assert time.monotonic() - start >= 2
    wait_for("the pod object to go", lambda: not runner.get("stubborn"), 30)


def test_deletion_runs_the_prestop_hook_before_sigterm(runner: Runner) -> None:
    # The process notes when SIGTERM came; the preStop sleep must have passed first, the process
    # still running (a server keeps answering while it leaves the endpoints).
    script = "trap 'echo $(date +%s.%N) > /dev/termination-log; exit 0' TERM; while true; do sleep 0.1; done"
    runner.pod("hooked", ["sh", "-c", script], {"lifecycle": {"preStop": {"sleep": {"seconds": 2}}}},
               terminationGracePeriodSeconds=10)
    runner.wait("hooked", "Running", lambda p: p.get("status", {}).get("phase") == "Running")
    time.sleep(1)  # the shell has set its trap
    deleted = time.time()
    runner.cluster.kubectl("delete", "pod", "hooked", "-n", runner.namespace, "--wait=false")
    wait_for("the pod object to go", lambda: not runner.get("hooked"), 30)
    term = float(_last_message(runner, "hooked").strip())
    assert 2 <= term - deleted < 8, term - deleted  # after the hook, well before the grace period's end


def test_the_init_containers_own_exit_code_is_reported(runner: Runner) -> None:
    init = [{"name": "prepare", "image": "none", "command": ["sh", "-c", "exit 3"]}]
    runner.pod("init", ["true"], initContainers=init)
    pod = runner.finished("init")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3, pod["status"]


def test_readiness_and_liveness_probes_drive_ready_and_restarts(runner: Runner) -> None:
    # Ready only once /tmp/ready exists (an exec probe, run inside the pod's own /tmp); the HTTP
    # server answers the httpGet probe; liveness fails once /tmp/dead appears: the container restarts.
    port = 20000 + int(time.time()) % 20000
    script = (f"python3 -m http.server {port} & sleep 3; touch /tmp/ready; sleep 4; "
              "touch /tmp/dead; wait")
    probe = {"periodSeconds": 1, "failureThreshold": 1}
    runner.pod("probed", ["sh", "-c", script], {
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, **probe},
        "livenessProbe": {"exec": {"command": ["test", "!", "-f", "/tmp/dead"]}, **probe},
    }, volumes=[{"name": "tmp", "emptyDir": {}}], restartPolicy="Always")
    runner.wait("probed", "Running, not Ready", lambda p: p.get("status", {}).get("phase") == "Running"
                and condition(p, "Ready") == "False")
    assert not Path("/tmp/ready").exists()
    runner.wait("probed", "Ready", lambda p: condition(p, "Ready") == "True", 30)
    pod = runner.wait("probed", "restarted by liveness", lambda p: p if p.get("status", {}).get(
        "containerStatuses", [{}])[0].get("restartCount", 0) >= 1 else None, 40)
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert "liveness probe failed" in last["message"], last
    runner.cluster.kubectl("delete", "pod", "probed", "-n", runner.namespace, "--wait=false")

    runner.pod("http", ["python3", "-m", "http.server", str(port + 1)], {
        "ports": [{"name": "web", "containerPort": port + 1}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1},
        "livenessProbe": {"tcpSocket": {"port": port + 1}, "periodSeconds": 1},
    }, restartPolicy="Always")
    runner.wait("http", "Ready through httpGet", lambda p: condition(p, "Ready") == "True", 30)
    runner.cluster.kubectl("delete", "pod", "http", "-n", runner.namespace, "--wait=false")


def test_each_pod_has_its_own_ip_so_replicas_share_a_port(runner: Runner) -> None:
    web = {"ports": [{"name": "web", "containerPort": 8080}],
           "readinessProbe": {"httpGet": {"path": "/", "port": "web"}, "periodSeconds": 1}}
    for name in ("replica-1", "replica-2"):
        runner.pod(name, ["sh", "-c", "echo $(NAME) > /tmp/index.html && cd /tmp && exec python3 -m http.server 8080"],
                   {**web, "env": [{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]},
                   volumes=[{"name": "tmp", "emptyDir": {}}], restartPolicy="Always")
    ips = {}
    for name in ("replica-1", "replica-2"):
        pod = runner.wait(name, "Ready", lambda p: p if condition(p, "Ready") == "True" else None, 60)
        ips[name] = pod["status"]["podIP"]
        with urllib.request.urlopen(f"http://{ips[name]}:8080/index.html", timeout=5) as resp:
            assert resp.read().decode().strip() == name
    assert len(set(ips.values())) == 2 and "127.0.0.1" not in ips.values(), ips
    for name in ips:
        runner.cluster.kubectl("delete", "pod", name, "-n", runner.namespace, "--wait=false")


@pytest.mark.parametrize(
    ("extra_container", "extra_spec", "field"),
    [
        ({"lifecycle": {"postStart": {"exec": {"command": ["true"]}}}}, {}, "spec.containers[0].lifecycle.postStart"),
        ({"resources": {"limits": {"memory": "64Mi"}}}, {}, "spec.containers[0].resources.limits"),
        ({}, {"hostNetwork": True}, "spec.hostNetwork"),
        ({}, {"volumes": [{"name": "v", "hostPath": {"path": "/etc"}}]}, "spec.volumes[0].hostPath"),
        ({}, {"enableServiceLinks": True}, "spec.enableServiceLinks"),
    ],
)
def test_a_field_it_cannot_honour_fails_the_pod_naming_it(
    runner: Runner, extra_container: dict[str, object], extra_spec: dict[str, object], field: str
) -> None:
    name = "refused-" + field.split(".")[-1].lower().replace("[0]", "")
    runner.pod(name, ["true"], extra_container, **extra_spec)
    pod = runner.finished(name)
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["reason"] == "UnsupportedField", pod["status"]
    assert pod["status"]["message"].startswith(field + ":"), pod["status"]["message"]


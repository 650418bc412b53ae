"""`make demo`'s serving side: the Deployment of real `freshness-serve` pods, its Service, and act
two's broken project revision.

* The serving Deployment runs on the dev kubelet's node (hack/process_runner.py): each pod is a
  `freshness-serve` process in its own network namespace with its own IP, as UID 65532 with a
  read-only root and a private /tmp (the `restricted` Pod Security level); `/v2/health/ready`
  drives Ready; `maxUnavailable: 0`, `maxSurge: 1` keep two ready pods through a rollout; a
  preStop sleep keeps a pod answering for a few seconds after it is taken out of the endpoints, so
  no client is cut off mid-request. The server captures every input (no label: it never has one)
  into the capture folder, time-partitioned, which is the ModelDeployment's `data.current`.
* The model comes from the image: the Deployment names the image pinned by the digest the
  registry reported for the push (hack/registry.py), the dev kubelet pulls it by that digest and
  shows its `/model` folder read-only (hack/kubelet/pull.py); the server reads `MODEL_PATH` from
  the image's Env, `/model/model.pt`, where `freshness-trainer package` puts the model layer.
* ``broken_revision`` commits, to the demo's own copy of the project only, a branch whose train
  stage truncates the model file it has just evaluated: act two's candidate has honest metrics
  and a corrupt model, which the server's load refuses (its pods never become Ready).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from freshness_operator.builders import NONROOT_UID

APP = "cats-dogs"
PORT = 8080
GRACE_SECONDS = 15
PRE_STOP_SECONDS = 4  # > the endpoints' update and the generator's watch; < the grace period
BROKEN_BRANCH = "demo-broken-model"


def deployment(name: str, image: str, capture: Path, progress_deadline: int) -> dict[str, Any]:
    ready = {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 1, "timeoutSeconds": 2,
             "failureThreshold": 2}
    container = {
        "name": "server",
        "image": image,
        "command": ["freshness-serve"],
        "env": [
            {"name": "MODEL_NAME", "value": APP},
            {"name": "GRPC_PORT", "value": "0"},
            {"name": "HOME", "value": "/tmp"},
            {"name": "FRESHNESS_CAPTURE_URI", "value": str(capture)},
            {"name": "FRESHNESS_TORCH_THREADS", "value": "1"},
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": ready,
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # the opt-in: only ModelDeployment `name` may patch this Deployment's image
        "metadata": {"name": name, "labels": {"modelfreshness.io/serving-for": name}},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": progress_deadline,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}},
                "spec": {
                    "nodeSelector": {"modelfreshness.io/runner": "local"},
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": GRACE_SECONDS,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": NONROOT_UID, "runAsGroup": NONROOT_UID,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": APP}, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
    }


def broken_revision(bare: Path, env: dict[str, str]) -> str:
    """Commit BROKEN_BRANCH to the bare project ``bare``; returns its commit."""
    with tempfile.TemporaryDirectory(prefix="broken-") as tmp:
        work = Path(tmp) / "p"
        subprocess.run(["git", "clone", "--quiet", str(bare), str(work)], check=True, env=env)
        doc = yaml.safe_load((work / "dvc.yaml").read_text())
        stages = doc["stages"]
        train, evaluate = stages["train"], stages.pop("evaluate")
        corrupt = ("python -c \"import pathlib; p = pathlib.Path('models/model.pt'); "
                   "p.write_bytes(p.read_bytes()[:4096])\"")
        train["cmd"] = f"{train['cmd']} && {evaluate['cmd']} && {corrupt}"
        train["metrics"] = [*train.get("metrics", []), *evaluate.get("metrics", [])]
        train["plots"] = evaluate.get("plots", [])
        (work / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        git = ["git", "-C", str(work)]
        subprocess.run([*git, "checkout", "--quiet", "-b", BROKEN_BRANCH], check=True, env=env)
        subprocess.run([*git, "commit", "--quiet", "-am", "demo act two: the train stage corrupts its model file"],
                       check=True, env=env)
        subprocess.run([*git, "push", "--quiet", "origin", BROKEN_BRANCH], check=True, env=env)
        rev = subprocess.run([*git, "rev-parse", "HEAD"], check=True, env=env, capture_output=True, text=True)
        return rev.stdout.strip()

"""The local registry (hack/registry.py) with the dev kubelet: real pushes, pulls by digest, pull failures.

A registry built from Go modules runs on loopback; the process runner is started with
``--registry`` so it pulls that registry's images with crane. Model bytes are small random bytes,
except for the server test, which needs a model the real server can load.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from freshness_operator import builders
from freshness_operator.core.actions import CreatePackageJob
from freshness_trainer import engine, model, sampledata
from freshness_trainer.serve.local import post_json

from hack import localcluster, registry
from hack.kubelet import pull
from hack.kubelet.podspec import Refused
from tests.conftest import Cluster
from tests.hack.runner_kit import ROOT, Runner, condition, start_runner, terminated
from tests.operator.sim import make_spec

pytestmark = pytest.mark.cluster
SRC = os.pathsep.join(str(ROOT / d) for d in ("contract", "operator", "trainer", "."))
# Reports the sha256 of the model the image's Env points at, that path, why writing there fails, the UID.
READ_MODEL = """
import errno, hashlib, os
path = os.environ["MODEL_PATH"]
digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
try:
    open("/model/new", "w")
    write = "writable"
except OSError as exc:
    write = errno.errorcode[exc.errno]
open("/dev/termination-log", "w").write(f"{digest} {path} {write} {os.getuid()}")
"""


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> Iterator[registry.Registry]:
    with registry.start(tmp_path_factory.mktemp("registry"), cluster.bin_dir) as r:
        yield r


@pytest.fixture(scope="module")
def base(reg: registry.Registry) -> str:
    return registry.publish_server_base(reg)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every pod sees (--share), readable by the operator's UID: where models come from."""
    folder = tmp_path_factory.mktemp("shared")
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def reg_runner(cluster: Cluster, reg: registry.Registry, shared: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    args = ["--registry", reg.host, "--crane", reg.crane, "--image-env", "PYTHONPATH", "--share", str(shared)]
    with start_runner(cluster, tmp_path_factory.mktemp("runner"), args, {"PYTHONPATH": SRC}) as r:
        yield r


def image_id(pinned: str) -> str:
    """``host/repo:tag@sha256:...`` -> ``host/repo@sha256:...``, the form of a kubelet's imageID."""
    name, digest = pinned.split("@")
    return f"{name.rsplit(':', 1)[0]}@{digest}"


def random_model(folder: Path, size: int = 5000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.pt").write_bytes(os.urandom(size))
    return folder / "model.pt"


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0].get("state", {}).get("waiting") or {})


def test_the_operators_package_pod_pushes_and_reports_the_registrys_digest(
    reg_runner: Runner, reg: registry.Registry, base: str, shared: Path
) -> None:
    # The operator's own package Job pod (UID 65532, read-only root, emptyDir /tmp and /work), in its
    # own network namespace: it reaches the registry at the runner's address (hack/kubelet/relay.py),
    # with crane on its PATH as in the trainer image.
    model_file = random_model(shared / "pkg")
    model_file.parent.chmod(0o755)
    model_file.chmod(0o644)
    image = reg.ref("cats-dogs", "v2")
    spec = make_spec(serving={"deployment": "cats-dogs", "container": "server", "image": reg.ref("cats-dogs")},
                     package={"baseImage": base})
    job = builders.package_job(builders.Owner("cats", reg_runner.namespace, "1234"), spec,
                               CreatePackageJob("cats-package-2", 2, str(model_file), image), "trainer:dev")
    pod_spec = job["spec"]["template"]["spec"]
    reg_runner.pod("package", [], pod_spec["containers"][0], **{k: v for k, v in pod_spec.items() if k != "containers"})
    pod = reg_runner.finished("package", timeout=180)
    assert pod["status"]["phase"] == "Succeeded", (pod["status"], reg_runner.tail())
    result = json.loads(terminated(pod)["message"])
    digest = reg.digest(image)
    assert result["package"] == {"image": f"{image}@{digest}", "digest": digest}, result
    manifest = json.loads(reg.crane_run("manifest", f"{image}@{digest}"))
    assert len(manifest["layers"]) == 2  # the server base's layer, then the model's


def test_a_pod_naming_the_image_gets_exactly_its_model_read_only(
    reg_runner: Runner, reg: registry.Registry, base: str, tmp_path: Path
) -> None:
    v1, v2 = random_model(tmp_path / "v1"), random_model(tmp_path / "v2")
    # pinned as the operator rolls it out: host/cats-dogs:v1@sha256:...
    pinned = {tag: registry.push_model(reg, source, "cats-dogs", tag, base) for tag, source in (("v1", v1), ("v2", v2))}
    # by digest, locked down as the operator's pods are (runAsNonRoot: the image's numeric user), and by
    # tag (resolved to its digest, which the status records)
    locked = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    reg_runner.pod("by-digest", ["python", "-c", READ_MODEL], {"image": pinned["v1"], "securityContext": locked},
                   securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})
    reg_runner.pod("by-tag", ["python", "-c", READ_MODEL], {"image": reg.ref("cats-dogs", "v2")})
    for name, tag, source in (("by-digest", "v1", v1), ("by-tag", "v2", v2)):
        pod = reg_runner.finished(name)
        assert pod["status"]["phase"] == "Succeeded", (pod["status"], reg_runner.tail())
        assert pod["status"]["containerStatuses"][0]["imageID"] == image_id(pinned[tag])
        want = f"{hashlib.sha256(source.read_bytes()).hexdigest()} /model/model.pt EROFS 65532"
        assert terminated(pod)["message"] == want


def test_a_wrong_digest_waits_in_err_image_pull_naming_the_image(reg_runner: Runner, reg: registry.Registry) -> None:
    image = reg.ref("cats-dogs", "sha256:" + "0" * 64)
    reg_runner.pod("wrong", ["true"], {"image": image})
    pod = reg_runner.wait("wrong", "ErrImagePull", lambda p: p if waiting(p).get("reason") == "ErrImagePull" else None)
    assert f'Failed to pull image "{image}"' in waiting(pod)["message"], waiting(pod)
    assert pod["status"]["phase"] == "Pending" and condition(pod, "Ready") != "True"
    assert not pod["status"]["containerStatuses"][0]["imageID"]
    # the retry 10 s later fails again: back-off, still never started
    pod = reg_runner.wait("wrong", "ImagePullBackOff",
                          lambda p: p if waiting(p).get("reason") == "ImagePullBackOff" else None, timeout=60)
    assert waiting(pod)["message"].startswith(f'Back-off pulling image "{image}"'), waiting(pod)
    assert pod["status"]["phase"] == "Pending"
    reg_runner.cluster.kubectl("delete", "pod", "wrong", "-n", reg_runner.namespace, "--wait=false")


def test_a_pull_is_retried_with_back_off_until_the_image_exists(
    reg_runner: Runner, reg: registry.Registry, base: str, tmp_path: Path
) -> None:
    image = reg.ref("cats-dogs", "late")
    reg_runner.pod("late", ["python", "-c", READ_MODEL], {"image": image})
    pod = reg_runner.wait("late", "ErrImagePull", lambda p: p if waiting(p).get("reason") == "ErrImagePull" else None)
    assert f'Failed to pull image "{image}"' in waiting(pod)["message"] and pod["status"]["phase"] == "Pending"
    source = random_model(tmp_path)
    pinned = registry.push_model(reg, source, "cats-dogs", "late", base)  # during the first back-off (10 s)
    pod = reg_runner.finished("late")
    assert pod["status"]["phase"] == "Succeeded", (pod["status"], reg_runner.tail())
    assert pod["status"]["containerStatuses"][0]["imageID"] == image_id(pinned)
    assert terminated(pod)["message"].startswith(hashlib.sha256(source.read_bytes()).hexdigest())


def test_the_image_entrypoint_serves_the_model_the_image_contains(
    reg_runner: Runner, reg: registry.Registry, base: str, tmp_path: Path
) -> None:
    # No command: the runner runs the image's entrypoint (freshness-serve) with the image's Env
    # (MODEL_PATH=/model/model.pt); the classes and the predictions come from the pushed model.
    torch.manual_seed(3)
    net = model.build("alexnet", 2, hidden_units=64)
    model.save(model.Checkpoint(net, ["ants", "bees"], sampledata.SIZE), str(tmp_path / "model.pt"))
    pinned = registry.push_model(reg, tmp_path / "model.pt", "cats-dogs", "served", base)
    probe = {"httpGet": {"path": "/v2/health/ready", "port": 8080}, "periodSeconds": 2, "failureThreshold": 300}
    env = [{"name": "FRESHNESS_TORCH_THREADS", "value": "1"}, {"name": "GRPC_PORT", "value": "0"}]
    reg_runner.pod("served", [], {"image": pinned, "readinessProbe": probe, "env": env},
                   restartPolicy="Always")
    pod = reg_runner.wait("served", "Ready", lambda p: p if condition(p, "Ready") == "True" else None, timeout=300)
    assert pod["status"]["containerStatuses"][0]["imageID"] == image_id(pinned)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, sampledata.SIZE, sampledata.SIZE), dtype=np.uint8)
    tensor = {"name": "pixels", "shape": list(pixels.shape), "datatype": "UINT8", "data": pixels.ravel().tolist()}
    status, body = post_json(f"http://{pod['status']['podIP']}:8080/v2/models/model/infer", {"inputs": [tensor]})
    assert status == 200, body
    ckpt = model.load(str(tmp_path / "model.pt"))
    logits = engine.predict(ckpt.model, torch.from_numpy(pixels), batch_size=2,
                            settings=engine.DeviceOptions.for_device("cpu"))
    probs = {o["name"]: o for o in body["outputs"]}["probabilities"]
    np.testing.assert_allclose(np.array(probs["data"]).reshape(2, 2), torch.softmax(logits, 1).numpy(), atol=1e-5)
    assert body["parameters"]["classes"] == "ants,bees"
    reg_runner.cluster.kubectl("delete", "pod", "served", "-n", reg_runner.namespace, "--wait=false")


def test_the_registry_starts_serves_the_base_image_and_stops(tmp_path: Path, cluster: Cluster) -> None:
    reg = registry.start(tmp_path / "reg", cluster.bin_dir)
    try:
        with urllib.request.urlopen(f"{reg.url}/v2/", timeout=5) as resp:
            assert resp.status == 200
        pinned = registry.publish_server_base(reg)
        registry.server_base_layout(tmp_path / "layout")
        index = json.loads((tmp_path / "layout" / "index.json").read_text())
        assert pinned == reg.ref(registry.SERVER_BASE_REPO, index["manifests"][0]["digest"])  # pushed as built
        config = json.loads(reg.crane_run("config", pinned))["config"]
        assert config["Entrypoint"] == ["freshness-serve"] and "MODEL_PATH=/model/model.pt" in config["Env"]
    finally:
        reg.stop()
    assert not localcluster.alive(reg.pid)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{reg.url}/v2/", timeout=2)
    # a pull from a registry that is down is refused, naming the image
    puller = pull.Puller(reg.host, reg.crane, tmp_path / "cache")
    image = reg.ref("cats-dogs", "sha256:" + hashlib.sha256(b"x").hexdigest())
    with pytest.raises(Refused) as err:
        puller.pull(image)
    assert err.value.reason == "ErrImagePull" and f'Failed to pull image "{image}"' in err.value.message


def test_the_registry_is_one_more_component_of_the_local_cluster(tmp_path: Path, cluster: Cluster) -> None:
    """How the demo can start it: in a wave after the control plane, stopped by ``down`` with the rest."""
    (tmp_path / "logs").mkdir()
    info = localcluster.ClusterInfo(tmp_path, cluster.bin_dir, tmp_path / "admin.kubeconfig", "https://127.0.0.1:1",
                                    ports={"registry": localcluster.free_port()})
    localcluster.start_wave(info, [registry.component()], localcluster.Timeouts())
    try:
        reg = registry.of_cluster(info)
        pinned = registry.publish_server_base(reg)
        assert reg.digest(pinned) == pinned.split("@")[1]
        assert (tmp_path / "registry" / "storage").is_dir() and reg.log == tmp_path / "logs" / "registry.log"
    finally:
        assert localcluster.down(tmp_path, info) == ["registry"]
    assert not localcluster.alive(info.pids["registry"])

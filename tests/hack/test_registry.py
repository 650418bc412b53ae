"""hack/registry.py's registry process and the pure parts of the dev kubelet's pull (hack/kubelet/pull.py).

The registry is the real one built from Go modules (hack/build-binaries.sh); no cluster is needed.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest

from hack import registry
from hack.kubelet import pull
from hack.kubelet.podspec import Refused


def test_the_registry_starts_serves_the_base_image_and_stops(tmp_path: Path) -> None:
    reg = registry.start(tmp_path / "reg")
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
    assert not registry._alive(reg.pid)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{reg.url}/v2/", timeout=2)
    # a pull from a registry that is down is refused, naming the image
    puller = pull.Puller(reg.host, reg.crane, tmp_path / "cache")
    image = reg.ref("cats-dogs", "sha256:" + hashlib.sha256(b"x").hexdigest())
    with pytest.raises(Refused) as err:
        puller.pull(image)
    assert err.value.reason == "ErrImagePull" and f'Failed to pull image "{image}"' in err.value.message


def test_image_references_split_and_only_the_registrys_are_pulled(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    assert pull.split(f"127.0.0.1:5000/team/cats:v2@{digest}") == ("127.0.0.1:5000", "127.0.0.1:5000/team/cats",
                                                                    digest)
    assert pull.split("127.0.0.1:5000/cats:v2") == ("127.0.0.1:5000", "127.0.0.1:5000/cats", "v2")
    assert pull.split("127.0.0.1:5000/cats") == ("127.0.0.1:5000", "127.0.0.1:5000/cats", "latest")
    assert pull.split("busybox") == ("", "busybox", "latest")
    assert pull.split("library/busybox:1") == ("", "library/busybox", "1")
    puller = pull.Puller("127.0.0.1:5000", "crane", tmp_path)
    assert puller.wants("127.0.0.1:5000/cats:v2") and not puller.wants("127.0.0.1:5001/cats:v2")
    assert not puller.wants("registry.local/freshness-trainer:demo")


def test_a_pulled_image_gives_its_folders_env_and_entrypoint_as_a_kubelet_would(tmp_path: Path) -> None:
    for d in ("model", "usr", "etc", "opt"):
        (tmp_path / d).mkdir()
    (tmp_path / "models").symlink_to("model")
    config = {"Entrypoint": ["freshness-serve"], "Cmd": ["--model_name=m"],
              "Env": ["PATH=/opt/venv/bin:/usr/bin", "MODEL_PATH=/model/model.pt"]}
    img = pull.Pulled("r/x@sha256:1", tmp_path, config)
    assert img.mounts() == [{"kind": "bind", "source": str(tmp_path / "model"), "target": "/model", "ro": True}]
    assert img.env() == {"MODEL_PATH": "/model/model.pt"}  # PATH stays the runner's
    assert img.argv([], []) == ["freshness-serve", "--model_name=m"]
    assert img.argv([], ["--model_name=n"]) == ["freshness-serve", "--model_name=n"]
    assert img.argv(["python"], []) == ["python"]  # command drops the image's Cmd
    assert img.argv(["python"], ["-V"]) == ["python", "-V"]

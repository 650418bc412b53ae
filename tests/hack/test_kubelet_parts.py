"""The dev kubelet's pure parts: the field allow-list, $(VAR) expansion, identity, the mount plan, what a pulled
image gives a container. No cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hack.kubelet import hosts, podspec, pull, volumes
from hack.kubelet.podspec import Refused


def _spec(**container: Any) -> dict[str, Any]:
    return {"containers": [{"name": "main", "command": ["true"], **container}], "restartPolicy": "Never"}


def test_the_operators_step_pod_is_accepted_and_its_limits_are_not() -> None:
    from tests.operator.test_builders import jobs

    podspec.check_fields(jobs()["package"]["spec"]["template"]["spec"])
    with pytest.raises(Refused, match=r"^UnsupportedField: spec.containers\[0\].resources.limits: "):
        podspec.check_fields(jobs()["drift"]["spec"]["template"]["spec"])  # it limits the CPU


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_spec(lifecycle={"postStart": {"exec": {"command": ["true"]}}}), "spec.containers[0].lifecycle.postStart"),
        (_spec(securityContext={"privileged": True}), "spec.containers[0].securityContext.privileged"),
        (_spec(env=[{"name": "x", "valueFrom": {"resourceFieldRef": {}}}]), "spec.containers[0].env[0].valueFrom"
         ".resourceFieldRef"),
        ({**_spec(), "volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}]}, "spec.volumes[0].emptyDir"),
        ({**_spec(), "containers": []}, "spec.containers"),
    ],
)
def test_fields_it_cannot_honour_are_named(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(Refused) as err:
        podspec.check_fields(spec)
    assert err.value.reason == "UnsupportedField"
    assert err.value.message.startswith(field + ":"), err.value.message


def test_variable_expansion_follows_the_kubelet() -> None:
    env = {"A": "1", "B": "x"}
    assert podspec.expand("$(A)-$(B)-$$(A)-$(C)-$", env) == "1-x-$(A)-$(C)-$"


def test_run_as_non_root_without_a_user_is_refused() -> None:
    pod = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(Refused, match="runAsNonRoot"):
        podspec.identity({}, pod, "spec.containers[0]")
    ident = podspec.identity({"securityContext": {"runAsUser": 7}}, {"spec": {"securityContext": {
        "runAsNonRoot": True, "fsGroup": 9, "runAsGroup": 8}}}, "c")
    assert (ident.uid, ident.gid, ident.groups) == (7, 8, (8, 9))


def test_the_mount_plan_binds_back_only_what_a_mount_covers(tmp_path: Path) -> None:
    venv, data = tmp_path / "venv", tmp_path / "data"
    venv.mkdir()
    data.mkdir()
    container = {"volumeMounts": [{"name": "work", "mountPath": str(tmp_path)}, {"name": "tmp", "mountPath": "/t"}]}
    vols = {"work": {"kind": "bind", "source": "/w"}, "tmp": {"kind": "bind", "source": "/x"}}
    mounts = volumes.plan(container, vols, home="/home/me", image_paths=[str(venv), "/usr/lib"],
                          shared=[str(data)], files=[("/dev/termination-log", "/host/term", False)])
    assert [(m["target"], m["kind"], m["ro"]) for m in mounts] == [
        ("/t", "bind", False),
        (str(tmp_path), "bind", False),
        ("/home/me", "tmpfs", False),
        (str(venv), "bind", True),
        (str(data), "bind", False),
        ("/dev/termination-log", "bind", False),
    ]


def test_emptydirs_are_fresh_world_writable_folders_of_the_fs_group(tmp_path: Path) -> None:
    import os

    pod = {"spec": {"securityContext": {"fsGroup": os.getgid()}, "volumes": [{"name": "a", "emptyDir": {}}]}}
    out = volumes.prepare(pod, tmp_path)
    folder = Path(out["a"]["source"])
    assert folder.is_dir() and not any(folder.iterdir())
    assert folder.stat().st_mode & 0o7777 == 0o2777


def test_a_user_this_machine_lacks_gets_a_passwd_entry(tmp_path: Path) -> None:
    import pwd

    assert volumes.with_user(0, 0, "/root", tmp_path) == []
    uid = next(u for u in range(65532, 70000) if u not in {p.pw_uid for p in pwd.getpwall()})
    files = dict((target, source) for target, source, _ in volumes.with_user(uid, uid, "/tmp", tmp_path))
    assert f"u{uid}:x:{uid}:{uid}::/tmp:" in Path(files["/etc/passwd"]).read_text()
    assert Path(files["/etc/passwd"]).read_text().startswith(Path("/etc/passwd").read_text())


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


def test_a_pulled_images_numeric_user_applies_where_the_spec_sets_none() -> None:
    pod = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    ident = podspec.identity({"name": "c"}, pod, "spec.containers[0]", "65532:65532")
    assert (ident.uid, ident.gid) == (65532, 65532)
    ident = podspec.identity({"name": "c", "securityContext": {"runAsUser": 1000}}, pod, "spec.containers[0]", "65532")
    assert (ident.uid, ident.gid) == (1000, 0)
    with pytest.raises(Refused, match=r"spec.containers\[0\]: runAsNonRoot"):
        podspec.identity({"name": "c"}, pod, "spec.containers[0]", "")  # no image user: root, refused
    with pytest.raises(Refused, match=r"the image's user 'server' is not numeric"):
        podspec.identity({"name": "c"}, {"spec": {}}, "spec.containers[0]", "server")


def test_a_pods_hosts_file_names_it_and_its_subdomains_pods() -> None:
    pod = {"metadata": {"name": "j-0-abcde", "namespace": "ml"}, "spec": {"hostname": "j-0", "subdomain": "j"}}
    slices = [{"endpoints": [
        {"hostname": "j-1", "addresses": ["10.88.0.3"]},
        {"hostname": "j-0", "addresses": ["10.88.0.2"]},  # itself: already named on its own line
        {"addresses": ["10.88.0.9"]},  # no hostname: DNS gives it no pod name either
    ]}]
    text = hosts.render(pod, "10.88.0.2", slices)
    assert "10.88.0.2\tj-0.j.ml.svc.cluster.local j-0.j j-0\n" in text
    assert "10.88.0.3\tj-1.j.ml.svc.cluster.local j-1.j\n" in text
    assert "10.88.0.9" not in text and text.startswith("127.0.0.1\tlocalhost\n")
    plain = {"metadata": {"name": "web-" + "x" * 70, "namespace": "ml"}, "spec": {}}
    assert hosts.hostname(plain) == ("web-" + "x" * 70)[:63]
    assert hosts.render(plain, "10.88.0.4").endswith(f"10.88.0.4\t{hosts.hostname(plain)}\n")


def test_hostname_and_subdomain_are_honoured() -> None:
    podspec.check_fields({"containers": [{"name": "main", "image": "x"}], "hostname": "j-0", "subdomain": "j"})

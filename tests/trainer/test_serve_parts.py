"""The server's parts without a server: settings, input decoding, model loading, capture layout."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from freshness_trainer import model, partitions
from freshness_trainer.errors import TrainerError
from freshness_trainer.serve import inputs, settings
from freshness_trainer.serve.predictor import FreshnessModel
from prometheus_client import REGISTRY

from tests.trainer.serve_kit import encode, save_model


def test_settings_defaults_and_capture_rate() -> None:
    s = settings.from_env({})
    assert s.model_path == "/model/model.pt" and s.capture_rate == 0.0 and s.grpc_port == 8081
    assert settings.from_env({"FRESHNESS_CAPTURE_URI": "s3://b/p"}).capture_rate == 1.0
    assert s.torch_threads == 0 and settings.from_env({"FRESHNESS_TORCH_THREADS": "2"}).torch_threads == 2
    assert settings.from_env({"FRESHNESS_CAPTURE_URI": "/c", "FRESHNESS_CAPTURE_RATE": "0.25"}).capture_rate == 0.25


@pytest.mark.parametrize(("env", "words"), [
    ({"FRESHNESS_CAPTURE_RATE": "2"}, "FRESHNESS_CAPTURE_RATE='2': expected a number from 0 to 1"),
    ({"FRESHNESS_CAPTURE_RATE": "often"}, "FRESHNESS_CAPTURE_RATE"),
    ({"FRESHNESS_CAPTURE_QUEUE": "0"}, "FRESHNESS_CAPTURE_QUEUE='0': expected a whole number >= 1"),
    ({"HTTP_PORT": "http"}, "HTTP_PORT"),
    ({"FRESHNESS_TORCH_THREADS": "-1"}, "FRESHNESS_TORCH_THREADS='-1': expected a whole number >= 0"),
    ({"FRESHNESS_DEVICE": "tpu"}, "expected cpu or cuda"),
    ({"MODEL_NAME": "a/b"}, "MODEL_NAME"),
])
def test_settings_errors_name_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(settings.SettingsError, match=words.replace("(", r"\(").replace("[", r"\[")):
        settings.from_env(env)


def test_uint8_and_fp32_tensors_are_the_same_images() -> None:
    limits = inputs.Limits(image_size=4)
    arr = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    u8 = inputs.from_v2("x", "UINT8", [2, 3, 4, 4], arr.ravel().tolist(), limits)
    f32 = inputs.from_v2("x", "FP32", [2, 3, 4, 4], (arr / 255.0).astype(np.float32), limits)
    assert torch.equal(u8.images, torch.from_numpy(arr))
    assert u8.originals[1].pixels is not None and u8.originals[1].pixels.shape == (4, 4, 3)
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(u8.originals, f32.originals, strict=True))  # type: ignore[arg-type]


def test_huge_images_are_refused_before_decoding() -> None:
    blob = encode(np.zeros((100, 100, 3), np.uint8), "PNG")
    with pytest.raises(inputs.BadInput, match="100x100 pixels; at most 5000"):
        inputs.from_b64([base64.b64encode(blob).decode()], inputs.Limits(64, max_image_pixels=5000), "instance")


def test_v2_bytes_shape_must_be_n() -> None:
    with pytest.raises(inputs.BadInput, match=r"must have shape \[N\]"):
        inputs.from_v2("img", "BYTES", [1, 1], [["x"]], inputs.Limits(64))


def _load(path: Path) -> FreshnessModel:
    m = FreshnessModel(settings.Settings(model_path=str(path), model_name="m"))
    m.load()
    return m


def test_model_loads_and_warms_up(tmp_path: Path) -> None:
    m = _load(save_model(tmp_path / "model.pt"))
    assert m.ready and m.reason == "" and m.ckpt is not None and m.ckpt.classes == ["cats", "dogs"]


def test_missing_model_is_not_ready_with_the_reason(tmp_path: Path) -> None:
    m = _load(tmp_path / "absent.pt")
    assert not m.ready and "not found" in m.reason


def test_wrong_architecture_is_not_ready_with_the_reason(tmp_path: Path) -> None:
    path = save_model(tmp_path / "model.pt")
    doc = torch.load(path, weights_only=True)
    doc["classes"] = ["a", "b", "c"]  # three classes on a two-output head
    torch.save(doc, path)
    with pytest.raises(TrainerError):
        model.load(str(path))
    m = _load(path)
    assert not m.ready and "size mismatch" in m.reason


def test_sample_path_carries_its_time() -> None:
    when = datetime(2026, 12, 2, 6, 5, 4, 321, tzinfo=UTC)
    path = partitions.sample_path("s3://b/cap/", when, "abc", ".png")
    assert path == "s3://b/cap/2026/12/02/06/20261202T060504000321Z-abc.png"
    assert partitions.parse_stamp(path) == when
    assert partitions.parse_stamp("cats/0001.png") is None


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert partitions.parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "24", "0h", "1w", "-1h", "1.5h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive number and s, m, h or d"):
        partitions.parse_duration(text)


def write_capture(root: Path, times: list[datetime]) -> list[str]:
    """Files as the server writes them (the bytes do not matter to listing)."""
    out = []
    for i, t in enumerate(times):
        p = Path(partitions.sample_path(str(root), t, f"{i:04d}", ".png"))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"png")
        p.with_suffix(".json").write_text("{}")
        out.append(str(p))
    return out


def test_list_window_reads_only_the_window(tmp_path: Path) -> None:
    now = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    old = [now - timedelta(days=40), now - timedelta(days=2), now - timedelta(hours=25)]
    recent = [now - timedelta(hours=23, minutes=59), now - timedelta(hours=1), now - timedelta(minutes=1)]
    files = write_capture(tmp_path, old + recent + [now + timedelta(hours=2)])
    (tmp_path / "2026" / "12" / "02" / "06" / ".x.png.tmp").write_bytes(b"half")  # a write in progress
    assert partitions.is_partitioned(str(tmp_path))
    w = partitions.list_window(str(tmp_path), now=now, window=timedelta(hours=24))
    assert w.files == files[3:6]
    assert w.describe() == {"samples": 3, "start": "2026-12-01T06:31:00Z", "end": "2026-12-02T06:29:00Z"}
    assert partitions.list_window(str(tmp_path), now=now, newest=2).files == files[4:6]
    assert partitions.list_window(str(tmp_path), now=now, window=timedelta(days=3), newest=4).files == files[2:6]
    with pytest.raises(TrainerError, match="no samples in the last"):
        partitions.list_window(str(tmp_path), now=now - timedelta(days=100), window=timedelta(hours=1))


def test_class_folders_are_not_partitioned(tmp_path: Path) -> None:
    (tmp_path / "cats").mkdir()
    (tmp_path / "2026").mkdir()
    assert not partitions.is_partitioned(str(tmp_path))
    assert not partitions.is_partitioned(str(tmp_path / "absent"))


def test_package_defaults_to_the_serving_image(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from freshness_trainer import cli, oci

    model = str(save_model(tmp_path / "model.pt"))
    runs = iter(range(10))

    def base_of(*extra: str) -> str:
        """The base image the package command put in the layout's manifest."""
        out = tmp_path / f"layout-{next(runs)}"
        result = tmp_path / "result.json"
        argv = ["package", "--model", model, "--image", "r/x:1", "--output", str(out), "--result-path", str(result)]
        assert cli.main([*argv, *extra]) == 0, result.read_text()
        index = json.loads((out / "index.json").read_text())
        manifest = json.loads((out / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
        return str(manifest["annotations"].get("org.opencontainers.image.base.name", ""))

    assert base_of() == oci.DEFAULT_BASE_IMAGE
    monkeypatch.setenv("FRESHNESS_SERVER_IMAGE", "registry.example.com/server:2")
    assert base_of() == "registry.example.com/server:2"
    assert base_of("--base-image", "") == ""
    layout = oci.build(str(save_model(tmp_path / "model.pt")), "r/x:1", tmp_path / "layout", oci.DEFAULT_BASE_IMAGE)
    index = json.loads((layout.path / "index.json").read_text())
    manifest = json.loads((layout.path / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == oci.DEFAULT_BASE_IMAGE
    assert manifest["annotations"]["io.modelfreshness.model.path"] == settings.DEFAULT_MODEL_PATH


def test_the_serving_example_captures_to_the_drift_checks_data() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2] / "examples"
    mdep = yaml.safe_load((root / "modeldeployment.yaml").read_text())
    deploy = yaml.safe_load((root / "serving-deployment.yaml").read_text())
    (container,) = [c for c in deploy["spec"]["template"]["spec"]["containers"]
                    if c["name"] == mdep["spec"]["serving"]["container"]]
    env = settings.from_env({e["name"]: e["value"] for e in container["env"]})
    assert env.capture_uri == mdep["spec"]["data"]["current"] and 0 < env.capture_rate <= 1
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{env.model_name}/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_bad_settings_exit_2_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from freshness_trainer.serve import __main__ as serve_main

    monkeypatch.setenv("FRESHNESS_CAPTURE_RATE", "7")
    assert serve_main.main([]) == 2
    assert "FRESHNESS_CAPTURE_RATE='7'" in capsys.readouterr().err
    monkeypatch.delenv("FRESHNESS_CAPTURE_RATE")
    assert serve_main.main(["--model_name", "a/b"]) == 2
    assert "MODEL_NAME='a/b'" in capsys.readouterr().err


def test_a_slow_sink_never_blocks_the_request_path() -> None:
    from freshness_trainer.serve import metrics
    from freshness_trainer.serve.capture import CaptureWriter

    writer = CaptureWriter("memory://slow-capture", 1.0, 4, "slow-sink", drain_seconds=0.2)
    release = threading.Event()
    writer._fs.pipe_file = lambda *a, **k: release.wait(10)  # a PUT that stalls
    writer.start()
    original = inputs.Original(encoded=b"png", suffix=".png")
    t0 = time.perf_counter()
    for _ in range(50):
        writer.offer(original, {"class": "cats"})
    assert time.perf_counter() - t0 < 0.5, "offer() waited for the sink"
    # One sample is stuck in the writer, four wait in the queue, the rest were dropped and counted.
    dropped = REGISTRY.get_sample_value(metrics.PREFIX + "capture_dropped_samples_total",
                                        {"model": "slow-sink", "reason": "queue_full"})
    assert dropped is not None and dropped >= 45
    release.set()
    writer.close()

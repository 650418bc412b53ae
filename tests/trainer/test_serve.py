"""The model server over HTTP on loopback: the real ``freshness-serve`` process (KServe's ModelServer).

One server (capture on, to a temporary folder) answers the prediction and bad-request tests; a
server with a corrupt model and one whose capture sink fails are started for their own tests.
The reference for every prediction is ``engine.predict`` on the same images.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from freshness_trainer import data, engine, model, partitions, sampledata
from freshness_trainer.serve.local import LocalServer, free_port, post_json, request

from tests.trainer.serve_kit import CLASSES, encode, save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Six production-style sample images, (N, S, S, 3) uint8."""
    return sampledata.render({"cats": 3, "dogs": 3}, half="production", seed=1).images


def reference(model_file: Path, batch: torch.Tensor) -> np.ndarray:
    ckpt = model.load(str(model_file))
    logits = engine.predict(ckpt.model, batch, batch_size=8, settings=engine.DeviceOptions.for_device("cpu"))
    return torch.softmax(logits, dim=1).numpy()


@pytest.fixture(scope="module")
def server(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    tmp = tmp_path_factory.mktemp("server")
    env = {"MODEL_PATH": str(model_file), "FRESHNESS_CAPTURE_URI": str(tmp / "capture"),
           "FRESHNESS_CAPTURE_RATE": "1", "FRESHNESS_MAX_REQUEST_BYTES": str(4 * 1024 * 1024),
           "FRESHNESS_MAX_BATCH": "8", "FRESHNESS_TORCH_THREADS": "1", "GRPC_PORT": str(free_port())}
    with LocalServer(env, tmp / "server.log") as srv:
        srv.wait_listening()
        yield srv


def test_ready_after_load_and_warm_up(server: LocalServer) -> None:
    assert server.get("/v2/health/ready") == (200, {"ready": True})
    assert server.get("/v2/models/model/ready")[0] == 200
    status, meta = server.get("/v2/models/model")
    assert status == 200 and meta["outputs"][2] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}
    assert server.metrics()['modelfreshness_serving_model_ready{model="model"}'] == 1.0
    assert "input 64x64, 1 torch threads" in server.log()


def test_v1_encoded_images_match_engine_predict(server: LocalServer, model_file: Path, images: np.ndarray) -> None:
    blobs = [encode(img, "PNG" if i % 2 else "JPEG") for i, img in enumerate(images)]
    status, body = post_json(server.url + "/v1/models/model:predict",
                             {"instances": [{"b64": base64.b64encode(b).decode()} for b in blobs]})
    assert status == 200, body
    decoded = np.stack([data.decode(b, "x", sampledata.SIZE) for b in blobs])
    want = reference(model_file, torch.from_numpy(decoded).permute(0, 3, 1, 2))
    got = np.array([[p["probabilities"][c] for c in CLASSES] for p in body["predictions"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert [p["class"] for p in body["predictions"]] == [CLASSES[i] for i in want.argmax(1)]


def test_v2_bytes_and_tensors_match_engine_predict(server: LocalServer, model_file: Path, images: np.ndarray) -> None:
    nchw = images.transpose(0, 3, 1, 2)
    want = reference(model_file, torch.from_numpy(nchw.copy()))
    url = server.url + "/v2/models/model/infer"
    requests = {
        "BYTES": {"name": "image", "shape": [len(images)], "datatype": "BYTES",
                  "data": [base64.b64encode(encode(img, "PNG")).decode() for img in images]},
        "UINT8": {"name": "pixels", "shape": list(nchw.shape), "datatype": "UINT8", "data": nchw.ravel().tolist()},
        "FP32": {"name": "pixels", "shape": list(nchw.shape), "datatype": "FP32",
                 "data": (nchw.astype(np.float32) / 255.0).ravel().tolist()},
    }
    for kind, tensor in requests.items():
        status, body = post_json(url, {"id": f"req-{kind}", "inputs": [tensor]})
        assert status == 200, (kind, body)
        outputs = {o["name"]: o for o in body["outputs"]}
        probs = np.array(outputs["probabilities"]["data"]).reshape(outputs["probabilities"]["shape"])
        np.testing.assert_allclose(probs, want, atol=1e-5, err_msg=kind)
        assert outputs["class"]["data"] == [CLASSES[i] for i in want.argmax(1)]
        assert body["id"] == f"req-{kind}" and body["parameters"]["classes"] == "cats,dogs"


def test_v2_binary_extension_and_raw_v1_body(server: LocalServer, model_file: Path, images: np.ndarray) -> None:
    """Raw JPEG bytes: in a v2 BYTES tensor with the binary data extension, and as a v1 image body."""
    blobs = [encode(img, "JPEG") for img in images[:2]]
    decoded = np.stack([data.decode(b, "x", sampledata.SIZE) for b in blobs])
    want = reference(model_file, torch.from_numpy(decoded).permute(0, 3, 1, 2))
    raw = b"".join(len(b).to_bytes(4, "little") + b for b in blobs)  # the extension's BYTES encoding
    head = json.dumps({"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    binary = {"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))}
    status, body = request(server.url + "/v2/models/model/infer", head + raw[:-5], binary)
    assert status == 400 and "binary_data_size" in body["error"], body
    status, body = request(server.url + "/v2/models/model/infer", head + raw, binary)
    assert status == 200, body
    probs = {o["name"]: o for o in body["outputs"]}["probabilities"]["data"]
    np.testing.assert_allclose(np.array(probs).reshape(2, 2), want, atol=1e-5)
    status, body = request(server.url + "/v1/models/model:predict", blobs[1], {"content-type": "image/jpeg"})
    assert status == 200, body
    np.testing.assert_allclose([body["predictions"][0]["probabilities"][c] for c in CLASSES], want[1], atol=1e-5)


def test_grpc_v2_gives_the_same_predictions(server: LocalServer, model_file: Path, images: np.ndarray) -> None:
    import grpc
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    port = server.env["GRPC_PORT"]
    blob = encode(images[0], "PNG")
    want = reference(model_file, torch.from_numpy(images[:1].transpose(0, 3, 1, 2).copy()))

    async def call(data: bytes) -> np.ndarray:
        client = InferenceGRPCClient(f"127.0.0.1:{port}")
        try:
            tensor = InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([data], dtype=object), binary_data=True)
            res = await client.infer(InferRequest(model_name="model", infer_inputs=[tensor]))
            return {o.name: o for o in res.outputs}["probabilities"].as_numpy()
        finally:
            await client.close()

    np.testing.assert_allclose(asyncio.run(call(blob)), want, atol=1e-5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(call(b"junk"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "is not an image" in str(err.value.details())


def _png_b64(size: int = 8) -> str:
    return base64.b64encode(encode(np.zeros((size, size, 3), np.uint8), "PNG")).decode()


BAD_REQUESTS = {
    "not an image": ("/v1/models/model:predict", {"instances": [{"b64": base64.b64encode(b"hello").decode()}]},
                     400, "is not an image"),
    "not base64": ("/v1/models/model:predict", {"instances": [{"b64": "%%%"}]}, 400, "not valid base64"),
    "gif": ("/v1/models/model:predict", {"instances": [{"b64": base64.b64encode(
        encode(np.zeros((8, 8, 3), np.uint8), "GIF")).decode()}]}, 400, "expected JPEG or PNG"),
    "too many images": ("/v1/models/model:predict", {"instances": [{"b64": _png_b64()}] * 9}, 400, "at most 8"),
    "no instances": ("/v1/models/model:predict", {"inputs": []}, 400, '{"instances"'),
    "wrong shape": ("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 64, 64, 3], "datatype": "UINT8",
                                                            "data": [0] * (64 * 64 * 3)}]}, 400, "[N, 3, 64, 64]"),
    "wrong dtype": ("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 3, 64, 64], "datatype": "INT32",
                                                            "data": [0] * (64 * 64 * 3)}]}, 400, "datatype INT32"),
    "data does not fit shape": ("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 3, 64, 64],
                                                                       "datatype": "UINT8", "data": [1, 2]}]},
                                400, "does not fit shape"),
    "pixel out of range": ("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 3, 64, 64],
                                                                  "datatype": "FP32", "data": [2.0] * (64 * 64 * 3)}]},
                           400, "within [0, 1]"),
    "uint8 out of range": ("/v2/models/model/infer", {"inputs": [{"name": "x", "shape": [1, 3, 64, 64],
                                                                  "datatype": "UINT8", "data": [300] * (64 * 64 * 3)}]},
                           400, "values out of range for UINT8"),
    "two inputs": ("/v2/models/model/infer", {"inputs": [
        {"name": "a", "shape": [1], "datatype": "BYTES", "data": [_png_b64()]},
        {"name": "b", "shape": [1], "datatype": "BYTES", "data": [_png_b64()]}]}, 400, "exactly one input"),
    "unknown model": ("/v2/models/nope/infer", {"inputs": []}, 404, "nope"),
    "unknown model v1": ("/v1/models/nope:predict", {"instances": []}, 404, "nope"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_naming_the_problem(server: LocalServer, case: str) -> None:
    path, doc, code, words = BAD_REQUESTS[case]
    status, body = post_json(server.url + path, doc)
    assert status == code, body
    assert words in json.dumps(body) or words in str(body), body


def _raw_post(srv: LocalServer, headers: str, body: bytes) -> tuple[int, str]:
    """Send a request by hand (no client library insists on sending the whole body) and read the answer."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(f"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, text = answer.decode(errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), text


def test_too_large_bodies_get_413_before_they_are_read(server: LocalServer) -> None:
    status, text = _raw_post(server, "Content-Type: application/json\r\nContent-Length: 50000000\r\n", b"{")
    assert status == 413 and "FRESHNESS_MAX_REQUEST_BYTES" in text
    chunk = b"A" * (1024 * 1024)
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))
    status, text = _raw_post(server, "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", chunked)
    assert status == 413 and "larger than the limit of 4194304 bytes" in text
    assert server.get("/v2/health/ready")[0] == 200


def test_not_json_gets_400(server: LocalServer) -> None:
    status, body = request(server.url + "/v1/models/model:predict", b"{not json", {"content-type": "application/json"})
    assert status == 400, body
    assert server.get("/v2/health/ready")[0] == 200


def test_capture_writes_time_partitioned_samples_with_predictions(server: LocalServer, images: np.ndarray) -> None:
    before = server.metrics().get('modelfreshness_serving_captured_samples_total{model="model"}', 0.0)
    blob = encode(images[0], "JPEG")
    doc = {"instances": [{"b64": base64.b64encode(blob).decode()}]}
    status, body = post_json(server.url + "/v1/models/model:predict", doc)
    assert status == 200
    key = 'modelfreshness_serving_captured_samples_total{model="model"}'
    deadline = time.monotonic() + 20
    while server.metrics().get(key, 0.0) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    root = server.log_path.parent / "capture"  # the server fixture's FRESHNESS_CAPTURE_URI
    window = partitions.list_window(str(root), now=datetime.now(UTC) + timedelta(minutes=1))
    match = [f for f in window.files if Path(f).read_bytes() == blob]
    assert match, window.files
    sidecar = json.loads(Path(match[0].rsplit(".", 1)[0] + ".json").read_text())
    assert sidecar["class"] == body["predictions"][0]["class"]
    assert sidecar["model"] == "model" and sidecar["time"].endswith("Z")
    rel = Path(match[0]).relative_to(root).parts
    assert len(rel) == 5 and rel[0].isdigit() and len(rel[0]) == 4


def test_prediction_metrics(server: LocalServer) -> None:
    m = server.metrics()
    assert sum(v for k, v in m.items() if k.startswith("modelfreshness_serving_predictions_total{")) >= 1
    assert m['modelfreshness_serving_requests_total{model="model",outcome="bad_request"}'] >= 1
    assert any(k.startswith("modelfreshness_serving_confidence_bucket{") for k in m)
    assert any(k.startswith("modelfreshness_serving_request_duration_seconds_count{") for k in m)


def test_corrupt_model_keeps_the_server_up_and_not_ready(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a torch file")
    with LocalServer({"MODEL_PATH": str(bad)}, tmp_path / "server.log") as srv:
        srv.wait_listening()
        assert srv.get("/v2/health/ready")[0] == 503
        assert srv.get("/v2/models/model/ready")[0] == 503
        status, _ = post_json(srv.url + "/v1/models/model:predict", {"instances": [{"b64": _png_b64()}]})
        assert status == 503
        time.sleep(0.5)
        assert srv.proc.poll() is None, "the process must keep running"
        assert "NOT ready" in srv.log() and "is not a freshness model file" in srv.log()


def test_failing_capture_sink_answers_every_request_and_counts_drops(
        model_file: Path, tmp_path: Path, images: np.ndarray) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the capture folder should be")
    env = {"MODEL_PATH": str(model_file), "FRESHNESS_CAPTURE_URI": str(blocker / "capture"),
           "FRESHNESS_CAPTURE_RATE": "1", "FRESHNESS_CAPTURE_QUEUE": "2"}
    doc = {"instances": [{"b64": base64.b64encode(encode(images[0], "PNG")).decode()}] * 4}
    with LocalServer(env, tmp_path / "server.log") as srv:
        srv.wait_listening()
        for _ in range(5):
            status, body = post_json(srv.url + "/v1/models/model:predict", doc)
            assert status == 200, body
        keys = [f'modelfreshness_serving_capture_dropped_samples_total{{model="model",reason="{r}"}}'
                for r in ("queue_full", "write_error")]
        deadline = time.monotonic() + 20
        while sum(srv.metrics()[k] for k in keys) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        m = srv.metrics()
        assert sum(m[k] for k in keys) == 20 and m[keys[1]] >= 1, m
        assert m['modelfreshness_serving_captured_samples_total{model="model"}'] == 0
        assert "cannot write a captured sample" in srv.log()

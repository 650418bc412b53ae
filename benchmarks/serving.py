"""Model server throughput and latency on the CPU, capture off and on, beside a plain torch loop.

    .venv/bin/python -m benchmarks.serving                 # full size, ~3 min
    .venv/bin/python -m benchmarks.serving --smoke         # CI size: correctness only

``freshness-serve`` runs as a subprocess on a loopback port (freshness_trainer.serve.local) with an
untrained model of the project's default size (params.yaml: 64 px, 64 hidden units; the weights do
not change the cost). Each client is a thread with one keep-alive HTTP connection sending v2
requests of one PNG image (a BYTES tensor, base64 in JSON) back to back, for ``--seconds`` or
``--max-requests``, whichever comes first, at 1, 8 and 32 concurrent clients. The same levels run
against a second server that captures every input (rate 1) to a local folder: the ratio of the two
throughputs is the capture overhead. The ceiling is ``engine.predict`` in a loop in this process on
the same decoded images, one at a time (what one request costs the model) and 32 at a time, with
torch's default intra-op threads and with one (on a busy machine one thread can be much faster).
Clients and server share the machine's cores, as a sidecar client would.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import math
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from freshness_trainer import engine, model, sampledata
from freshness_trainer.serve.local import LocalServer
from PIL import Image


def make_model(path: Path, image_size: int, hidden: int) -> None:
    torch.manual_seed(0)
    net = model.build("alexnet", 2, hidden_units=hidden)
    model.save(model.Checkpoint(net, ["cats", "dogs"], image_size), str(path))


def png_bodies(images: np.ndarray) -> list[bytes]:
    bodies = []
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        doc = {"id": str(i), "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                         "data": [base64.b64encode(buf.getvalue()).decode()]}]}
        bodies.append(json.dumps(doc).encode())
    return bodies


def client(port: int, bodies: list[bytes], stop_at: float, budget: list[int], lock: threading.Lock,
           latencies: list[float], answers: list[str], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = 0
    while time.perf_counter() < stop_at:
        with lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        body = bodies[i % len(bodies)]
        t0 = time.perf_counter()
        conn.request("POST", "/v2/models/model/infer", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            errors.append(f"{resp.status}: {raw[:200]!r}")
        else:
            answers.append(f"{i % len(bodies)}:{json.loads(raw)['outputs'][0]['data'][0]}")
        i += 1
    conn.close()


def load_level(port: int, bodies: list[bytes], clients: int, seconds: float, max_requests: int) -> dict[str, Any]:
    latencies: list[float] = []
    answers: list[str] = []
    errors: list[str] = []
    budget, lock = [max_requests], threading.Lock()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(port, bodies, t0 + seconds, budget, lock, latencies, answers,
                                                     errors)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {
        "clients": clients, "requests": len(lat), "errors": errors[:5], "error_count": len(errors),
        "seconds": round(wall, 3), "req_per_s": len(lat) / wall if wall else math.nan,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else math.nan,
        "p99_ms": 1000 * lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)] if lat else math.nan,
        "answers": sorted(set(answers)),
    }


def ceiling(path: Path, images: torch.Tensor, seconds: float, batch: int, threads: int) -> float:
    """Images per second of ``engine.predict`` alone, ``batch`` images per call on ``threads`` threads."""
    ckpt = model.load(str(path))
    settings = engine.DeviceOptions.for_device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        engine.predict(ckpt.model, images[:batch], batch_size=batch, settings=settings)  # warm-up
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            engine.predict(ckpt.model, images[:batch], batch_size=batch, settings=settings)
            done += batch
        return done / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)


def serve(model_path: Path, tmp: Path, name: str, capture: bool, bodies: list[bytes], levels: list[int],
          seconds: float, max_requests: int, threads: int) -> dict[str, Any]:
    env = {"MODEL_PATH": str(model_path), "FRESHNESS_CAPTURE_QUEUE": "1024", "FRESHNESS_TORCH_THREADS": str(threads)}
    if capture:
        env |= {"FRESHNESS_CAPTURE_URI": str(tmp / f"capture-{name}"), "FRESHNESS_CAPTURE_RATE": "1"}
    with LocalServer(env, tmp / f"{name}.log") as srv:
        srv.wait_listening()
        if srv.get("/v2/health/ready")[0] != 200:
            raise RuntimeError(f"server not ready:\n{srv.log()}")
        warm = load_level(srv.port, bodies, 1, 5.0, 4)  # warm the connection and the allocator
        results = [load_level(srv.port, bodies, n, seconds, max_requests) for n in levels]
        # Every answered request's sample written or dropped: an empty queue is not enough, the
        # writer takes the last sample off the queue before it has written and counted it.
        answered = sum(r["requests"] for r in [warm, *results])
        done = ("modelfreshness_serving_captured_samples_total", "modelfreshness_serving_capture_dropped_samples_total")
        deadline = time.monotonic() + 30
        metrics = srv.metrics()
        while capture and time.monotonic() < deadline and sum(
                v for k, v in metrics.items() if k.startswith(done)) < answered:
            time.sleep(0.2)
            metrics = srv.metrics()
        return {"levels": results, "metrics": {k: v for k, v in metrics.items() if "capture" in k}}


def table(result: dict[str, Any]) -> str:
    off, on = result["capture_off"]["levels"], result["capture_on"]["levels"]
    rows = ["| clients | req/s (capture off) | p50 ms | p99 ms | req/s (capture on) | p50 ms | p99 ms | on/off |",
            "|---------|---------------------|--------|--------|--------------------|--------|--------|--------|"]
    for a, b in zip(off, on, strict=True):
        rows.append(f"| {a['clients']} | {a['req_per_s']:.1f} | {a['p50_ms']:.1f} | {a['p99_ms']:.1f} | "
                    f"{b['req_per_s']:.1f} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} | "
                    f"{b['req_per_s'] / a['req_per_s']:.2f} |")
    rows.append("\nCeiling, engine.predict in a loop in one process (img/s):")
    for key, rate in result["ceiling"].items():
        rows.append(f"- {key.replace('_', ' ')}: {rate:.1f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CI size: 1 and 2 clients, a few requests each")
    p.add_argument("--levels", default="1,8,32")
    p.add_argument("--seconds", type=float, default=15.0, help="per level and server")
    p.add_argument("--max-requests", type=int, default=20000, help="per level and server")
    p.add_argument("--image-size", type=int, default=sampledata.SIZE)
    p.add_argument("--hidden-units", type=int, default=64)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="the servers' FRESHNESS_TORCH_THREADS (0: torch's default, the machine's cores)")
    p.add_argument("--out", help="write the result JSON here")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    seconds, max_requests, ceiling_s = args.seconds, args.max_requests, 10.0
    if args.smoke:
        levels, seconds, max_requests, ceiling_s = [1, 2], 20.0, 6, 0.2
    images = sampledata.render({"cats": 8, "dogs": 8}, half="production", seed=3).images
    if args.image_size != images.shape[1]:
        images = np.stack([np.asarray(Image.fromarray(i).resize((args.image_size,) * 2)) for i in images])
    bodies = png_bodies(images)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmpname:
        tmp = Path(tmpname)
        path = tmp / "model.pt"
        make_model(path, args.image_size, args.hidden_units)
        tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        ckpt = model.load(str(path))
        logits = engine.predict(ckpt.model, tensor, batch_size=16, settings=engine.DeviceOptions.for_device("cpu"))
        expected = sorted({f"{i}:{ckpt.classes[j]}" for i, j in enumerate(logits.argmax(1).tolist())})
        result: dict[str, Any] = {
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "image_size": args.image_size,
            "hidden_units": args.hidden_units, "seconds_per_level": seconds, "max_requests": max_requests,
            "server_torch_threads": args.torch_threads,
            "capture_off": serve(path, tmp, "off", False, bodies, levels, seconds, max_requests, args.torch_threads),
            "capture_on": serve(path, tmp, "on", True, bodies, levels, seconds, max_requests, args.torch_threads),
            "ceiling": {
                f"batch_{b}_threads_{t}": ceiling(path, tensor.repeat(2, 1, 1, 1), ceiling_s, b, t)
                for b in (1, 32) for t in sorted({1, torch.get_num_threads()})
            },
            "expected_answers": expected,
        }
        captured = sorted((tmp / "capture-on").rglob("*.png"))
        result["captured_files"] = len(captured)
    result["overhead"] = [b["req_per_s"] / a["req_per_s"] for a, b in
                          zip(result["capture_off"]["levels"], result["capture_on"]["levels"], strict=True)]
    result["median_overhead"] = statistics.median(result["overhead"])
    print(table(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


if __name__ == "__main__":
    main()

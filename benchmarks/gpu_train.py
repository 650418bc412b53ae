"""End-to-end AlexNet training throughput from a JPEG folder: tutorial loader vs the fast path.

    python benchmarks/gpu_train.py                 # on a GPU machine: 224 px, torchvision AlexNet
    python benchmarks/gpu_train.py --smoke         # tiny, runs on a CPU (CI / tests)

Same run, same JPEG folder (generated here from the packaged sample images, upscaled), same model
(torchvision AlexNet, 4096-wide head unless --hidden-units), same batch size:

* **(a) tutorial** — ``torchvision.datasets.ImageFolder`` + PIL decode + ``RandomResizedCrop`` /
  flip / ``ToTensor`` / ``Normalize`` in ``DataLoader`` workers, fp32, SGD;
* **(b) fast path** — ``freshness_trainer.fastpath.load`` (nvJPEG decode on the GPU, cached there)
  + ``engine.fit`` (GPU augmentation, bf16 autocast, channels_last, fused optimizer, optional
  torch.compile). Its clock includes reading and decoding the JPEGs.

One-time warm-up (cuDNN autotuning, torch.compile) runs before either clock starts. Also printed:
(b)'s training-only rate (data already on the device) and drift-check throughput (serving-model
features + image statistics, ``freshness_trainer.features``) end to end from the folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer"))

from freshness_trainer import data, engine, fastpath, features, model, sampledata  # noqa: E402


def _write_chunk(args: tuple[int, int, int, int, str]) -> int:
    start, count, size, seed, out = args
    rng = np.random.default_rng([seed, start])
    per_class = {c: (count + 1) // 2 for c in sampledata.BASE_CLASSES}
    batch = sampledata.render(per_class, half="reference", seed=seed + start)
    for i in range(count):
        j = int(rng.integers(len(batch.labels)))
        img = Image.fromarray(batch.images[j]).resize((size, size), Image.Resampling.BICUBIC)
        folder = Path(out) / batch.labels[j]
        img.save(folder / f"{start + i:07d}.jpg", quality=90)
    return count


def make_jpeg_folder(out: Path, n: int, size: int, seed: int = 0, workers: int = 1) -> None:
    """``n`` JPEGs at ``size`` px in ``out/<class>/``: sample images upscaled (packaged sources)."""
    for c in sampledata.BASE_CLASSES:
        (out / c).mkdir(parents=True, exist_ok=True)
    chunk = max(1, min(2000, -(-n // max(workers, 1))))
    jobs = [(s, min(chunk, n - s), size, seed, str(out)) for s in range(0, n, chunk)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_chunk, jobs))
    else:
        for job in jobs:
            _write_chunk(job)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tutorial(folder: Path, args: argparse.Namespace, device: torch.device) -> float:
    """(a): ImageFolder + PIL + DataLoader, fp32; returns images/s over ``args.epochs`` epochs."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    tf = T.Compose([T.RandomResizedCrop(args.size), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize(model.MEAN, model.STD)])
    ds = ImageFolder(str(folder), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                         pin_memory=device.type == "cuda", drop_last=False,
                                         persistent_workers=args.workers > 0)
    net = model.build("alexnet", 2, hidden_units=args.hidden_units).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = loss_fn(net(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
        opt.zero_grad()
        loss.backward()
        opt.step()

    x0, y0 = next(iter(loader))
    step(x0, y0)  # warm-up (cuDNN autotune), outside the clock
    _sync(device)
    start, seen = time.perf_counter(), 0
    for _ in range(args.epochs):
        for x, y in loader:
            step(x, y)
            seen += len(y)
    _sync(device)
    return seen / (time.perf_counter() - start)


def fast(folder: Path, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(b): GPU decode + cached data + engine.fit; returns (end-to-end img/s, training-only img/s)."""
    settings = engine.DeviceOptions.for_device(device, compile=args.compile)
    index = data.list_images(str(folder), labelled=True, min_classes=2)

    def train(images: torch.Tensor, labels: torch.Tensor, epochs: int) -> None:
        engine.fit(model.build("alexnet", 2, hidden_units=args.hidden_units), images, labels, optimizer="sgd",
                   lr=0.01, momentum=0.9, batch_size=args.batch_size, epochs=epochs, seed=0, settings=settings)

    warm = fastpath.load(index.head(args.batch_size * 2), args.size, device)
    assert warm.labels is not None
    train(warm.images, warm.labels.to(device), 1)  # warm-up: nvJPEG, cuDNN, torch.compile
    _sync(device)
    start = time.perf_counter()
    loaded = fastpath.load(index, args.size, device)
    assert loaded.labels is not None
    labels = loaded.labels.to(device)
    t_train = time.perf_counter()
    train(loaded.images, labels, args.epochs)
    _sync(device)
    end = time.perf_counter()
    n = len(loaded) * args.epochs
    return n / (end - start), n / (end - t_train)


def drift_rate(folder: Path, args: argparse.Namespace, device: torch.device) -> float:
    """Drift-check features (serving model + image statistics) end to end from the folder, img/s."""
    settings = engine.DeviceOptions.for_device(device)
    net = model.build("alexnet", 2, hidden_units=args.hidden_units).eval()
    ckpt = model.Checkpoint(net.to(device), list(sampledata.BASE_CLASSES), args.size)
    index = data.list_images(str(folder), labelled=True, min_classes=2)
    features.model_outputs(ckpt, fastpath.load(index.head(64), args.size, device).images, settings)  # warm-up
    _sync(device)
    start = time.perf_counter()
    images = fastpath.load(index, args.size, device).images
    features.extract(ckpt, images, settings)
    _sync(device)
    return len(images) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on whatever device (CPU in CI)")
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--hidden-units", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    ap.add_argument("--folder", help="reuse this JPEG folder (generated when missing)")
    ap.add_argument("--tutorial-epochs", type=int, default=1, help="epochs for (a); it is slow")
    args = ap.parse_args(argv)
    if args.smoke:
        args.images, args.size, args.epochs, args.batch_size, args.hidden_units = 48, 64, 1, 16, 256
        args.workers, args.tutorial_epochs = 0, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'})"
    tmp = Path(tempfile.mkdtemp(prefix="gpu-train-"))
    folder = Path(args.folder) if args.folder else tmp / "jpegs"
    try:
        if not any(folder.glob("*/*.jpg")):
            t = time.perf_counter()
            make_jpeg_folder(folder, args.images, args.size, workers=max(args.workers, 1))
            print(f"# wrote {args.images} JPEGs at {args.size} px in {time.perf_counter() - t:.1f} s")
        print(f"# device: {name}; torch {torch.__version__}; images={args.images} size={args.size} "
              f"batch={args.batch_size} hidden={args.hidden_units} compile={args.compile} workers={args.workers}")
        a = tutorial(folder, argparse.Namespace(**{**vars(args), "epochs": args.tutorial_epochs}), device)
        b, b_train = fast(folder, args, device)
        d = drift_rate(folder, args, device)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"(a) tutorial ImageFolder+PIL+DataLoader: {a:,.0f} img/s")
    print(f"(b) fast path end to end (decode included): {b:,.0f} img/s; training only: {b_train:,.0f} img/s")
    print(f"ratio (b)/(a): {b / a:.1f}x")
    print(f"drift check end to end: {d:,.0f} img/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

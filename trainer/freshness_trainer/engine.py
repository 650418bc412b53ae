"""The training and inference loops, shared by the plain CPU path and the GPU fast path.

Data arrive as one uint8 tensor (N, 3, S, S) already decoded and resized (``data.load_images`` on
the CPU, ``fastpath.decode_folder`` on the GPU). Augmentation, normalisation and the forward pass
run as batched tensor ops on whatever device the images sit on, so the GPU path needs no
DataLoader workers: ``DeviceOptions`` only switches on bf16 autocast, channels_last and torch.compile.

Several processes (``fit(..., rank=, world_size=)``, DDP): every rank draws the same shuffled
order and augmentation parameters a single process would, and a ``DistributedSampler`` (without
its own shuffle) gives rank r every world_size-th position of that order, so each step's
``batch_size`` images are the single process's batch split over the ranks and the all-reduced
gradient is its gradient: the same params train the same way on 1 or N ranks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from freshness_trainer.model import MEAN, STD


@dataclass(frozen=True)
class DeviceOptions:
    """How to run the loops on a device; ``for_device`` picks the defaults for one."""

    device: torch.device
    amp: bool = False
    """bf16 autocast (CUDA only)."""
    channels_last: bool = False
    compile: bool = False

    @staticmethod
    def for_device(device: str | torch.device | None = None, *, compile: bool = False) -> DeviceOptions:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        cuda = dev.type == "cuda"
        return DeviceOptions(dev, amp=cuda, channels_last=cuda, compile=compile and cuda)


@functools.cache
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Built once per device: a fresh host->device copy per batch would stall the GPU queue.
    return (torch.tensor(MEAN, device=device).view(1, 3, 1, 1), torch.tensor(STD, device=device).view(1, 3, 1, 1))


def normalize(images: torch.Tensor, settings: DeviceOptions) -> torch.Tensor:
    """uint8 or [0,1] float images -> normalised float, on the settings' device and memory format."""
    x = images.to(settings.device, non_blocking=True)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    mean, std = _mean_std(x.device)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if settings.channels_last else x


def augment(x: torch.Tensor, generator: torch.Generator, share: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Random scale (0.85-1.15), shift (up to 8%) and horizontal flip as one batched affine warp.

    ``share`` = (rank, world size): ``x`` is every world-size-th image of a batch that many times
    larger, from ``rank`` on; each rank draws the whole batch's parameters and keeps its own.
    """
    n = x.shape[0]
    rank, size = share

    def rand(lo: float, hi: float) -> torch.Tensor:
        drawn = torch.rand(n * size, generator=generator, device=generator.device)[rank::size]
        return drawn.to(x.device) * (hi - lo) + lo

    scale = rand(0.85, 1.15)
    flip = torch.where(rand(0, 1) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = rand(-0.08, 0.08)
    theta[:, 1, 2] = rand(-0.08, 0.08)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=False)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Index batches over ``n`` items, shuffled when a generator is given (drops nothing)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def prepare_model(model: nn.Module, settings: DeviceOptions) -> nn.Module:
    """Move to the device, switch memory format and compile as the settings ask."""
    model = model.to(settings.device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if settings.compile:
        compiled: nn.Module = torch.compile(model)  # type: ignore[assignment]
        return compiled
    return model


def _autocast(settings: DeviceOptions) -> torch.autocast:
    return torch.autocast(settings.device.type, dtype=torch.bfloat16, enabled=settings.amp)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    batch_size: int,
    settings: DeviceOptions,
    generator: torch.Generator,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    label_smoothing: float = 0.0,
    share: tuple[int, int] = (0, 1),
) -> float:
    """One pass over the data with augmentation; returns the mean training loss (over all ranks).

    ``share`` = (rank, world size): this rank trains on its part of each batch of ``batch_size``.
    """
    model.train()
    aug_gen = torch.Generator(device=settings.device).manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
    # The loss is summed on the device and read once per epoch: no host sync per step.
    total, count = torch.zeros((), device=settings.device), torch.zeros((), device=settings.device)
    for idx in _my_batches(len(labels), batch_size, generator, share):
        x = augment(normalize(images[idx.to(images.device)], settings), aug_gen, share)
        y = labels[idx.to(labels.device)].to(settings.device, non_blocking=True)
        with _autocast(settings):
            loss = F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        total += loss.detach().float() * len(idx)
        count += len(idx)
    if share[1] > 1:
        sums = torch.stack([total, count])
        torch.distributed.all_reduce(sums)
        total, count = sums[0], sums[1]
    return float(total) / max(float(count), 1.0)


def _my_batches(n: int, batch_size: int, generator: torch.Generator, share: tuple[int, int]
                ) -> Iterator[torch.Tensor]:
    """This rank's part of each shuffled batch; with one rank exactly ``batches`` (same draws)."""
    rank, size = share
    if size == 1:
        yield from batches(n, batch_size, generator)
        return
    order = torch.randperm(n, generator=generator)
    # Rank r gets positions r, r+size, ... (padded so every rank takes as many steps: DDP needs that).
    mine = order[list(DistributedSampler(range(n), num_replicas=size, rank=rank, shuffle=False))]  # type: ignore[arg-type]
    per_rank = batch_size // size
    for i in range(0, len(mine), per_rank):
        yield mine[i : i + per_rank]


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, batch_size: int, settings: DeviceOptions) -> torch.Tensor:
    """Logits (float32, on the CPU) for every image, in order."""
    model.eval()
    out = []
    for idx in batches(len(images), batch_size):
        with _autocast(settings):
            out.append(model(normalize(images[idx.to(images.device)], settings)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def make_optimizer(model: nn.Module, name: str, *, lr: float, momentum: float, fused: bool = False
                   ) -> torch.optim.Optimizer:
    """AdamW (``momentum`` is beta1) or SGD with momentum, both with weight decay 5e-4."""
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(momentum, 0.999), weight_decay=5e-4, fused=fused)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=5e-4, fused=fused)


def warmup_cosine(steps: int, warmup: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up from 1/(warmup+1) to 1 over ``warmup`` steps, then cosine
    decay to 0 at ``steps`` (torchvision's reference recipes: ``--lr-warmup-method linear``,
    ``--lr-scheduler cosineannealinglr``). Pure."""
    warmup = min(max(warmup, 0), steps - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return 0.5 * (1 + math.cos(math.pi * min(step - warmup, steps - warmup) / (steps - warmup)))

    return factor


@dataclass
class Fitted:
    """What ``fit`` returns: the model (at its best epoch when validation data were given)."""

    model: nn.Module
    losses: list[float]
    """Mean training loss per epoch."""
    val_accuracy: list[float] = field(default_factory=list)
    """Validation accuracy after each epoch (empty without validation data)."""
    val_loss: list[float] = field(default_factory=list)
    """Validation loss after each epoch (empty without validation data)."""
    best_epoch: int = 0
    """1-based epoch whose weights the model holds (the last one without validation data)."""


def fit(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    optimizer: str,
    lr: float,
    momentum: float,
    batch_size: int,
    epochs: int,
    seed: int,
    settings: DeviceOptions,
    warmup_epochs: float = 0.0,
    label_smoothing: float = 0.0,
    val_images: torch.Tensor | None = None,
    val_labels: torch.Tensor | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> Fitted:
    """Train with AdamW or SGD, linear warm-up then cosine decay, optional label smoothing.

    With validation data the model is scored after every epoch and the weights of the best epoch
    (highest validation accuracy, ties to the lower validation loss) are kept: a late epoch that
    overshoots does not cost the run. With ``world_size`` > 1 (a process group joined) the model
    is wrapped in DDP, ``batch_size`` is the global batch (it must divide by ``world_size``) and
    rank 0 alone scores the validation data: only its ``Fitted`` holds the best epoch's weights.
    """
    if batch_size % world_size:
        raise ValueError(f"batch size {batch_size} does not divide by the world size {world_size}")
    torch.manual_seed(seed)
    if settings.device.type == "cpu":
        # Denormal floats (tiny activations and gradients) are slow on x86 CPUs: flushing them to
        # zero halved the epoch time on the sample set (3.3 s -> 1.6 s, 1 thread). Process-wide.
        torch.set_flush_denormal(True)
    model = prepare_model(model, settings)
    trained: nn.Module = model
    if world_size > 1:  # gradients all-reduced (averaged) across the ranks in backward()
        cuda = settings.device.type == "cuda"
        trained = DistributedDataParallel(model, device_ids=[settings.device] if cuda else None)
    opt = make_optimizer(trained, optimizer, lr=lr, momentum=momentum, fused=settings.device.type == "cuda")
    per_epoch = math.ceil(len(labels) / batch_size)  # also per rank: ceil(ceil(n/w) / (b/w)) = ceil(n/b)
    steps = max(1, epochs * per_epoch)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, round(warmup_epochs * per_epoch)))
    generator = torch.Generator().manual_seed(seed)
    out = Fitted(model, [])
    best: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch = epochs
    for epoch in range(1, epochs + 1):
        loss = train_one_epoch(
            trained, opt, images, labels, batch_size=batch_size, settings=settings, generator=generator,
            schedule=schedule, label_smoothing=label_smoothing, share=(rank, world_size),
        )
        out.losses.append(loss)
        out.best_epoch = epoch
        if val_images is None or val_labels is None or len(val_labels) == 0 or rank != 0:
            continue
        logits = predict(model, val_images, batch_size=max(batch_size, 128), settings=settings)
        truth = val_labels.cpu()
        known = truth >= 0  # a class the model lacks (-1) is always wrong
        acc = float((logits.argmax(1) == truth).float().mean())
        val_loss = float(F.cross_entropy(logits[known], truth[known])) if bool(known.any()) else 0.0
        out.val_accuracy.append(acc)
        out.val_loss.append(val_loss)
        if best is None or (acc, -val_loss) > best:
            best = (acc, -val_loss)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best_epoch = epoch
    if best_state is not None:
        model.load_state_dict(best_state)
        out.best_epoch = best_epoch
    return out

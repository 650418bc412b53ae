"""DDP in the training loop: the launch line from the pod's environment, and 2 ranks = 1 process.

The equivalence test runs ``engine.fit`` under a real ``torchrun`` (2 processes, gloo, this CPU)
and alone, on the same synthetic images with the same params: the gradients are all-reduced over
the ranks and each rank trains on its half of every batch, so the weights must match.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from freshness_contract import launch
from freshness_trainer import distributed
from freshness_trainer.errors import TrainerError

ROOT = Path(__file__).resolve().parents[2]
GROUP_ENV = {
    launch.NNODES: "2", launch.NPROC_PER_NODE: "1", launch.NODE_RANK: "1", launch.RDZV_ID: "cats-train-1-0",
    launch.NODE_ADDR: "cats-train-1-0-1.cats-train-1-0", launch.MASTER_ADDR: "cats-train-1-0-0.cats-train-1-0",
    launch.MASTER_PORT: "29400",
}


def test_no_group_without_the_launch_env() -> None:
    assert distributed.Group.from_env({}) is None
    assert distributed.Group.from_env({launch.NNODES: "1", launch.NPROC_PER_NODE: "1"}) is None
    assert distributed.World.from_env({}) == distributed.World(0, 0, 1)


def test_torchrun_meets_at_index_0_with_c10d() -> None:
    group = distributed.Group.from_env(GROUP_ENV)
    assert group is not None and group.world_size == 2 and group.node_rank == 1
    argv = group.torchrun_argv("freshness_trainer.stages.train")
    assert argv[1:3] == ["-m", "torch.distributed.run"] and argv[-2:] == ["-m", "freshness_trainer.stages.train"]
    assert "--rdzv-backend=c10d" in argv and "--rdzv-endpoint=cats-train-1-0-0.cats-train-1-0:29400" in argv
    assert "--nnodes=2" in argv and "--local-addr=cats-train-1-0-1.cats-train-1-0" in argv
    assert any(a.startswith("--rdzv-conf=is_host=0,") for a in argv)  # only index 0 hosts the rendezvous
    host = distributed.Group.from_env({**GROUP_ENV, launch.NODE_RANK: "0"})
    assert host is not None and any(a.startswith("--rdzv-conf=is_host=1,") for a in host.torchrun_argv("m"))
    one_pod = distributed.Group.from_env({launch.NNODES: "1", launch.NPROC_PER_NODE: "8"})
    assert one_pod is not None and "--standalone" in one_pod.torchrun_argv("m")


@pytest.mark.parametrize(("env", "says"), [
    ({launch.NNODES: "two"}, "FRESHNESS_NNODES='two'"),
    ({launch.NNODES: "2"}, "needs MASTER_ADDR"),
    ({**GROUP_ENV, launch.NODE_RANK: "2"}, "FRESHNESS_NODE_RANK=2: expected 0..1"),
    ({launch.NNODES: "0"}, "expected 1 or more"),
])
def test_a_bad_launch_env_is_named(env: dict[str, str], says: str) -> None:
    with pytest.raises(TrainerError, match="InvalidLaunch") as err:
        distributed.Group.from_env(env)
    assert says in str(err.value)


FIT = '''
import json, sys, torch
from torch import nn
from freshness_trainer import distributed, engine
torch.set_num_threads(1)
world = distributed.World.from_env()
settings = engine.DeviceOptions.for_device("cpu")
world.init(settings.device)
g = torch.Generator().manual_seed(1)
images = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=g)
labels = (images.float().mean((1, 2, 3)) > 127.5).long()
torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
fitted = engine.fit(net, images, labels, optimizer="sgd", lr=0.05, momentum=0.9, batch_size=8, epochs=3, seed=0,
                    settings=settings, val_images=images[:16], val_labels=labels[:16], rank=world.rank,
                    world_size=world.size)
if world.main:
    weights = [float(p.detach().double().sum()) for p in fitted.model.parameters()]
    json.dump({"losses": fitted.losses, "weights": weights, "val": fitted.val_accuracy}, open(sys.argv[1], "w"))
else:
    assert fitted.val_accuracy == []  # rank 0 alone scores the validation data
world.close()
'''


@pytest.mark.slow
def test_two_gloo_ranks_train_like_one_process(tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(FIT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'contract'}:{ROOT / 'trainer'}", "OMP_NUM_THREADS": "1"}
    alone = subprocess.run([sys.executable, str(script), str(tmp_path / "one.json")], env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert alone.returncode == 0, alone.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          str(script), str(tmp_path / "two.json")], env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-4)  # the loss is averaged over both ranks
    assert two["weights"] == pytest.approx(one["weights"], rel=1e-4, abs=1e-5)
    assert two["val"] == one["val"] and len(one["val"]) == 3

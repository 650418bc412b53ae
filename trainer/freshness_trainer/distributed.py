"""One candidate on several processes: torchrun's launch line and the process group.

The operator describes the group in the pod's environment (``freshness_contract.launch``); the
train stage, run by ``dvc exp run`` on pod 0 or directly on the other pods (``cli``), starts
``torchrun`` with it (``Group.torchrun_argv``), and each process torchrun starts joins the process
group (``World.init``): NCCL on CUDA, gloo on the CPU. Ranks come from the c10d rendezvous at pod
0, which is always rank 0: it hosts the rendezvous (``is_host``) and the rendezvous orders nodes by
their address, ``<job>-<index>.<service>``, in which index 0 sorts first. Rank 0 alone evaluates and
writes the model, the metrics and the step result (docs/operator.md#multi-node-candidates).
Pure, except ``World.init`` and ``World.close`` (the process group).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from freshness_contract import launch

from freshness_trainer.errors import TrainerError

RDZV_TIMEOUT_S = 600  # pods start minutes apart on a busy cluster; the Job's deadline bounds it anyway


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise TrainerError("InvalidLaunch", f"{name}={text!r}: expected a whole number") from None


@dataclass(frozen=True)
class Group:
    """What the operator asked for: ``nnodes`` pods x ``nproc_per_node`` processes. Pure."""

    nnodes: int
    nproc_per_node: int
    node_rank: int = 0
    node_addr: str = ""
    master_addr: str = ""
    master_port: int = launch.RDZV_PORT
    rdzv_id: str = "freshness"

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> Group | None:
        """The group of this pod, or None for a one-process candidate."""
        nnodes, nproc = _int(env, launch.NNODES, 1), _int(env, launch.NPROC_PER_NODE, 1)
        if nnodes < 1 or nproc < 1:
            raise TrainerError("InvalidLaunch", f"{launch.NNODES}={nnodes}, {launch.NPROC_PER_NODE}={nproc}: "
                                                "expected 1 or more")
        if nnodes == 1 and nproc == 1:
            return None
        # Without NODE_ADDR (e.g. a Kubeflow TrainJob): this pod's own FQDN, from its /etc/hosts.
        addr = env.get(launch.NODE_ADDR) or (socket.getfqdn() if nnodes > 1 else "")
        group = Group(nnodes, nproc, _int(env, launch.NODE_RANK, 0), addr, env.get(launch.MASTER_ADDR, ""),
                      _int(env, launch.MASTER_PORT, launch.RDZV_PORT), env.get(launch.RDZV_ID, "freshness"))
        if nnodes > 1 and not group.master_addr:
            raise TrainerError("InvalidLaunch", f"{launch.NNODES}={nnodes} needs {launch.MASTER_ADDR}, the "
                                                "rendezvous host (set by the operator on each pod)")
        if not 0 <= group.node_rank < nnodes:
            raise TrainerError("InvalidLaunch", f"{launch.NODE_RANK}={group.node_rank}: expected 0..{nnodes - 1}")
        return group

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    def torchrun_argv(self, module: str) -> list[str]:
        """``python -m torch.distributed.run ... -m module`` for this pod. Pure."""
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={self.nproc_per_node}",
                "--max-restarts=0"]  # a replaced rank cannot rejoin: the candidate fails as one group
        if self.nnodes == 1:
            return [*argv, "--standalone", "-m", module]
        host = "1" if self.node_rank == 0 else "0"
        return [*argv, f"--nnodes={self.nnodes}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={self.master_addr}:{self.master_port}", f"--rdzv-id={self.rdzv_id}",
                f"--rdzv-conf=is_host={host},read_timeout={RDZV_TIMEOUT_S},join_timeout={RDZV_TIMEOUT_S}",
                f"--local-addr={self.node_addr}", "-m", module]


def under_torchrun(env: Mapping[str, str] = os.environ) -> bool:
    """True in a process torchrun started (it sets these for every worker)."""
    return "TORCHELASTIC_RUN_ID" in env and "LOCAL_RANK" in env


@dataclass(frozen=True)
class World:
    """This process's place in the group: rank 0 of 1 when it runs alone."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> World:
        return World(_int(env, "RANK", 0), _int(env, "LOCAL_RANK", 0), _int(env, "WORLD_SIZE", 1))

    @property
    def main(self) -> bool:
        """Rank 0: the one process that evaluates and writes."""
        return self.rank == 0

    def device(self, requested: str | None) -> str | None:
        """One GPU per process: ``cuda:<local rank>`` when several processes share a pod's GPUs."""
        if self.size > 1 and requested in (None, "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def init(self, device: torch.device) -> str | None:
        """Join the process group (torchrun's env:// rendezvous); returns the backend, None alone."""
        if self.size == 1:
            return None
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        if dist.get_world_size() != self.size or dist.get_rank() != self.rank:
            raise TrainerError("InvalidLaunch", f"process group {dist.get_rank()}/{dist.get_world_size()} "
                                                f"differs from torchrun's RANK/WORLD_SIZE {self.rank}/{self.size}")
        return backend

    def close(self) -> None:
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()

"""PyTorch DDP plumbing for runs launched by `torchrun` (NCCL on GPU, Gloo on CPU).

Outside torchrun (no WORLD_SIZE) everything degrades to a single process, so the same stage command
works both ways.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Topology:
    """This process's place in the run."""

    world: int
    rank: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device_name: str) -> tuple[Topology, torch.device]:
    """Join the process group if launched by torchrun; returns the topology and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank if world > 1 else None)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Topology(world, rank, local_rank), device


def named_device(name: str) -> torch.device:
    """The device `name` stands for: `auto` is CUDA when available, else the CPU (nothing is initialised)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """`named_device`, made current; under DDP each rank takes its local GPU."""
    device = named_device(name)
    if device.type == "cuda" and local_rank is not None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

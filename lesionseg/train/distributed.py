"""Running the trainer unchanged under ``torchrun``: DistributedDataParallel with NCCL on GPUs, gloo on CPUs.

``torchrun --nproc_per_node N -m lesionseg train ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
the trainer then joins the process group, wraps the network in DDP and shards each epoch's active slices
across the ranks. Only rank 0 writes logs, checkpoints and the bundle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistInfo:
    """The process's place in a distributed run (world size 1 = a plain single process)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.active:
        import torch.distributed as dist

        dist.barrier()


def broadcast(info: DistInfo, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (picklable plain data)."""
    if not info.active:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def finish(info: DistInfo) -> None:
    """Leave the process group cleanly (a barrier first: rank 0 was seen to abort at exit without it)."""
    if info.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

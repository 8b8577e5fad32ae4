"""Data-parallel training through PyTorch's own engine (torchrun + DistributedDataParallel).

`torchrun --nproc_per_node N -m squeezelab train ...` starts N copies of the same command with
RANK/WORLD_SIZE/LOCAL_RANK set; `setup()` joins them into one process group (gloo on CPU, NCCL on
GPU). Each rank trains on its shard of every epoch (DistributedSampler), gradients are averaged by
DDP, metrics are summed across ranks with `all_reduce`, and only rank 0 writes files or prints.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_kind: str) -> DistInfo:
    """Join the process group when started by torchrun; a no-op for a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The element-wise sum of `tensor` over all ranks (itself when single-process)."""
    if not info.enabled:
        return tensor
    device = torch.device("cuda", info.local_rank) if dist.get_backend() == "nccl" else torch.device("cpu")
    buffer = tensor.to(device).clone()
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.to(tensor.device)


def broadcast_flag(flag: bool, info: DistInfo) -> bool:
    """True on every rank when any rank says True (used to stop all ranks together)."""
    if not info.enabled:
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)]), info).item() > 0)


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()

"""Process groups the torchrun way: RANK / WORLD_SIZE / LOCAL_RANK from the environment, else one process."""
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from src.runtime import resolve_device

WAIT = timedelta(hours=3)  # the longest a rank waits for the others at a barrier or collective


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device_name):
    """Join the torchrun process group if there is one (NCCL on CUDA, GLOO on CPU) and pick the device."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Dist(0, 1, resolve_device(device_name))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # rank 0 alone trains the meta classifier and the SVM while the others wait at a barrier: NCCL's default
        # of 10 minutes would end the job on a large set
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                timeout=WAIT)
    return Dist(rank, world_size, device)


def shard(indices, ctx):
    """This rank's share of `indices`: every item exactly once over all ranks, no padding."""
    return list(indices)[ctx.rank::ctx.world_size]


def shard_listed(todo, ctx):
    """This rank's share of `todo`, a list of what is not on disk yet, once every rank has made its list: a rank
    that wrote its first output before another listed would shorten that rank's list, shift its share and leave
    an item to no rank."""
    barrier(ctx)
    return shard(todo, ctx)


def any_rank(flag, ctx):
    """True on every rank when `flag` is true on any rank (so all ranks stop together)."""
    if ctx.world_size == 1:
        return bool(flag)
    t = torch.tensor([float(flag)], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(ctx):
    if ctx.world_size > 1:
        dist.barrier()


def cleanup():
    if dist.is_initialized():
        dist.destroy_process_group()

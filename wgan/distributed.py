"""Data-parallel training across processes launched by `torchrun` (NCCL on GPUs, gloo on CPUs).

Every rank holds the same networks, optimiser states and random-number state. All random draws
are made for the *global* batch on every rank and each rank keeps its own contiguous slice
(`Shard.take`), so K ranks compute exactly the shards of the single-process batch; averaging
the gradients across ranks then gives the single-process gradient, and resuming with another
number of ranks continues the same run.

Gradients are averaged with one `all_reduce` of the flattened gradients after each backward,
as NVIDIA's StyleGAN2-ADA/StyleGAN3 training loops do, rather than through the
DistributedDataParallel wrapper: DDP's reducer does not support the double backward of the
gradient penalty (pytorch/pytorch#63929, wrong gradients reported in #47562).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global-batch tensor (sizes differ by at most one
        when the batch does not divide evenly)."""
        return x if self.world == 1 else torch.tensor_split(x, self.world)[self.rank]

    def draw(self, n: int, sample) -> torch.Tensor:
        """`sample(total)` draws for the global batch of n * world; returns this rank's slice."""
        return self.take(sample(n * self.world)) if self.world > 1 else sample(n)


SINGLE = Shard()


def is_main_process() -> bool:
    """False in the non-main processes of a torchrun launch (they print and write nothing)."""
    return int(os.environ.get("RANK", "0")) == 0


def from_environment(device_type: str) -> Shard:
    """The shard of this process: from torchrun's RANK/WORLD_SIZE, initialising the process
    group (NCCL for CUDA, gloo otherwise) on first use; a single shard without torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Shard(dist.get_rank(), dist.get_world_size())


def wait_for_all(shard: Shard) -> None:
    """A barrier: ranks leave a run together (gloo can abort a process whose peers tear down
    their connections while it is still writing)."""
    if shard.world > 1:
        dist.barrier()


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on CUDA, each process uses the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        index = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def average_gradients(module: torch.nn.Module, shard: Shard) -> None:
    """Replace every gradient by its mean over the ranks (one flattened all_reduce)."""
    if shard.world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= shard.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_stats(stats: dict[str, float], shard: Shard, device: torch.device) -> dict[str, float]:
    """The mean of each logged number over the ranks (the global-batch value)."""
    if shard.world == 1:
        return stats
    keys = sorted(stats)
    values = torch.tensor([stats[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(keys, (values / shard.world).tolist()))


def any_rank(flag: bool, shard: Shard, device: torch.device) -> bool:
    """True on every rank when it is true on any (e.g. a stop request seen by one process)."""
    if shard.world == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def weight_spread(modules: list[torch.nn.Module], shard: Shard, device: torch.device) -> float:
    """Largest difference of any weight between ranks (0 when they are in step)."""
    if shard.world == 1:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).double() for m in modules for p in m.parameters()]).to(device)
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).abs().max())


class _SumOverRanks(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: the gradient of a sum over ranks is the sum of the
    ranks' upstream gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = x.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm over the global batch of all ranks (sums and squares all-reduced through
    autograd), so a sharded generator normalises exactly as the single-process one does. Used on
    CPUs (gloo) and GPUs alike; a drop-in for BatchNorm2d with the same parameters and buffers."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        # Statistics in float32 whatever autocast hands in (bf16 sums over a batch lose digits, and
        # the running buffers are float32); the output keeps the input's dtype, as BatchNorm2d's does.
        dtype, x = x.dtype, x.float()
        c = x.shape[1]
        local = torch.cat([x.sum((0, 2, 3)), x.square().sum((0, 2, 3)),
                           torch.tensor([x.numel() / c], device=x.device, dtype=x.dtype)])
        total = _SumOverRanks.apply(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean.square()).clamp(min=0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)
        shape = (1, c, 1, 1)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (out * self.weight.view(shape) + self.bias.view(shape)).to(dtype)


def synchronise_batch_norm(module: torch.nn.Module) -> None:
    """Turn every BatchNorm2d of `module` into GlobalBatchNorm2d in place (weights kept)."""
    for child in module.modules():
        if type(child) is torch.nn.BatchNorm2d:
            child.__class__ = GlobalBatchNorm2d

"""Scale-out with PyTorch's engine: ``torchrun`` starts the processes, this module joins them.

``torchrun --nproc_per_node=N -m snnrs distill ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`setup` reads them and joins the process group (NCCL on GPUs, gloo on
the CPU). A plain ``python -m snnrs`` is one process with no group at all. Only rank 0 writes
files and shows progress; metrics are summed across ranks with :func:`all_reduce_sum`.

Example:
    >>> ctx = setup("cpu")                              # no torchrun variables: one process
    >>> ctx.rank, ctx.world_size, ctx.is_main, str(ctx.device)
    (0, 1, True, 'cpu')
    >>> all_reduce_sum(ctx, torch.tensor([1.0, 2.0]))
    tensor([1., 2.])
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from .config import check_device


@dataclass(frozen=True)
class Context:
    """Where this process sits: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"``: this process's GPU when CUDA is available, else the CPU; ``"cuda"``: GPU
    ``local_rank``; ``"cpu"`` and ``"cuda:N"`` as given."""
    if check_device(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available; use "
                         "--device cpu")
    resolved = torch.device(f"cuda:{local_rank}" if device == "cuda" else device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if resolved.type == "cuda" and resolved.index >= count:
        raise ValueError(f"device {str(resolved)!r} asked for, but this machine's CUDA devices "
                         f"are cuda:0 to cuda:{count - 1}")
    return resolved


def setup(device: str = "auto") -> Context:
    """Joins the process group torchrun describes (if any) and picks this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    ctx = Context(rank, world_size, local_rank, resolve_device(device, local_rank))
    if ctx.distributed and not dist.is_initialized():
        if ctx.device.type == "cuda":
            torch.cuda.set_device(ctx.device)
        dist.init_process_group("nccl" if ctx.device.type == "cuda" else "gloo",
                                device_id=ctx.device if ctx.device.type == "cuda" else None)
    return ctx


def teardown(ctx: Context) -> None:
    """Leaves the process group :func:`setup` joined."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: nn.Module, ctx: Context) -> nn.Module:
    """``module`` in DistributedDataParallel when there are several processes (its gradients
    are then averaged across ranks in ``backward``), else ``module`` itself.

    Only what trains is wrapped: a method's frozen teacher is outside its parameters. Unused
    parameters are looked for only when the module declares ``find_unused_parameters`` (the
    hybrid method, whose adapters sit out until their blocks' turn): the search costs a
    traversal of the autograd graph every step.
    """
    if not ctx.distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(
        module, device_ids=device_ids,
        find_unused_parameters=getattr(module, "find_unused_parameters", False))


def all_reduce_sum(ctx: Context, t: Tensor) -> Tensor:
    """The element-wise sum of ``t`` over all ranks (``t`` itself in one process)."""
    if ctx.distributed:
        t = t.clone()
        dist.all_reduce(t)
    return t


def barrier(ctx: Context) -> None:
    """Waits for every rank (a no-op in one process)."""
    if ctx.distributed:
        dist.barrier(device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

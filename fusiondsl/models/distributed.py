"""Data-parallel training across processes and machines with :mod:`torch.distributed`.

``torchrun --nproc_per_node=N -m fusiondsl.models.train …`` starts N processes; each calls
:func:`setup`, which joins the process group that torchrun describes in the environment
(gloo on CPUs, NCCL on GPUs, one GPU per process). Nothing else changes for the caller:
:func:`fusiondsl.models.fitting.fit` sees the group and trains data-parallel.

How a step is shared: every process holds the (small) data set and draws the same shuffled
order, so all agree on each batch of ``batch_size`` structures; process r collates and runs
only its share, structures ``r, r + N, …`` (:func:`share_of_batch`, the role of PyTorch's
``DistributedSampler``). Its loss divides sums by the whole batch's counts
(:func:`fusiondsl.models.loss.batch_loss` with ``totals``), so the shares add up to the loss
of the whole batch; multiplied by N before ``backward``, DistributedDataParallel's average of
the gradients is then exactly the single-process gradient of the whole batch, whatever the
sizes of the shares. ``batch_size`` means the same thing for any N, and so do the learning
rate and the schedule. Validation and test sets are split the same way and their error sums
added up (:func:`all_reduce_sum`). Only rank 0 writes files.

>>> world()
World(rank=0, size=1, local_rank=0)
>>> share_of_batch(["a", "b", "c"], World(rank=1, size=2, local_rank=1))
(['b'], 1.0)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Attributes:
        rank: 0 to ``size - 1``; rank 0 writes the files.
        size: the number of processes (1 without a process group).
        local_rank: the rank among the processes of this machine (its GPU index).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and progress."""
        return self.rank == 0


def world() -> World:
    """This process's :class:`World`: from the process group when there is one."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def launched() -> bool:
    """Whether torchrun (or another ``env://`` launcher) started this process."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR"))


def setup(device: Device = "auto") -> tuple[World, torch.device, bool]:
    """Join torchrun's process group, if launched by it, and choose this process's device.

    Args:
        device: ``"cuda"``, ``"cpu"``, or ``"auto"`` (CUDA when there is a GPU).

    Returns:
        ``(world, device, joined)``: ``joined`` is True when this call created the group
        (then :func:`teardown` should end it).
    """
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    joined = False
    if launched() and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if cuda else "gloo")
        joined = True
    here = world()
    return here, torch.device(f"cuda:{here.local_rank}" if cuda else "cpu"), joined


def teardown(joined: bool) -> None:
    """End the process group if :func:`setup` created it."""
    if joined and dist.is_initialized():
        dist.destroy_process_group()


def share_of_batch(structures: Sequence[T], here: World) -> tuple[list[T], float]:
    """This process's share of one batch, and the weight of its loss (1, or 0 for a stand-in).

    A process whose share would be empty (a batch smaller than the number of processes) runs
    the batch's first structure with weight 0: every process must take part in the gradient
    average, and a zero weight adds nothing to it.
    """
    mine = list(structures[here.rank::here.size])
    return (mine, 1.0) if mine else (list(structures[:1]), 0.0)


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum of ``values`` over all processes (``values`` itself without a process group)."""
    if world().size == 1:
        return values
    moved = values.cuda() if dist.get_backend() == "nccl" else values
    dist.all_reduce(moved)
    return moved.to(values.device)


def from_rank0(value: T) -> T:
    """Rank 0's ``value`` on every process (a decision all must share, e.g. what to resume)."""
    if world().size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap(model: torch.nn.Module, here: World, device: torch.device) -> torch.nn.Module:
    """The model for training: in DistributedDataParallel when there are several processes.

    A model with nothing to train is returned as it is (DDP refuses it, and no gradient needs
    averaging). Some parameters get no gradient in some steps (e.g. an energy-only readout
    when the energy weight is 0), hence ``find_unused_parameters``.
    """
    if here.size == 1 or not any(p.requires_grad for p in model.parameters()):
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                     find_unused_parameters=True)

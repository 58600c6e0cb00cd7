"""Runtime of generated Triton layers: launching a node's kernels.

A fuse node with its result's cotangent is a closed multilinear diagram over its *roles*
(operands ``x0…``, result ``out``, weights ``w``). The kernel for one role takes every
other role and returns ∂F/∂role; the autograd that chains them to every derivative order is
:mod:`fusiondsl.backends.contract`, shared with the C backend.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl

from fusiondsl.backends.contract import fuse
from fusiondsl.backends.graph_ops import gate, scatter_sum

__all__ = ["NodeKernels", "fuse", "gate", "launch", "scatter_sum"]

# BLOCK_Z ≥ 16 keeps tl.dot legal on a GPU; on the CPU interpreter one size is used.
BLOCK_Z_CANDIDATES = (16, 32, 64)
_TUNED: dict[tuple, int] = {}
# Coefficient entries per step of a kernel's entry loop: one on a GPU (the tile stays small),
# many on the interpreter, whose cost is per operation, not per element.
BLOCK_E = 32 if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0") else 1


@dataclass(frozen=True, eq=False)
class NodeKernels:
    """The kernels of one fuse node, one per role, and the layout of each role's tensor.

    Attributes:
        name: the node's name in the diagram.
        roles: ``x0``…, ``out`` and (when weighted) ``w``, in kernel argument order.
        widths: per role, the row width (``[Z, width]``) or the weight count.
        external: whether the weights are per sample (``[Z, count]``).
        kernels: per role, ``(jit function, BLOCK_C, programs along the channel axis)``.
        tables: the paths, from which each role's coefficient tables are built (cached per
            device and dtype) and passed to its kernel.
    """

    name: str
    roles: tuple[str, ...]
    widths: tuple[int, ...]
    external: bool
    kernels: dict[str, tuple[Any, int, int]]
    tables: Any = None

    joint = False  # no one-call gradient of every operand (the C backend's ``<node>_xs``)

    def launch(self, target: str, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The kernel of ``target`` on the other roles (:func:`launch`)."""
        return launch(self, target, inputs)

    def launch_joint(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Not available: ``joint`` is ``False``."""
        raise NotImplementedError("the triton backend has no joint gradient kernel")


def interpreting() -> bool:
    """Whether Triton runs on the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _check_device(device: torch.device) -> None:
    if device.type != "cuda" and not interpreting():
        raise RuntimeError("the triton backend runs on CUDA tensors, or on the CPU under "
                           "TRITON_INTERPRET=1; use backend='einsum' on the CPU")


def choose_block_z(key: tuple, run: Callable[[int], object]) -> int:
    """Rows per program: the fastest candidate on a GPU (timed once per key), 16 on the CPU."""
    if interpreting():
        return BLOCK_Z_CANDIDATES[0]
    if key not in _TUNED:
        from triton.testing import do_bench

        _TUNED[key] = min(BLOCK_Z_CANDIDATES, key=lambda b: do_bench(lambda: run(b)))
    return _TUNED[key]


def launch(node: NodeKernels, target: str, inputs: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Run the kernel of one role on the other roles' tensors (``None`` at ``target``)."""
    tensors = [x.contiguous() for x in inputs if x is not None]
    dtype = functools.reduce(torch.promote_types, [x.dtype for x in tensors])
    device = tensors[0].device
    _check_device(device)
    rows = next(x.shape[0] for x, r in zip(inputs, node.roles)
                if x is not None and (r != "w" or node.external))
    width = node.widths[node.roles.index(target)]
    fn, block_c, grid_c = node.kernels[target]
    summed = target == "w" and not node.external  # internal weights: sum over programs
    acc = tl.float64 if dtype == torch.float64 else tl.float32
    out_dtype = torch.float64 if dtype == torch.float64 else torch.float32  # paths add into it
    tables = node.tables.args(target, device, out_dtype) if node.tables is not None else ()

    def run(block_z: int) -> torch.Tensor:
        blocks = triton.cdiv(rows, block_z)
        result = torch.zeros((blocks if summed else rows, width), dtype=out_dtype, device=device)
        if rows:
            fn[(blocks, grid_c)](*tensors, result, *tables, rows, ACC=acc,
                                 USE_DOT=dtype != torch.float64, BLOCK_Z=block_z,
                                 BLOCK_C=block_c, BLOCK_E=BLOCK_E)
        return result

    block_z = choose_block_z((id(fn), triton.next_power_of_2(max(rows, 1)), dtype), run)
    result = run(block_z)
    return (result.sum(0) if summed else result).to(dtype)

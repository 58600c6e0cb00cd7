"""Timing helpers shared by ``fusiondsl bench`` and ``benchmarks/``: medians, peers, passes.

Timings are medians over repeats, and a speed claim is always a ratio to a peer timed in the
same process (the machines are shared and noisy).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

Pass = str  # "forward" | "backward" | "double"
PASSES: tuple[Pass, ...] = ("forward", "forward+backward", "double backward")


def median_ms(fn: Callable[[], Any], repeats: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def make_pass(layer: torch.nn.Module, inputs: Sequence[torch.Tensor], kind: Pass) -> Callable:
    """A closure running one pass: forward, forward+backward, or a double backward."""
    leaves = [x for x in inputs if x.is_floating_point() and x.requires_grad]

    def forward() -> None:
        with torch.no_grad():
            layer(*inputs)

    def backward() -> None:
        layer(*inputs).pow(2).sum().backward()

    def double() -> None:
        out = layer(*inputs).pow(2).sum()
        grads = torch.autograd.grad(out, leaves, create_graph=True)
        sum(g.pow(2).sum() for g in grads).backward()

    return {"forward": forward, "forward+backward": backward, "double backward": double}[kind]


def inputs_for(irreps_in: Sequence[Any], batch: int, dtype: torch.dtype, extra: int = 0,
               seed: int = 0) -> list[torch.Tensor]:
    """Random leaf tensors (requires_grad) for a layer's legs, plus per-sample weights."""
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(batch, ir.dim, generator=gen, dtype=dtype).requires_grad_()
          for ir in irreps_in]
    if extra:
        xs.append(torch.randn(batch, extra, generator=gen, dtype=dtype).requires_grad_())
    return xs


def e3nn_peer(layer: torch.nn.Module) -> torch.nn.Module | None:
    """An ``e3nn.o3.TensorProduct`` computing the same binary fuse (weights copied), or None."""
    try:
        from e3nn import o3
    except ImportError:
        return None
    plan = getattr(layer, "plan", None)
    if plan is None or len(plan.paths.diagram.nodes) != 1 or len(layer.irreps_in) != 2:
        return None
    ins = [(p.inputs[0], p.inputs[1], p.out_entry, p.mode, p.weight_shape is not None,
            p.coefficient**2) for p in plan.paths.paths]
    if any(i[3] not in ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv") for i in ins):
        return None
    external = plan.external_numel > 0
    tp = o3.TensorProduct(*(str(i) for i in (*layer.irreps_in, layer.irreps_out)), ins,
                          irrep_normalization="none", path_normalization="none",
                          shared_weights=not external, internal_weights=not external)
    if not external and tp.weight_numel:
        with torch.no_grad():
            tp.weight.copy_(layer.weight.detach().to(tp.weight.dtype))
    return tp

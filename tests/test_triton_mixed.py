"""Triton backend: paths of different channel shapes (``uvw`` and ``uvu``) into one output entry.

Runs on the CPU through Triton's interpreter; float64 values and gradients against einsum.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

import fusiondsl

pytest.importorskip("triton")
o3 = pytest.importorskip("e3nn.o3")


def _mixed_tp() -> torch.nn.Module:
    """``1x0e + 2x1o ⊗ 0e + 1o → 2x1o``: a ``uvw`` and a ``uvu`` instruction into one entry."""
    torch.manual_seed(0)
    return o3.TensorProduct("2x0e + 2x1o", "1x0e + 1x1o", "2x1o",
                            [(0, 1, 0, "uvw", True), (1, 0, 0, "uvu", True)],
                            internal_weights=True, shared_weights=True).double()


def test_mixed_modes_into_one_entry_match_einsum_and_e3nn() -> None:
    """One Triton layer (not one per mode) equals einsum to second order, and e3nn."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tp = _mixed_tp()
        tri = fusiondsl.from_e3nn(tp, backend="triton")
        ref = fusiondsl.from_e3nn(tp, backend="einsum")
    finally:
        torch.set_default_dtype(old)
    assert "tl.debug_barrier()" in tri.source  # one layer of Triton kernels, both modes in it
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    outs = [layer(x, y) for layer in (tri, ref, tp)]
    cot = torch.randn(outs[0].shape, dtype=torch.float64)
    grads = [torch.autograd.grad(o, [x, y, layer.weight], cot, create_graph=True)
             for o, layer in zip(outs, (tri, ref))]
    seconds = [torch.autograd.grad(sum(g.square().sum() for g in gs), [x, y, layer.weight])
               for gs, layer in zip(grads, (tri, ref))]
    for got, want in zip([outs[0], *grads[0], *seconds[0]], [outs[1], *grads[1], *seconds[1]]):
        assert (got - want).abs().max().item() <= 1e-12
    assert (outs[0] - outs[2]).abs().max().item() <= 1e-12

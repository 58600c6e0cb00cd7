"""C backend: paths of different connection modes into one output entry add into one result.

The accumulators are ``[component][channel]`` whatever the mode, so an e3nn product whose
instructions mix ``uvw`` and ``uvu`` into the same output irrep is one C layer (no split per
mode), equal to the einsum backend in float64, values and derivatives to second order.
"""

from __future__ import annotations

import pytest
import torch

from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.nn.interop import from_e3nn
from fusiondsl.nn.testing import random_inputs

o3 = pytest.importorskip("e3nn.o3")
pytestmark = pytest.mark.skipif(not c_runtime.available(), reason="no C compiler")


def _mixed_tp() -> torch.nn.Module:
    """``2x0e + 2x1o ⊗ 0e + 1o → 2x0e + 2x1o``: uvw and uvu paths into both outputs."""
    torch.manual_seed(0)
    ins = [(0, 0, 0, "uvw", True), (1, 1, 0, "uvu", True), (1, 0, 1, "uvu", True),
           (0, 1, 1, "uvw", True)]
    return o3.TensorProduct("2x0e + 2x1o", "0e + 1o", "2x0e + 2x1o", ins).double()


def _derivatives(layer: torch.nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Output, first derivatives (inputs and weights) and a second-derivative contraction."""
    gen = torch.Generator().manual_seed(4)
    leaves = [*xs, *layer.parameters()]
    out = layer(*xs)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
    tangents = [torch.randn(g.shape, generator=gen, dtype=g.dtype) for g in grads]
    mixed = sum((g * t).sum() for g, t in zip(grads, tangents))
    second = torch.autograd.grad(mixed, leaves, allow_unused=True)
    second = [torch.zeros_like(x) if s is None else s for s, x in zip(second, leaves)]
    return [out, *grads, *second]


def test_mixed_modes_into_one_output_match_einsum() -> None:
    tp = _mixed_tp()
    ref, lay = from_e3nn(tp, backend="einsum").double(), from_e3nn(tp, backend="c").double()
    assert len(getattr(lay, "parts", [lay])) == 1  # one C layer, not one per mode
    xs = [x.requires_grad_() for x in random_inputs(ref, batch=4, dtype=torch.float64, seed=3)]
    want, got = _derivatives(ref, xs), _derivatives(lay, xs)
    assert len(want) == len(got) >= 3
    for w, g in zip(want, got):
        assert (w - g).abs().max().item() <= 1e-12 * max(1.0, w.abs().max().item())
    assert (ref(*xs) - tp(*xs)).abs().max().item() <= 1e-12

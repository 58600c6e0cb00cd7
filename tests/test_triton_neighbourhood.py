"""Triton backend on neighbourhood blocks: gathers, gates, neighbour sums, cat and linear.

The Triton layer must equal the einsum layer (forward, first and second derivatives, float64
to 1e-10 and float32 to 1e-4), pass gradcheck and gradgradcheck, and be equivariant on a
random graph. Triton's CPU interpreter is slow per kernel line, so derivatives run on
ℓ ≤ 1 versions of the examples (``SMALL``: the same constructs and plan forms, centre-last
and F-move hoisting included) and the examples themselves, multiplicities cut to 2, forward.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import copy
import re
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.models.specs import cormorant_layer, mace_layer
from fusiondsl.nn.testing import equivariance_error, random_inputs

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parent.parent
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}
NEIGHBOURHOOD = ["fusion_block", "nequip", "cofd", "mofd"]

SMALL = """
let X = 2x(0e + 1o)
diagram nequip(h: X, y: edge sh(1)) -> o: X {
    m = sum_j fuse(h[j], y) -> 0e + 1o weights uvu
    o = linear(cat(h, m))
}
diagram fusion_block(h: X, y: edge sh(1), g: edge 2x0e) -> o: X {
    m = sum_j fuse{h[i], h[j], y} * g -> 0e + 1o
    o = linear(cat(h, m))
}
diagram cofd(F: X, Y: edge sh(1), g: edge 2x0e) -> o: X {
    m = sum_j fuse{F[i], F[j], Y} * g -> 0e + 1o weights uuu
    o = linear(cat(F, m))
}
diagram mofd(h: X, y: edge sh(1), g: edge 2x0e) -> o: X {
    m0 = sum_j fuse(fuse(h[i], h[j]) -> 0e, y) * g -> 0e + 1o weights uuu
    m1 = sum_j fuse(fuse(h[i], h[j]) -> 1o, y) * g -> 0e + 1o weights uuu
    o = linear(cat(h, m0, m1))
}
diagram mofd_dense(h: X, y: edge sh(1), g: edge 2x0e) -> o: X {
    m = sum_j fuse(fuse(h[i], h[j]) -> 0e + 1o + 1e, y) * g -> 0e + 1o weights uuu
    o = linear(cat(h, m))
}
diagram fmove_path(h: X, y: edge sh(1), g: edge 1x0e) -> o: 2x(0e + 1o) {
    o = sum_j fuse(h[i], h[j], y) * g -> 0e + 1o weights path
}
"""
# The models' specs: MoFD's interaction (per-edge uvu weights, nested fusions, F-moves) to
# second order; every diagram of both models forward, with the examples.
MACE = mace_layer(2, 1, "2x0e + 2x1o", correlation=2, fusion_labels=("0e", "1o"))
CORMORANT = cormorant_layer(2, 1, "2x0e + 2x1o", fusion=True)
CASES = [(SMALL, n) for n in fusiondsl.loads(SMALL).names] + [(MACE, "interaction")]
IDS = [n if text == SMALL else f"model:{n}" for text, n in CASES]


def _example(spec: str) -> str:
    """An example spec with every multiplicity cut to 2, to keep the interpreter fast."""
    text = (ROOT / "examples" / f"{spec}.fd").read_text()
    return re.sub(r"\b(\d+)x", lambda m: f"{min(int(m.group(1)), 2)}x", text)


EXAMPLES = [(_example(s), n) for s in NEIGHBOURHOOD for n in fusiondsl.loads(_example(s)).names]
EXAMPLE_IDS = [n for _, n in EXAMPLES]
for model, spec in (("mace", MACE), ("cormorant", CORMORANT)):
    EXAMPLES += [(spec, n) for n in fusiondsl.loads(spec).names]
    EXAMPLE_IDS += [f"{model}:{n}" for n in fusiondsl.loads(spec).names]


def _pair(text: str, name: str, hoist: bool = True) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The einsum and the triton layer of one diagram in float64, with the same weights."""
    prog = fusiondsl.loads(text)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref = prog.compile(name, backend="einsum", hoist=hoist)
        tri = prog.compile(name, backend="triton", hoist=hoist)
    finally:
        torch.set_default_dtype(old)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def _inputs(layer: torch.nn.Module, dtype: torch.dtype, **kw: int) -> list[torch.Tensor]:
    """Random node, edge and weight tensors (leaves needing gradients) and edge_index."""
    xs = random_inputs(layer, dtype=dtype, seed=3, **kw)
    return [x.requires_grad_() if x.is_floating_point() else x for x in xs]


def _derivatives(layer: torch.nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Output, first derivatives (inputs and weights) and a second-derivative contraction."""
    gen = torch.Generator().manual_seed(4)
    leaves = [*(x for x in xs if x.requires_grad), *layer.parameters()]
    out = layer(*xs)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
    tangents = [torch.randn(g.shape, generator=gen, dtype=g.dtype).to(g.device) for g in grads]
    mixed = sum((g * t).sum() for g, t in zip(grads, tangents))
    second = torch.autograd.grad(mixed, leaves, allow_unused=True)
    return [out, *grads, *(torch.zeros_like(x) if s is None else s for s, x in zip(second, leaves))]


def _assert_close(want: list[torch.Tensor], got: list[torch.Tensor], dtype: torch.dtype) -> None:
    """Every pair to the dtype's tolerance, relative to the largest value (at least 1)."""
    assert len(want) == len(got)
    for w, g in zip(want, got):
        scale = max(1.0, w.abs().max().item())
        assert (w - g).abs().max().item() <= TOL[dtype] * scale, dtype


@pytest.mark.parametrize(("text", "name"), CASES, ids=IDS)
def test_matches_einsum_to_second_order(text: str, name: str,
                                        request: pytest.FixtureRequest) -> None:
    """float64 to second order; float32 too with ``--long`` (the interpreter is slow)."""
    pair = _pair(text, name)
    long = request.config.getoption("--long")
    for dtype in (torch.float64, torch.float32) if long else (torch.float64,):
        ref, tri = (copy.deepcopy(layer).to(dtype) for layer in pair)
        xs = _inputs(ref, dtype, num_nodes=4, degree=2)
        _assert_close(_derivatives(ref, xs), _derivatives(tri, xs), dtype)


@pytest.mark.parametrize(("text", "name"), EXAMPLES, ids=EXAMPLE_IDS)
def test_examples_and_models_match_einsum_forward(text: str, name: str) -> None:
    """float64 (float32 and derivatives: on the ℓ ≤ 1 versions above)."""
    ref, tri = _pair(text, name)
    xs = random_inputs(ref, seed=2, num_nodes=4, degree=2)
    _assert_close([ref(*xs)], [tri(*xs)], torch.float64)


def test_plans_hoisted_and_not_agree() -> None:
    """The as-written per-edge form (three-operand edge kernels) equals the hoisted ones."""
    for name in ("cofd", "mofd_dense"):
        ref, hoisted = _pair(SMALL, name)
        _, plain = _pair(SMALL, name, hoist=False)
        plain.load_state_dict(ref.state_dict())
        assert any(hoisted.plan.hoisted) and not any(plain.plan.hoisted)
        xs = random_inputs(ref, seed=6, num_nodes=4, degree=2)
        _assert_close([ref(*xs)] * 2, [hoisted(*xs), plain(*xs)], torch.float64)


TINY = """
diagram hoisted(h: 1o, y: edge 1o, g: edge 1x0e) -> o: 1o {
    o = sum_j fuse{h[i], h[j], y} * g -> 1o weights uuu
}
diagram fmove(h: 1o, y: edge 1o) -> o: 1o {
    o = sum_j fuse(fuse(h[i], h[j]) -> 0e + 1e, y) -> 1o weights uuu
}
diagram per_edge(h: 0e + 1o, y: edge 1o) -> o: 0e + 1o {
    m = sum_j fuse(h[j], y) -> 0e + 1o weights uvu external
    o = linear(cat(h, m))
}
"""


@pytest.mark.parametrize("name", fusiondsl.loads(TINY).names)
def test_gradcheck_and_gradgradcheck(name: str) -> None:
    layer = _pair(TINY, name)[1]
    assert name == "per_edge" or any(layer.plan.hoisted)
    assert name != "fmove" or layer.plan.fmoves[-1] is not None
    xs = _inputs(layer, torch.float64, num_nodes=2, degree=1)
    at = next(i for i, x in enumerate(xs) if not x.is_floating_point())  # edge_index

    def f(*floats: torch.Tensor) -> torch.Tensor:
        return layer(*floats[:at], xs[at], *floats[at:])

    floats = [x for x in xs if x.is_floating_point()]
    assert torch.autograd.gradcheck(f, floats, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, floats, fast_mode=True)


@pytest.mark.parametrize("name", ["cofd", "mofd", "mofd_dense", "fmove_path"])
def test_equivariant_on_a_random_graph(name: str) -> None:
    _, tri = _pair(SMALL, name)
    assert equivariance_error(tri, seed=1) < 1e-10


def test_example_equivariant_on_a_random_graph() -> None:
    _, tri = _pair(_example("mofd"), "mofd_dense")
    assert tri.plan.fmoves[1] is not None
    assert equivariance_error(tri, seed=2, trials=(True,)) < 1e-10


def test_source_shows_the_graph_steps() -> None:
    _, tri = _pair(SMALL, "mofd_dense")
    for text in ("h.index_select(0, senders)", "_gate(m_pre, g,", "_scatter_sum(m_pre, receivers",
                 "self.fmove_m @ self.weight", "hoisted by an F-move", "torch.cat([h, m], dim=1)",
                 "torch.einsum('zui,uw->zwi'", "m: hoisted by an F-move"):
        assert text in tri.source, text
    assert "fmove_m" not in tri.state_dict()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_einsum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    examples = {s: (ROOT / "examples" / f"{s}.fd").read_text() for s in NEIGHBOURHOOD}
    for text, name in [(t, n) for t in examples.values() for n in fusiondsl.loads(t).names]:
        for dtype in (torch.float32, torch.float64):
            ref, tri = (layer.to(dtype).cuda() for layer in _pair(text, name))
            xs = [x.cuda() for x in random_inputs(ref, dtype=dtype, num_nodes=50, degree=8)]
            xs = [x.requires_grad_() if x.is_floating_point() else x for x in xs]
            _assert_close(_derivatives(ref, xs), _derivatives(tri, xs), dtype)

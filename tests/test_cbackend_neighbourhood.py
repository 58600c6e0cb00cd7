"""C backend on neighbourhood blocks: gathers, gates, neighbour sums, cat and linear.

The C layer must equal the einsum layer (forward, first and second derivatives, float64 to
1e-10 and float32 to 1e-4), pass gradcheck and gradgradcheck, and be equivariant on a random
graph. Compiling the C is most of the time, so the examples and the models' specs run with
every multiplicity cut to 2 (the same constructs and plan forms: per-edge ``uvu`` external
weights, gates, centre-last and F-move hoisting, ``fuse(A, A)``, ``linear(cat(…))``), and
the C is compiled at ``-O0`` (6x faster to compile than ``-O3``; the generated code is what is
tested here: the ``-O3`` builds are checked by ``tests/test_cbackend.py`` and the benchmark).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.models.specs import cormorant_layer, mace_layer
from fusiondsl.nn.testing import equivariance_error, random_inputs

if not c_runtime.available():
    pytest.skip("no C compiler with OpenMP", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}
NEIGHBOURHOOD = ["fusion_block", "nequip", "cofd", "mofd"]
CH = 2  # channels of the models' specs here (8 in the brief's sizes; same constructs)
MODELS = {
    "mace": mace_layer(CH, 2, f"{CH}x0e"),
    "mofd": mace_layer(CH, 2, f"{CH}x(0e + 1o + 2e)", fusion_labels=("0e", "1o", "2e")),
    "cofd": cormorant_layer(CH, 2, f"{CH}x(0e + 1o + 2e)", fusion=True),
}


def _example(spec: str) -> str:
    """An example spec with every multiplicity cut to 2, to keep compiling fast."""
    text = (ROOT / "examples" / f"{spec}.fd").read_text()
    return re.sub(r"\b(\d+)x", lambda m: f"{min(int(m.group(1)), 2)}x", text)


CASES = [(_example(s), n) for s in NEIGHBOURHOOD for n in fusiondsl.loads(_example(s)).names]
IDS = [n for _, n in CASES]
for model, spec in MODELS.items():
    CASES += [(spec, n) for n in fusiondsl.loads(spec).names]
    IDS += [f"{model}:{n}" for n in fusiondsl.loads(spec).names]


def _pair(text: str, name: str, hoist: bool = True) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The einsum and the C layer of one diagram in float64, with the same weights."""
    prog = fusiondsl.loads(text)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref = prog.compile(name, backend="einsum", hoist=hoist)
        lay = prog.compile(name, backend="c", hoist=hoist)
    finally:
        torch.set_default_dtype(old)
    lay.load_state_dict(ref.state_dict())
    return ref, lay


def _inputs(layer: torch.nn.Module, dtype: torch.dtype, **kw: int) -> list[torch.Tensor]:
    """Random node, edge and weight tensors (leaves needing gradients) and edge_index."""
    xs = random_inputs(layer, dtype=dtype, seed=3, **kw)
    return [x.requires_grad_() if x.is_floating_point() else x for x in xs]


def _derivatives(layer: torch.nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Output, first derivatives (inputs and weights) and a second-derivative contraction."""
    gen = torch.Generator().manual_seed(4)
    leaves = [*(x for x in xs if x.requires_grad), *layer.parameters()]
    out = layer(*xs)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
    tangents = [torch.randn(g.shape, generator=gen, dtype=g.dtype) for g in grads]
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
def test_matches_einsum_to_second_order(text: str, name: str) -> None:
    pair = _pair(text, name)
    for dtype in (torch.float64, torch.float32):
        ref, lay = (copy.deepcopy(layer).to(dtype) for layer in pair)
        xs = _inputs(ref, dtype, num_nodes=4, degree=2)
        _assert_close(_derivatives(ref, xs), _derivatives(lay, xs), dtype)


def test_plans_hoisted_and_not_agree() -> None:
    """The as-written per-edge form (three-operand edge kernels) equals the hoisted ones."""
    text = _example("mofd")
    for name in ("mofd_dense",):
        ref, hoisted = _pair(text, name)
        _, plain = _pair(text, name, hoist=False)
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
    xs = _inputs(layer, torch.float64, num_nodes=3, degree=2)
    at = next(i for i, x in enumerate(xs) if not x.is_floating_point())  # edge_index

    def f(*floats: torch.Tensor) -> torch.Tensor:
        return layer(*floats[:at], xs[at], *floats[at:])

    floats = [x for x in xs if x.is_floating_point()]
    assert torch.autograd.gradcheck(f, floats)
    assert torch.autograd.gradgradcheck(f, floats)


@pytest.mark.parametrize(("text", "name"), [(_example("cofd"), "cofd"),
                                            (_example("mofd"), "mofd_dense"),
                                            (_example("nequip"), "nequip"),
                                            (MODELS["mofd"], "interaction")],
                         ids=["cofd", "mofd_dense", "nequip", "mofd:interaction"])
def test_equivariant_on_a_random_graph(text: str, name: str) -> None:
    _, lay = _pair(text, name)
    assert equivariance_error(lay, seed=1) < 1e-10


def test_source_shows_the_graph_steps() -> None:
    _, lay = _pair(_example("mofd"), "mofd_dense")
    assert lay.plan.fmoves[1] is not None
    for text in ("h.index_select(0, senders)", "_gate(m_pre, g,", "_scatter_sum(m_pre, receivers",
                 "self.fmove_m @ self.weight", "hoisted by an F-move", "torch.cat([h, m], dim=1)",
                 "torch.einsum('zui,uw->zwi'", "void m_pre_out(", "void m_out(",
                 "from fusiondsl.backends.graph_ops import gate as _gate"):
        assert text in lay.source, text
    assert "fmove_m" not in lay.state_dict()


def test_graph_form_and_su2_are_still_refused() -> None:
    from fusiondsl.backends.c.support import CUnsupportedError

    prog = fusiondsl.load(ROOT / "examples" / "spins.fd")
    with pytest.raises(CUnsupportedError, match="SU2 diagrams"):
        prog.compile(prog.names[0], backend="c")
    prog = fusiondsl.load(ROOT / "examples" / "open_graph.fd")
    with pytest.raises(CUnsupportedError, match="graph-form diagrams"):
        prog.compile("open_graph", backend="c")


@pytest.mark.parametrize("name", ["mofd", "cofd"])
def test_models_on_the_c_backend_equal_einsum(name: str) -> None:
    import numpy as np

    from fusiondsl.models.data import Structure, collate
    from fusiondsl.models.experiment import build_model
    from fusiondsl.models.train import energy_and_forces

    hyper = {"channels": 2, "lmax": 1, "num_layers": 2, "cutoff": 4.0}
    torch.manual_seed(0)
    ours = build_model(name, [28, 29], backend="c", **hyper).double()
    plain = build_model(name, [28, 29], **hyper).double()
    plain.load_state_dict(ours.state_dict())
    rng = np.random.default_rng(0)
    s = Structure(rng.choice([28, 29], size=6), rng.normal(size=(6, 3)) * 1.3, None, None)
    batch = collate([s], 4.0)
    e1, f1 = energy_and_forces(ours, batch, create_graph=False)
    e2, f2 = energy_and_forces(plain, batch, create_graph=False)
    assert f2.abs().max() > 1e-6
    torch.testing.assert_close(e1, e2, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(f1, f2, atol=1e-10, rtol=1e-10)

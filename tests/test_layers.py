"""Compiled layers: equivariance, derivatives, e3nn equality, exact SU2 and closed graphs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.nn.testing import equivariance_error, random_inputs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fd"))
CASES = [(f, n) for f in EXAMPLES for n in fusiondsl.load(f).names]


pytestmark = pytest.mark.usefixtures("float64_default")


def _compile(text: str, name: str | None = None, **kw) -> torch.nn.Module:
    return fusiondsl.loads(text).compile(name, **kw)


@pytest.mark.parametrize(("spec", "name"), CASES, ids=[f"{f.stem}:{n}" for f, n in CASES])
def test_every_example_is_equivariant(spec: Path, name: str) -> None:
    layer = fusiondsl.load(spec).compile(name)
    assert equivariance_error(layer, seed=1, trials=(False, True, False)) < 1e-10


SMALL = """
let A = 2x0e + 2x1o + 1x2e
let B = 0e + 1o + 1e
diagram uvw(x: A, y: B) -> z: 2x0e + 1x1o + 2x1e + 1x2o { z = fuse(x, y) weights uvw }
diagram uvu(x: 2x(0e + 1o + 2e), y: B) -> z: 2x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvu external
}
diagram uvv(x: B, y: 2x0e + 2x1o) -> z: 2x0e + 2x1e { z = fuse(x, y) weights uvv }
diagram uuw(x: 2x(0e + 1o), y: 2x0e + 2x1o) -> z: 3x0e + 1x1o { z = fuse(x, y) weights uuw }
diagram uvuv(x: 2x1o, y: 3x1o) -> z: 6x0e + 6x2e { z = fuse(x, y) weights uvuv }
diagram chain(a: 2x(0e + 1o), b: 2x(0e + 1o), c: 1o) -> o: 2x(1o + 2o) {
    t = fuse(a, b) -> 0e + 1e
    o = fuse(t, c) weights uuu
}
diagram triple(a: 2x(0e + 1o)) -> o: 2x(0e + 1e) { o = fuse(a, a, a) weights path }
diagram free(a: 2x1o, b: 1x1o, c: 2x2e) -> o: 2x1e { o = fuse{a, b, c} weights uuu external }
diagram nested(a: 1o, b: 1o, c: 1o) -> o: 0o + 2o { o = fuse(fuse(a, b) -> 1e, c) weights uuu }
"""

SMALL_BLOCK = """
let X = 2x(0e + 1o)
diagram block(h: X, y: edge sh(1), g: edge 2x0e) -> o: X {
    m = sum_j fuse{h[i], h[j], y} * g -> 0e + 1o
    o = linear(cat(h, m))
}
"""

SMALL_GRAPH = """
graph chain3 {
    in x: 2x1o
    in y: 1o
    out o: 2x1o
    edge e: 2e
    vertex (x, e, o)
    vertex (y, y2, e)
    in y2: 1o
}
"""

SMALL_SU2 = """
group SU2
diagram su2(a: 2x1/2, b: 1/2 + 1) -> s: 2x(1/2 + 0 + 1 + 3/2) { s = fuse(a, b) weights uuu }
"""

GRAD_CASES = [(SMALL, n) for n in fusiondsl.loads(SMALL).names] + [
    (SMALL_BLOCK, "block"), (SMALL_GRAPH, "chain3"), (SMALL_SU2, "su2")]


@pytest.mark.parametrize(("text", "name"), GRAD_CASES, ids=[n for _, n in GRAD_CASES])
def test_gradcheck_and_gradgradcheck(text: str, name: str) -> None:
    layer = _compile(text, name)
    if layer.diagram.group == "SU2":
        layer = layer.to(torch.complex128)
    xs = random_inputs(layer, batch=2, seed=3, num_nodes=3, degree=2)
    xs = [x.requires_grad_() if x.is_floating_point() or x.is_complex() else x for x in xs]
    assert equivariance_error(layer, seed=2) < 1e-10
    assert torch.autograd.gradcheck(layer, xs)
    assert torch.autograd.gradgradcheck(layer, xs)


@pytest.mark.parametrize("name", ["uvw", "chain", "block"])
def test_internal_weights_have_gradients(name: str) -> None:
    text = SMALL_BLOCK if name == "block" else SMALL
    layer = _compile(text, name)
    out = layer(*random_inputs(layer, seed=4))
    out.pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_batch_shapes_broadcast_and_shared_external_weights() -> None:
    layer = _compile(SMALL, "uvu")
    x = torch.randn(2, 3, layer.irreps_in[0].dim)
    y = torch.randn(3, layer.irreps_in[1].dim)
    w = torch.randn(layer.weight_numel)
    out = layer(x, y, w)
    assert out.shape == (2, 3, layer.irreps_out.dim)
    one = layer(x[1, 2], y[2], w)
    torch.testing.assert_close(out[1, 2], one)
    with pytest.raises(TypeError, match="external weights"):
        layer(x, y)


def test_layer_metadata() -> None:
    layer = fusiondsl.load(ROOT / "examples" / "fctp.fd").compile("fctp")
    assert [str(i) for i in layer.irreps_in] == ["16x0e+16x1o+16x2e", "1x0e+1x1o+1x2e"]
    assert str(layer.irreps_out) == "16x0e+16x1o+16x2e"
    assert layer.weight_numel == 16 * 16 * 11
    assert "path 0: 0e ⊗ 0e → 0e (uvw, 16×1 → 16)" in layer.source  # einsum or C comment


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        _compile(SMALL, "uvw", backend="cuda")


def test_spins_give_sympy_clebsch_gordan() -> None:
    from sympy import Rational
    from sympy.physics.wigner import clebsch_gordan

    layer = _compile("group SU2\ndiagram s(a: 1/2, b: 1) -> o: 1/2 + 3/2 { o = fuse(a, b) }")
    layer = layer.to(torch.complex128)
    eye2, eye3 = torch.eye(2, dtype=torch.complex128), torch.eye(3, dtype=torch.complex128)
    out = layer(eye2[:, None, :].expand(2, 3, 2), eye3[None, :, :].expand(2, 3, 3))
    half = Rational(1, 2)
    for i, k in itertools.product(range(2), range(3)):
        m1, m2 = -half + i, -1 + k
        want = [clebsch_gordan(half, 1, half, m1, m2, -half + n) for n in range(2)]
        want += [clebsch_gordan(half, 1, 3 * half, m1, m2, -3 * half + n) for n in range(4)]
        got = out[i, k]
        assert torch.allclose(got.real, torch.tensor([float(v) for v in want]), atol=1e-14)
        assert got.imag.abs().max() == 0


SIXJ = "vertex (j1, j2, j3) vertex (j1, j5, j6) vertex (j4, j2, j6) vertex (j4, j5, j3)"


def _spin(j2: int) -> str:
    return str(j2 // 2) if j2 % 2 == 0 else f"{j2}/2"


def _triads_ok(triads) -> bool:
    return all((a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b for a, b, c in triads)


@pytest.mark.parametrize("group", ["SO3", "SU2"])
def test_sixj_graph_is_the_6j_symbol(group: str) -> None:
    """Documented convention: SO3 gives {6j} exactly; SU2 gives (-1)^(2 j5) {6j}."""
    from sympy import Rational
    from sympy.physics.wigner import wigner_6j

    checked = 0
    for js in itertools.product(range(0, 5 if group == "SO3" else 4), repeat=6):
        if group == "SO3" and any(j % 2 for j in js):
            continue
        j1, j2, j3, j4, j5, j6 = js
        if not _triads_ok([(j1, j2, j3), (j1, j5, j6), (j4, j2, j6), (j4, j5, j3)]):
            continue
        edges = ", ".join(f"j{i + 1}: {_spin(j)}" for i, j in enumerate(js))
        layer = _compile(f"group {group}\ngraph g {{ edge {edges} {SIXJ} }}")
        value = complex(layer.to(torch.complex128)() if group == "SU2" else layer())
        want = float(wigner_6j(*(Rational(j, 2) for j in js))) * (-1) ** (j5 * (group == "SU2"))
        assert abs(value - want) < 1e-12, js
        checked += 1
    assert checked > 100


def test_ninej_example_is_the_9j_symbol() -> None:
    from sympy.physics.wigner import wigner_9j

    layer = fusiondsl.load(ROOT / "examples" / "ninej.fd").compile("ninej")
    d = layer.diagram
    js = [d.edge(f"j{i}").ir.l for i in range(1, 10)]
    assert abs(float(layer()) - float(wigner_9j(*js))) < 1e-12


def test_torch_compile_runs_a_layer() -> None:
    # einsum layers trace whole; C kernels are opaque to dynamo (graph breaks, no fullgraph)
    layer = _compile(SMALL, "uvw", backend="einsum")
    xs = random_inputs(layer, seed=5)
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(*xs), layer(*xs))

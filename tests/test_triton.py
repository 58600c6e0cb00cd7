"""Triton backend: forward, gradients and second derivatives equal the einsum backend.

Runs on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``, set before triton is
imported) at small sizes; the ``gpu`` test runs the compiled kernels on a real GPU.
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import re
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.backends.kernel_paths import TritonUnsupportedError
from fusiondsl.backends.triton.lower import load_module, supports
from fusiondsl.cli.main import main
from fusiondsl.nn.testing import random_inputs

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parent.parent
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}

MODES = """
let A = 2x0e + 2x1o + 1x2e
let B = 0e + 1o + 1e
diagram uvw(x: A, y: B) -> z: 2x0e + 1x1o + 2x1e + 1x2o { z = fuse(x, y) weights uvw }
diagram uvu(x: 2x(0e + 1o + 2e), y: B) -> z: 2x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvu external
}
diagram uvu_shared(x: 3x(0e + 1o), y: 2x(0e + 1o)) -> z: 3x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvu
}
diagram uvv(x: B, y: 2x0e + 2x1o) -> z: 2x0e + 2x1e { z = fuse(x, y) weights uvv }
diagram uuw(x: 2x(0e + 1o), y: 2x0e + 2x1o) -> z: 3x0e + 1x1o { z = fuse(x, y) weights uuw }
diagram uvuv(x: 2x1o, y: 3x1o) -> z: 6x0e + 6x2e { z = fuse(x, y) weights uvuv }
diagram uvw_external(x: 2x(0e + 1o), y: 0e + 1o) -> z: 3x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvw external
}
diagram uuu(x: 3x(0e + 1o + 2e), y: 1x(0e + 1o)) -> z: 3x(0e + 1o + 2e) {
    z = fuse(x, y) weights uuu
}
diagram path(a: 2x(0e + 1o), b: 2x(0e + 1o)) -> o: 2x(0e + 1o + 1e) {
    o = fuse(a, b) weights path
}
diagram fixed(a: 2x(0e + 1o), b: 1o) -> o: 2x(0e + 1o + 1e + 2e) { o = fuse(a, b) }
diagram chain(a: 2x(0e + 1o), b: 2x(0e + 1o), c: 1o) -> o: 2x(1o + 2o) {
    t = fuse(a, b) -> 0e + 1e
    o = fuse(t, c) weights uuu
}
diagram fuse4(a: 2x(0e + 1o), b: 2x(0e + 1o), c: 1o, d: 0e + 1o) -> o: 2x(0e + 1o) {
    o = fuse(a, b, c, d) weights uuu
}
diagram free(a: 2x1o, b: 1x1o, c: 2x2e) -> o: 2x1e { o = fuse{a, b, c} weights uuu external }
diagram nested(a: 1o, b: 1o, c: 1o) -> o: 0o + 2o { o = fuse(fuse(a, b) -> 1e, c) weights uuu }
"""
# Shapes that take the tl.dot branch (every dim ≥ 16) and the blocked channel axis (> 32).
WIDE = """
diagram dot(x: 4x(0e + 1o), y: 4x(0e + 1o)) -> z: 16x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvw
}
diagram blocked(x: 40x1o, y: 1o) -> z: 40x1e { z = fuse(x, y) weights uvu }
"""


def _small_example(path: Path) -> str:
    """An example spec with every multiplicity cut to at most 3, to keep the interpreter fast."""
    return re.sub(r"\b(\d+)x", lambda m: f"{min(int(m.group(1)), 3)}x", path.read_text())


# Examples with many paths take tens of seconds per derivative order under the interpreter
# (the table-driven kernels loop over paths and components at runtime, each step an
# interpreted op): above HEAVY_PATHS their float64 forward is checked; the derivative code is
# the same for all and runs on the 4-ary ``fuse4`` of MODES. Above LONG_PATHS (fusion4: 327)
# they run only with ``--long``, which also checks every example to second order.
HEAVY_PATHS = 40
LONG_PATHS = 150
# Neighbourhood blocks take edge_index: tests/test_triton_neighbourhood.py checks them.
EXAMPLES = [(_small_example(f), n) for f in sorted((ROOT / "examples").glob("*.fd"))
            for n, d in fusiondsl.load(f).diagrams.items()
            if supports(d) and not d.is_neighbourhood]
CASES = ([(MODES, n) for n in fusiondsl.loads(MODES).names] + EXAMPLES
         + [(WIDE, n) for n in fusiondsl.loads(WIDE).names])
IDS = [n if text in (MODES, WIDE) else f"example:{n}" for text, n in CASES]
UNSUPPORTED = [(f, n) for f in sorted((ROOT / "examples").glob("*.fd"))
               for n, d in fusiondsl.load(f).diagrams.items() if not supports(d)]


def _pair(text: str, name: str, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The einsum and the triton layer of one diagram, with the same weights.

    Built in float64 so that the einsum layer's coefficient buffers are exact before ``.to``.
    """
    prog = fusiondsl.loads(text)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref = prog.compile(name, backend="einsum").to(dtype)
        tri = prog.compile(name, backend="triton").to(dtype)
    finally:
        torch.set_default_dtype(old)
    tri.load_state_dict(ref.state_dict())
    return ref, tri


def _derivatives(layer: torch.nn.Module, xs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Output, first derivatives (inputs and weights) and a second-derivative contraction."""
    gen = torch.Generator().manual_seed(seed)
    leaves = [*xs, *layer.parameters()]
    out = layer(*xs)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
    tangents = [torch.randn(g.shape, generator=gen, dtype=g.dtype).to(g.device) for g in grads]
    mixed = sum((g * t).sum() for g, t in zip(grads, tangents))
    second = torch.autograd.grad(mixed, leaves, allow_unused=True)
    second = [torch.zeros_like(x) if s is None else s for s, x in zip(second, leaves)]
    return [out, *grads, *second]


@pytest.mark.parametrize(("text", "name"), CASES, ids=IDS)
def test_matches_einsum_to_second_order(text: str, name: str,
                                        request: pytest.FixtureRequest) -> None:
    """float64 to 1e-10 and float32 to 1e-4 (relative to the largest value, at least 1).

    float64 is checked to second order; float32 (the same kernels, another ``ACC`` and load
    type) on its forward pass, and to second order with ``--long``.
    """
    pair = _pair(text, name, torch.float64)
    paths, long = pair[1].plan.paths.num_paths, request.config.getoption("--long")
    if paths > LONG_PATHS and not long:
        pytest.skip(f"{paths} paths: run with --long")
    heavy = paths > HEAVY_PATHS and not long
    for dtype in (torch.float64, torch.float32):
        ref, tri = (copy.deepcopy(layer).to(dtype) for layer in pair)
        xs = [x.requires_grad_() for x in random_inputs(ref, batch=5, dtype=dtype, seed=3)]
        if heavy or (dtype == torch.float32 and not long):
            want, got = [ref(*xs)], [tri(*xs)]
        else:
            want, got = _derivatives(ref, xs, seed=4), _derivatives(tri, xs, seed=4)
            assert len(want) == len(got) >= 3
        for w, g in zip(want, got):
            scale = max(1.0, w.abs().max().item())
            assert (w - g).abs().max().item() <= TOL[dtype] * scale, dtype


def test_wide_cases_take_the_dot_and_blocked_paths() -> None:
    dot = fusiondsl.loads(WIDE).compile("dot", backend="triton")
    assert "tl.dot(" in dot.source and "if USE_DOT:" in dot.source
    blocked = fusiondsl.loads(WIDE).compile("blocked", backend="triton")
    assert "grid (cdiv(Z, BLOCK_Z), 2), BLOCK_C = 32" in blocked.source


TINY = """
diagram tiny_uvw(x: 0e + 1o, y: 1o) -> z: 2x1o { z = fuse(x, y) weights uvw }
diagram tiny_chain(a: 1o, b: 1o, c: 0e) -> o: 1e {
    o = fuse(fuse(a, b) -> 1e, c) weights uuu external
}
"""


@pytest.mark.parametrize("name", fusiondsl.loads(TINY).names)
def test_gradcheck_and_gradgradcheck(name: str) -> None:
    layer = fusiondsl.loads(TINY).compile(name, backend="triton").double()
    xs = [x.requires_grad_() for x in random_inputs(layer, batch=1, seed=5)]
    # fast mode (a random projection of each Jacobian): the interpreter runs every kernel of
    # the full Jacobians for tens of seconds; test_matches_einsum_to_second_order is exact
    assert torch.autograd.gradcheck(layer, xs, fast_mode=True)
    assert torch.autograd.gradgradcheck(layer, xs, fast_mode=True)


@pytest.mark.parametrize(("spec", "name"), UNSUPPORTED, ids=[n for _, n in UNSUPPORTED])
def test_unsupported_examples_are_refused_at_compile_time(spec: Path, name: str) -> None:
    with pytest.raises(TritonUnsupportedError, match="the triton backend does not support") as err:
        fusiondsl.load(spec).compile(name, backend="triton")
    assert isinstance(err.value, NotImplementedError)
    assert isinstance(err.value, fusiondsl.FusionError)


@pytest.mark.parametrize(("text", "construct"), [
    ("group SO3\ngraph g { in x: 1\n in y: 1\n out o: 1\n vertex (x, y, o) }", "graph-form"),
    ("group SU2\ndiagram s(a: 1/2, b: 1/2) -> s: 0 + 1 { s = fuse(a, b) }", "SU2"),
    ("group SU2\ndiagram b(h: 1/2, y: edge 1) -> o: 1/2 {\n"
     "    o = sum_j fuse(h[j], y) -> 1/2\n}", "SU2"),
])
def test_refusals_name_the_construct(text: str, construct: str) -> None:
    prog = fusiondsl.loads(text)
    d = prog.diagram(prog.names[0])
    assert not supports(d)
    with pytest.raises(TritonUnsupportedError, match=construct):
        prog.compile(prog.names[0], backend="triton")


def test_cli_compiles_triton_and_refuses_cleanly(tmp_path: Path, capsys) -> None:
    out = tmp_path / "single_path.py"
    spec = ROOT / "examples" / "single_path.fd"
    assert main(["compile", str(spec), "--target", "triton", "-o", str(out)]) == 0
    assert "@triton.jit" in out.read_text()
    assert main(["compile", str(ROOT / "examples" / "sixj.fd"), "--target", "triton"]) == 1
    err = capsys.readouterr().err
    assert "the triton backend does not support graph-form diagrams" in err
    assert "Traceback" not in err


def test_source_is_readable_and_state_dicts_load_both_ways() -> None:
    ref, tri = _pair(MODES, "uvw", torch.float64)
    assert "# path 0: 0e ⊗ 0e → 0e (uvw, 2×1 → 2)" in tri.source
    assert "def z_out(" in tri.source and "def z_x1(" in tri.source and "def z_w(" in tri.source
    for attr in ("weight_numel", "internal_weight_numel", "external_weight_numel"):
        assert getattr(tri, attr) == getattr(ref, attr)
    assert [str(i) for i in tri.irreps_in] == [str(i) for i in ref.irreps_in]
    with torch.no_grad():
        tri.weight.normal_()
    ref.load_state_dict(tri.state_dict())
    xs = random_inputs(ref, seed=8)
    torch.testing.assert_close(tri(*xs), ref(*xs), rtol=0, atol=1e-12)


def test_batch_shapes_broadcast_and_shared_external_weights() -> None:
    ref, tri = _pair(MODES, "uvu", torch.float64)
    x = torch.randn(2, 3, tri.irreps_in[0].dim, dtype=torch.float64)
    y = torch.randn(3, tri.irreps_in[1].dim, dtype=torch.float64)
    w = torch.randn(tri.weight_numel, dtype=torch.float64)
    out = tri(x, y, w)
    assert out.shape == (2, 3, tri.irreps_out.dim)
    torch.testing.assert_close(out, ref(x, y, w), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="external weights"):
        tri(x, y)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_half_precision_inputs_accumulate_in_float32(dtype: torch.dtype) -> None:
    ref, tri = _pair(WIDE, "dot", torch.float32)
    xs = random_inputs(ref, seed=9, dtype=torch.float32)
    low = [x.to(dtype) for x in xs]
    out = tri.to(dtype)(*low)
    assert out.dtype == dtype
    want = ref(*[x.float() for x in low])
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    assert (out.float() - want).abs().max().item() <= tol * want.abs().max().item()


GALLERY = sorted((ROOT / "kernels").glob("*.triton.py"))


@pytest.mark.parametrize("path", GALLERY, ids=[p.name for p in GALLERY])
def test_gallery_triton_files_import(path: Path) -> None:
    namespace = load_module(path.read_text(), path.name.split(".")[1])
    layer = next(v for k, v in namespace.items() if isinstance(v, type)
                 and issubclass(v, torch.nn.Module) and not k.startswith("_"))()
    assert len(layer.irreps_in) >= 1 and layer.weight_numel >= 0
    assert any(k.startswith("kernels_") for k in namespace)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_einsum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for text, name in [(MODES, "uvw"), (MODES, "chain"), (WIDE, "dot"), (WIDE, "blocked")]:
        for dtype in (torch.float32, torch.float64):
            ref, tri = _pair(text, name, dtype)
            ref, tri = ref.cuda(), tri.cuda()
            xs = [x.cuda().requires_grad_() for x in random_inputs(ref, batch=100, dtype=dtype)]
            for w, g in zip(_derivatives(ref, xs, seed=1), _derivatives(tri, xs, seed=1)):
                scale = max(1.0, w.abs().max().item())
                assert (w - g).abs().max().item() <= TOL[dtype] * scale

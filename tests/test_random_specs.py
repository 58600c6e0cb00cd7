"""Random programs from ``tests/specgen.py`` through every backend (Csmith for fusiondsl).

For each seeded program: the checker accepts it; the einsum layer's output width is the
declared irreps' dimension and it is equivariant to 1e-9 in float64; a ``sum_j`` program
compiled with ``hoist=False`` gives the same values and first derivatives; a plain binary
O3 fuse with a weight mode equals e3nn's ``o3.TensorProduct`` with the same instructions and
weights. A bounded subset runs on the C backend and a smaller one on Triton (its CPU
interpreter): each must equal einsum (values and first derivatives, the einsum layer's
``state_dict`` copied over) or refuse at compile time with a one-line reason; programs a
backend refuses by name (graph form, SU2) are checked to be refused. The regression specs of
issue 17 (free and fixed orders inside ``sum_j``) run on einsum, C and Triton.

Sizes: ``NUM_PROGRAMS`` seeds (300), ``NUM_C`` on C, ``NUM_TRITON`` on Triton. For thousands
of programs run locally::

    .venv/bin/python -m pytest tests/test_random_specs.py --long        # 3000 seeds
    FUSIONDSL_SPECGEN_N=10000 .venv/bin/python -m pytest tests/test_random_specs.py

(``--long`` also widens the C and Triton subsets to 120 and 30 programs; ``FUSIONDSL_SPECGEN_N``
sets the number of seeds, with or without it.) Print the coverage per construct of N programs
with ``.venv/bin/python tests/specgen.py N``.

The four bug classes the generator found (issue 17's closing note) each have a minimised
``test_bugN_*`` here; two are fixed by the checker refusing the construct (``REFUSED``: a
program with that specgen feature must be refused). Default run on this 2-core machine:
about 40 s of CPU with the C library cache warm, 55 s cold (cc runs on 17 programs).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl import FusionError
from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.testing import equivariance_error, random_inputs

sys.path.insert(0, str(Path(__file__).parent))
from specgen import random_program

NUM_PROGRAMS, NUM_C, NUM_TRITON = 300, 12, 5
LONG = (3000, 120, 30)
TOL = 1e-10  # float64, relative to the largest value (at least 1)
EQUIVARIANCE_TOL = 1e-9
ZERO = 1e-12  # an output this small (inputs are of order one) is identically zero

# The generator found four bug classes (issue 17's note): three are fixed in the compiler and
# tested by the test_bugN_* below; for the others the fix is that the checker refuses the
# construct, so a program that has one of these specgen features must be refused, one line.
ALL = ("einsum", "c", "triton")
REFUSED: dict[str, str] = {
    "graph:out_narrower": r"channel\(s\) but the in legs give",
    "graph:out_wider": r"channel\(s\) but the in legs give",
    "external:node": "is computed per node in a neighbourhood block",
}


def refused_construct(seed: int) -> str | None:
    """The message the checker must give for this program, if it has a refused construct."""
    features = program(seed)[2]
    return next((m for f, m in REFUSED.items() if f in features), None)


def _sizes(config: pytest.Config) -> tuple[int, int, int]:
    n = os.environ.get("FUSIONDSL_SPECGEN_N")
    long = config.getoption("--long", default=False)
    sizes = LONG if long else (NUM_PROGRAMS, NUM_C, NUM_TRITON)
    return (int(n), *sizes[1:]) if n else sizes  # type: ignore[return-value]


@functools.cache
def program(seed: int) -> tuple[str, str, frozenset[str]]:
    return random_program(seed)


def _param(seed: int, backend: str) -> object:
    return pytest.param(seed, id=f"seed{seed}")


def _small(seed: int, limit: int) -> bool:
    """A tree or neighbourhood program outside SU2, with small legs (for C and Triton)."""
    text, name, features = program(seed)
    if "form:graph" in features or "group:SU2" in features or refused_construct(seed):
        return False
    d = fusiondsl.loads(text).diagram(name)
    return sum(leg.irreps.dim for leg in d.legs) + d.irreps_out.dim <= limit


def _subset(num_programs: int, count: int, limit: int) -> list[int]:
    """The first small programs of three kinds: 40 % sum_j blocks reading a centre ``h[i]``
    (where hoisting works), 20 % other sum_j blocks, the rest trees."""
    def kind(features: frozenset[str]) -> int:
        return 0 if "h[i]" in features else 1 if "sum_j" in features else 2

    quota = [round(0.4 * count), round(0.2 * count)]
    quota.append(count - sum(quota))
    picked: list[int] = []
    for seed in range(num_programs):
        k = kind(program(seed)[2])
        if quota[k] and _small(seed, limit):
            quota[k] -= 1
            picked.append(seed)
    return picked


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    n, num_c, num_triton = _sizes(metafunc.config)
    seeds = {"seed": ("einsum", range(n)), "c_seed": ("c", _subset(n, num_c, 40)),
             "triton_seed": ("triton", _subset(n, num_triton, 16))}
    for arg, (backend, chosen) in seeds.items():
        if arg in metafunc.fixturenames:
            metafunc.parametrize(arg, [_param(s, backend) for s in chosen])


@pytest.fixture(autouse=True, scope="module")
def _small_and_fast() -> Iterator[None]:
    """C's double build only (this file computes in float64; the suite builds at ``-O0``,
    tests/conftest.py), and one torch thread: these tensors are tiny, and threads cost 4x the
    time on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(c_runtime, "REALS", {torch.float64: "double"})
        yield
    torch.set_num_threads(threads)


# ---- helpers -------------------------------------------------------------------------------
def compile64(prog: fusiondsl.Program, name: str, backend: str = "einsum",
              hoist: bool = True) -> torch.nn.Module:
    """A float64 layer (its parameters are created in the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return prog.compile(name, backend=backend, hoist=hoist)
    finally:
        torch.set_default_dtype(old)


def twin(ref: torch.nn.Module, prog: fusiondsl.Program, name: str, backend: str,
         hoist: bool = True) -> torch.nn.Module:
    """Another compile of the same diagram, carrying the reference layer's weights."""
    layer = compile64(prog, name, backend, hoist)
    layer.load_state_dict(ref.state_dict())
    return layer


def inputs(layer: torch.nn.Module, seed: int = 1) -> list[torch.Tensor]:
    xs = random_inputs(layer, seed=seed, num_nodes=4, degree=2)
    return [x.requires_grad_() if x.is_floating_point() or x.is_complex() else x for x in xs]


def derivatives(layer: torch.nn.Module, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Output, and the first derivatives of a random projection (inputs and weights)."""
    out = layer(*xs)
    gen = torch.Generator().manual_seed(2)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    leaves = [x for x in xs if x.requires_grad] + [p for _, p in
                                                   sorted(layer.named_parameters())]
    loss = (out * cot).real.sum()
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return [out.detach(), *(torch.zeros_like(x) if g is None else g
                            for g, x in zip(grads, leaves))]


def max_error(want: list[torch.Tensor], got: list[torch.Tensor]) -> float:
    """Largest error of any pair, relative to that tensor's largest value (at least 1)."""
    assert len(want) == len(got)
    return max([(w - g).abs().max().item() / max(1.0, w.abs().max().item())
                for w, g in zip(want, got) if w.numel()] or [0.0])


def declared_shape(prog: fusiondsl.Program, name: str) -> tuple[int, ...]:
    """An output row's shape: the declared irreps' dimension; for a graph without ``out``,
    one invariant per channel (``()`` when every leg has one channel)."""
    d = prog.diagram(name)
    if isinstance(d, Diagram):
        return (d.irreps_out.dim,)
    if d.outputs:
        return (d.outputs[0].mul * d.outputs[0].ir.dim,)
    channels = max(e.mul for e in d.inputs)
    return (channels,) if channels > 1 else ()


def check_layer(prog: fusiondsl.Program, name: str, layer: torch.nn.Module) -> None:
    """Declared width, and equivariance unless the output is identically zero.

    A fuse of a repeated operand can reach a declared entry only through paths that vanish
    (``fuse(x, x)`` with ``x: 2e`` to ``1e``: the antisymmetric part); such an output is
    round-off, and its relative equivariance error means nothing.
    """
    with torch.no_grad():
        out = layer(*inputs(layer))
    assert tuple(out.shape[1:]) == declared_shape(prog, name)
    if out.abs().max().item() <= ZERO:
        return
    err = equivariance_error(layer)
    assert err <= EQUIVARIANCE_TOL, f"equivariance error {err:.2e}"


def refused(prog: fusiondsl.Program, name: str, backend: str) -> bool:
    """Whether a backend refuses at compile time with a one-line reason (not a wrong layer)."""
    try:
        compile64(prog, name, backend)
    except (FusionError, NotImplementedError) as err:
        message = str(err).splitlines()[0] if str(err) else ""
        assert f"the {backend} backend does not support" in str(err), message
        return True
    return False


# ---- e3nn ------------------------------------------------------------------------------------
def e3nn_tensor_product(d: Diagram):  # type: ignore[no-untyped-def]
    """e3nn's ``TensorProduct`` with the instructions of a one-fuse diagram, in path order."""
    o3 = pytest.importorskip("e3nn.o3")
    node = d.nodes[0]
    in1, in2 = (leg.irreps for leg in d.legs)
    mode = "uuu" if node.mode == "none" else node.mode
    ins = [(i, j, k, mode, node.mode != "none")
           for i, a in enumerate(in1) for j, b in enumerate(in2) for ir in a.ir * b.ir
           for k, c in enumerate(d.irreps_out) if c.ir == ir]

    def irreps(x):  # type: ignore[no-untyped-def]
        return o3.Irreps([(m.mul, (m.ir.l, m.ir.p)) for m in x])

    shared = not node.external
    return o3.TensorProduct(irreps(in1), irreps(in2), irreps(d.irreps_out), ins,
                            shared_weights=shared, internal_weights=shared)


def check_e3nn(prog: fusiondsl.Program, name: str, layer: torch.nn.Module) -> None:
    d = prog.diagram(name)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tp = e3nn_tensor_product(d)
    finally:
        torch.set_default_dtype(old)
    assert layer.weight_numel == tp.weight_numel
    if not d.nodes[0].external and tp.weight_numel:
        with torch.no_grad():
            layer.weight.copy_(tp.weight.reshape(-1))
    xs = [x.detach() for x in random_inputs(layer, seed=5)]
    assert max_error([tp(*xs)], [layer(*xs)]) <= TOL


# ---- the tests -------------------------------------------------------------------------------
def test_random_program(seed: int, request: pytest.FixtureRequest) -> None:
    """einsum: checked, declared width, equivariant, hoisted = unhoisted, = e3nn; refusals."""
    text, name, features = program(seed)
    message = refused_construct(seed)
    if message is not None:
        with pytest.raises(FusionError, match=message):
            fusiondsl.loads(text)
        return
    prog = fusiondsl.loads(text)
    ref = compile64(prog, name)
    check_layer(prog, name, ref)
    if "sum_j" in features:
        xs = inputs(ref)
        plain = twin(ref, prog, name, "einsum", hoist=False)
        assert max_error(derivatives(ref, xs), derivatives(plain, xs)) <= TOL
    if "e3nn" in features:
        check_e3nn(prog, name, ref)
    if "form:graph" in features or "group:SU2" in features:
        assert refused(prog, name, "c") and refused(prog, name, "triton")


def _against_einsum(seed: int, backend: str) -> None:
    text, name, features = program(seed)
    prog = fusiondsl.loads(text)
    ref = compile64(prog, name)
    try:
        layer = twin(ref, prog, name, backend)
    except (FusionError, NotImplementedError) as err:
        assert f"the {backend} backend does not support" in str(err)
        pytest.skip(f"{backend} refuses: {str(err).splitlines()[0]}")
    xs = inputs(ref)
    want = derivatives(ref, xs)
    assert max_error(want, derivatives(layer, xs)) <= TOL
    assert tuple(want[0].shape[1:]) == declared_shape(prog, name)
    if backend == "c":  # other graphs than xs' (Triton equal to einsum is equivariant)
        check_layer(prog, name, layer)
        if "sum_j" in features:
            plain = twin(ref, prog, name, backend, hoist=False)
            assert max_error(want, derivatives(plain, xs)) <= TOL


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_random_program_c(c_seed: int) -> None:
    _against_einsum(c_seed, "c")


def test_random_program_triton(triton_seed: int) -> None:
    pytest.importorskip("triton")
    _against_einsum(triton_seed, "triton")


# ---- issue 17's regression specs, on every backend ---------------------------------------
_BLOCK = """diagram d({legs}) -> o: {x} {{
    m = sum_j {fuse} -> {labels}
    o = linear(cat(h, m))
}}"""
REGRESSION = {
    "free": _BLOCK.format(legs="h: 8x0e+8x1o, y: edge sh(2), g: edge 8x0e", x="8x0e+8x1o",
                          fuse="fuse{h[i], h[j], y} * g", labels="0e + 1o"),
    "free_two_legs": _BLOCK.format(legs="h: 8x0e+8x1o, k: 8x0e+8x1o, y: edge sh(2), "
                                   "g: edge 8x0e", x="8x0e+8x1o",
                                   fuse="fuse{h[i], k[j], y} * g", labels="0e + 1o"),
    "free_l2": _BLOCK.format(legs="h: 4x0e+4x1o+4x2e, y: edge sh(1), g: edge 4x0e",
                             x="4x0e+4x1o+4x2e", fuse="fuse{h[i], h[j], y} * g",
                             labels="0e + 1o + 2e"),
    "fixed": _BLOCK.format(legs="h: 8x0e+8x1o, y: edge sh(2), g: edge 8x0e", x="8x0e+8x1o",
                           fuse="fuse(h[j], y, h[i]) * g", labels="0e + 1o"),
    "fixed_ungated": _BLOCK.format(legs="h: 8x0e+8x1o, y: edge sh(2)", x="8x0e+8x1o",
                                   fuse="fuse(h[j], y, h[i])", labels="0e + 1o"),
}


@pytest.mark.parametrize("backend", ["einsum", "c", "triton"])
@pytest.mark.parametrize("case", list(REGRESSION))
def test_issue17_regression(case: str, backend: str) -> None:
    """Free and fixed orders inside sum_j: declared width, equivariant, equal to einsum."""
    if backend == "c" and not c_runtime.available():
        pytest.skip("no C compiler with OpenMP")
    if backend == "triton":
        pytest.importorskip("triton")
    prog = fusiondsl.loads(REGRESSION[case])
    ref = compile64(prog, "d")
    layer = ref if backend == "einsum" else twin(ref, prog, "d", backend)
    xs = inputs(ref)
    want = derivatives(ref, xs)
    assert tuple(want[0].shape[1:]) == ((36,) if case == "free_l2" else (32,))
    if backend != "triton":  # Triton equal to einsum is equivariant; its interpreter is slow
        check_layer(prog, "d", layer)
    assert max_error(want, derivatives(layer, xs)) <= TOL
    if backend == "einsum":  # C's unhoisted kernels run on the random sum_j programs
        plain = twin(ref, prog, "d", backend, hoist=False)
        assert max_error(want, derivatives(plain, xs)) <= TOL


# ---- the bugs the generator found, minimised ---------------------------------------------------

@pytest.mark.parametrize("text", [
    "graph g { in x: 2x1o  in y: 1o  out o: 1e  vertex (x, y, o) }",   # gave 6 columns for 3
    "graph g { in x: 1o  in y: 1o  out o: 2x1e  vertex (x, y, o) }",   # opt_einsum ValueError
])
def test_bug1_a_graph_out_leg_has_the_in_legs_channels(text: str) -> None:
    with pytest.raises(FusionError, match=REFUSED["graph:out_wider"]):
        fusiondsl.loads(text)
    fixed = text.replace("out o: 1e", "out o: 2x1e") if "2x1o" in text else text.replace(
        "2x1e", "1e")
    prog = fusiondsl.loads(fixed)
    check_layer(prog, "g", compile64(prog, "g"))


@pytest.mark.parametrize("edge_weights", ["", " weights uvu external"])
def test_bug2_node_level_external_weights_in_a_block_are_refused(edge_weights: str) -> None:
    text = f"""diagram d(h: 2x0e + 2x1o, y: edge sh(1)) -> o: 2x1o {{
        m = sum_j fuse(h[j], y) -> 0e + 1o{edge_weights}
        o = fuse(m, h) weights uvu external
    }}"""  # the C and Triton layers read the per-edge rows 0..N-1 as the nodes' weights
    with pytest.raises(FusionError, match=REFUSED["external:node"]):
        fusiondsl.loads(text)


@pytest.mark.parametrize("mode", ["uvu", "uuu"])
def test_bug3_grouped_external_mul1(mode: str) -> None:
    prog = fusiondsl.loads(f"diagram d(x: 1o, y: 1o) -> o: 1e {{ o = fuse(x, y) weights {mode} "
                           "external }")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        grouped = prog.compile("d", backend="einsum", strategy="grouped")
        per_path = prog.compile("d", backend="einsum", strategy="per-path")
    finally:
        torch.set_default_dtype(old)
    xs = inputs(per_path)
    assert max_error(derivatives(per_path, xs), derivatives(grouped, xs)) <= TOL


@pytest.mark.parametrize("backend", ["c", "triton"])
def test_bug4_gate_outside_a_neighbourhood_block(backend: str) -> None:
    if backend == "c" and not c_runtime.available():
        pytest.skip("no C compiler with OpenMP")
    prog = fusiondsl.loads("diagram d(x: 2x1o, y: 1o, g: 2x0e) -> o: 2x0e + 2x1e "
                           "{ o = fuse(x, y) * g }")
    ref = compile64(prog, "d")
    if refused(prog, "d", backend):
        return
    xs = inputs(ref)
    assert max_error(derivatives(ref, xs), derivatives(twin(ref, prog, "d", backend), xs)) <= TOL

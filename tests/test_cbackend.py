"""C backend: forward, gradients and second derivatives equal the einsum backend.

Every case compiles a small C library (cached on disk by source hash); the suite skips when
no C compiler is found. No timings here: speed is measured in ``benchmarks/bench_layers.py``.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.backends.c import kernels as c_kernels
from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.backends.c.support import CCompilerNotFoundError, CUnsupportedError, supports
from fusiondsl.nn.layers import generate
from fusiondsl.nn.testing import equivariance_error, random_inputs

pytestmark = pytest.mark.skipif(not c_runtime.available(), reason="no C compiler")

ROOT = Path(__file__).resolve().parent.parent
# The two layers benchmarks/bench_layers.py times against e3nn (its peers.py holds them too).
H = "32x0e + 32x1o + 32x2e"
SPECS = {
    "fctp": f"diagram fctp(x: {H}, y: 0e + 1o + 2e) -> z: {H} {{ z = fuse(x, y) weights uvw }}",
    "conv": f"diagram conv(h: {H}, y: sh(3)) -> m: 32x(0e + 1o + 2e + 3o) "
            "{ m = fuse(h, y) weights uvu external }",
}

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
diagram uvw_wide(x: 3x(0e + 1o), y: 2x(0e + 1o)) -> z: 4x(0e + 1o + 1e) {
    z = fuse(x, y) weights uvw
}
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
# Larger examples (so3: 15 paths over u×v×w; fusion3: 58) take 15-30 s to compile cold; the
# code they exercise is the same as MODES' and the benchmark layers'.
MAX_PATHS = 12


def _small_example(path: Path) -> str:
    """An example spec with every multiplicity cut to at most 3."""
    return re.sub(r"\b(\d+)x", lambda m: f"{min(int(m.group(1)), 3)}x", path.read_text())


EXAMPLES = [(_small_example(f), n) for f in sorted((ROOT / "examples").glob("*.fd"))
            for n, d in fusiondsl.load(f).diagrams.items()
            if supports(d) and not d.is_neighbourhood  # tests/test_cbackend_neighbourhood.py
            and fusiondsl.load(f).compile(n, backend="einsum").plan.paths.num_paths <= MAX_PATHS]
BENCH = [(SPECS[n], n) for n in ("fctp", "conv")]
CASES = [(MODES, n) for n in fusiondsl.loads(MODES).names] + EXAMPLES + BENCH
IDS = [n if text == MODES else f"example:{n}" if (text, n) in EXAMPLES else f"bench:{n}"
       for text, n in CASES]


def _pair(text: str, name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The einsum and the C layer of one diagram in float64, with the same weights."""
    prog = fusiondsl.loads(text)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ref, lay = prog.compile(name, backend="einsum"), prog.compile(name, backend="c")
    finally:
        torch.set_default_dtype(old)
    lay.load_state_dict(ref.state_dict())
    return ref, lay


def _derivatives(layer: torch.nn.Module, xs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Output, first derivatives (inputs and weights) and a second-derivative contraction."""
    gen = torch.Generator().manual_seed(seed)
    leaves = [*xs, *layer.parameters()]
    out = layer(*xs)
    cot = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, cot, create_graph=True)
    tangents = [torch.randn(g.shape, generator=gen, dtype=g.dtype) for g in grads]
    mixed = sum((g * t).sum() for g, t in zip(grads, tangents))
    second = torch.autograd.grad(mixed, leaves, allow_unused=True)
    second = [torch.zeros_like(x) if s is None else s for s, x in zip(second, leaves)]
    return [out, *grads, *second]


@pytest.mark.parametrize(("text", "name"), CASES, ids=IDS)
def test_matches_einsum_to_second_order(text: str, name: str) -> None:
    """float64 to 1e-10 and float32 to 1e-4 (relative to the largest value, at least 1)."""
    pair = _pair(text, name)
    for dtype in (torch.float64, torch.float32):
        ref, lay = (copy.deepcopy(layer).to(dtype) for layer in pair)
        xs = [x.requires_grad_() for x in random_inputs(ref, batch=5, dtype=dtype, seed=3)]
        want, got = _derivatives(ref, xs, seed=4), _derivatives(lay, xs, seed=4)
        assert len(want) == len(got) >= 3
        for w, g in zip(want, got):
            scale = max(1.0, w.abs().max().item())
            assert (w - g).abs().max().item() <= TOL[dtype] * scale, dtype


def test_tiles_of_several_rows_match_einsum(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``ROWS_PER_TILE`` is 1 by measurement; a tile of 3 rows (a partial last tile at 7 rows)
    must give the same numbers, weight gradient included (whose tile's rows are summed)."""
    monkeypatch.setattr(c_kernels, "ROWS_PER_TILE", 3)
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))  # no cached R = 1 source
    ref, lay = _pair(SPECS["fctp"], "fctp")
    assert "enum { R = 3 }" in lay.source
    xs = [x.requires_grad_() for x in random_inputs(ref, batch=7, dtype=torch.float64, seed=5)]
    for w, g in zip(_derivatives(ref, xs, seed=6), _derivatives(lay, xs, seed=6)):
        assert (w - g).abs().max().item() <= TOL[torch.float64] * max(1.0, w.abs().max().item())


@pytest.mark.parametrize("name", ["uvw", "uvu"])
def test_o3_build_matches_einsum(name: str, o3_build: None) -> None:
    """The flags users get (-O3 -march=native): the same numbers to second order."""
    assert c_runtime.flags()[-1] == "-O3"
    test_matches_einsum_to_second_order(MODES, name)


def test_cflags_are_added_after_the_defaults_and_key_the_cache(monkeypatch) -> None:
    """``$FUSIONDSL_CFLAGS`` comes last (so its ``-O`` wins), changes the cache key, and a
    malformed value is a one-line error naming the variable."""
    source = "/* any source */"
    monkeypatch.setenv("FUSIONDSL_CFLAGS", "-O1 -g")
    assert c_runtime.flags()[-2:] == ["-O1", "-g"]
    key = c_runtime._digest(source, "cc")
    monkeypatch.setenv("FUSIONDSL_CFLAGS", "-O2")
    assert c_runtime._digest(source, "cc") != key
    monkeypatch.setenv("FUSIONDSL_CFLAGS", "-O2 '-g")
    with pytest.raises(ValueError, match=r"^\$FUSIONDSL_CFLAGS is not a list of shell words"):
        c_runtime.flags()


def test_peel_flag_is_used_only_where_the_compiler_takes_it(tmp_path, monkeypatch) -> None:
    """gcc gets ``PEEL`` (before ``$FUSIONDSL_CFLAGS``); a compiler that refuses the option
    builds with the plain flags instead of failing every build."""
    monkeypatch.setenv("FUSIONDSL_CFLAGS", "-O1")
    refuses = tmp_path / "cc"  # a "compiler" that fails on PEEL and succeeds otherwise
    refuses.write_text(f'#!/bin/sh\ncase "$*" in *{c_runtime.PEEL[0]}*) exit 1;; esac\n'
                       'exec cc "$@"\n')
    refuses.chmod(0o755)
    monkeypatch.setenv("CC", str(refuses))
    c_runtime._probe.cache_clear()
    assert c_runtime.flags() == [*c_runtime.FLAGS, "-O1"]
    monkeypatch.delenv("CC")
    c_runtime._probe.cache_clear()
    gcc = "gcc" in subprocess.run([c_runtime.compiler(), "--version"], capture_output=True,
                                  text=True, check=False).stdout.lower()
    if gcc:
        assert c_runtime.flags() == [*c_runtime.FLAGS, *c_runtime.PEEL, "-O1"]


@pytest.mark.parametrize(("text", "name"), [(MODES, "uvw"), (MODES, "uvu"), BENCH[1]])
def test_equivariant(text: str, name: str) -> None:
    layer = fusiondsl.loads(text).compile(name, backend="c").double()
    assert equivariance_error(layer, seed=2) < 1e-10


TINY = """
diagram tiny_uvw(x: 0e + 1o, y: 1o) -> z: 2x1o { z = fuse(x, y) weights uvw }
diagram tiny_chain(a: 1o, b: 1o, c: 0e) -> o: 1e {
    o = fuse(fuse(a, b) -> 1e, c) weights uuu external
}
"""


@pytest.mark.parametrize("name", fusiondsl.loads(TINY).names)
def test_gradcheck_and_gradgradcheck(name: str) -> None:
    layer = fusiondsl.loads(TINY).compile(name, backend="c").double()
    xs = [x.requires_grad_() for x in random_inputs(layer, batch=2, seed=5)]
    assert torch.autograd.gradcheck(layer, xs)
    assert torch.autograd.gradgradcheck(layer, xs)


def test_compiles_once_then_reads_the_cache(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    text = "diagram once(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) weights uvu }"
    before = c_runtime.stats["compiles"]
    fusiondsl.loads(text).compile(backend="c")
    assert c_runtime.stats["compiles"] == before + 2  # float and double
    assert len(list((tmp_path).rglob("*.so"))) == 2
    monkeypatch.setattr(c_runtime, "_LOADED", {})  # as a fresh process would
    fusiondsl.loads(text).compile(backend="c")
    assert c_runtime.stats["compiles"] == before + 2


def test_missing_compiler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c_runtime, "compiler", lambda: None)
    with pytest.raises(CCompilerNotFoundError, match="needs a C compiler"):
        fusiondsl.loads(MODES).compile("uvw", backend="c")


@pytest.mark.parametrize(("text", "construct"), [
    ("group SO3\ngraph g { in x: 1\n in y: 1\n out o: 1\n vertex (x, y, o) }", "graph-form"),
    ("group SU2\ndiagram s(a: 1/2, b: 1/2) -> s: 0 + 1 { s = fuse(a, b) }", "SU2"),
])
def test_refusals_name_the_construct(text: str, construct: str) -> None:
    prog = fusiondsl.loads(text)
    with pytest.raises(CUnsupportedError, match=f"the c backend does not support {construct}"):
        prog.compile(prog.names[0], backend="c")


def test_source_is_readable_and_broadcasts_batches() -> None:
    ref, lay = _pair(MODES, "uvu")
    assert "/* path 0: 0e ⊗ 0e → 0e (uvu, 2×1 → 2) */" in lay.source
    assert "void z_out(" in lay.source and "void z_xs(" in lay.source
    assert "void z_x1(" not in lay.source  # a binary node's operand gradients are z_xs's
    x = torch.randn(2, 3, lay.irreps_in[0].dim, dtype=torch.float64)
    y = torch.randn(3, lay.irreps_in[1].dim, dtype=torch.float64)
    w = torch.randn(lay.weight_numel, dtype=torch.float64)
    torch.testing.assert_close(lay(x, y, w), ref(x, y, w), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="external weights"):
        lay(x, y)


def test_half_precision_computes_in_float32() -> None:
    ref, lay = _pair(MODES, "uvw")
    xs = [x.to(torch.bfloat16) for x in random_inputs(ref, seed=9)]
    out = lay.to(torch.bfloat16)(*xs)
    assert out.dtype == torch.bfloat16
    want = ref(*[x.double() for x in xs])
    assert (out.double() - want).abs().max().item() <= 5e-2 * want.abs().max().item()


GALLERY = sorted((ROOT / "kernels").glob("*.c.c"))


@pytest.mark.parametrize("path", GALLERY, ids=[p.name for p in GALLERY])
def test_gallery_c_files_are_the_layers_source(path: Path) -> None:
    stem, name = path.name.split(".")[:2]
    d = fusiondsl.load(ROOT / "examples" / f"{stem}.fd").diagram(name)
    source, _ = generate(d, "c", spec_name=f"examples/{stem}.fd")
    assert path.read_text() in source


def test_joint_and_single_operand_gradients_agree() -> None:
    """Both operands: ``_xs`` with both ``want`` bits; one operand: with its bit alone (the
    other operand's result pointer NULL, and its own input too). Same numbers either way."""
    ref, lay = _pair(MODES, "uvw_wide")
    assert "void z_xs(" in lay.source
    x, y = random_inputs(ref, batch=4, seed=6)
    for wanted in ((True, True), (True, False), (False, True)):
        xs = [t.clone().requires_grad_(w) for t, w in zip((x, y), wanted)]
        leaves = [t for t in xs if t.requires_grad]
        got = torch.autograd.grad(lay(*xs).pow(2).sum(), leaves)
        want = torch.autograd.grad(ref(*xs).pow(2).sum(), leaves)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-10)


def test_cli_refusal_points_into_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    from fusiondsl.cli.main import main

    path = Path(__file__).resolve().parent.parent / "examples" / "open_graph.fd"
    assert main(["compile", str(path), "--diagram", "open_graph", "--target", "c"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"{path}:7:7: error: the c backend does not support graph-form diagrams "
                      "(`graph …`) yet (diagram 'open_graph')")
    assert err[2].index("^") == err[1].index("open_graph")  # under the graph's name
    assert main(["compile", str(path.parent / "spins.fd")]) == 1
    assert capsys.readouterr().err.startswith(f"{path.parent / 'spins.fd'}: error: 2 diagrams")


def test_bench_c_kernels_runs_every_kernel_of_a_layer() -> None:
    """benchmarks/bench_c_kernels.py finds a layer's kernels and times each role (smoke)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_c_kernels.py"
    out = subprocess.run([sys.executable, str(script), "single_path", "--rows", "50",
                          "--repeats", "1", "--rounds", "1"],
                         capture_output=True, text=True, check=True).stdout
    line = out.strip().splitlines()[-1]
    assert re.search(r"single_path\s+z\s+out\s+[\d.]+\s+xs\s+[\d.]+\s+w\s+[\d.]+$", line), out


def test_bench_c_kernels_against_another_tree_interleaves_both_builds() -> None:
    """``--against TREE`` builds that tree's source with its flags beside this tree's and
    prints a pair of lines per kernel with the ratio (here the tree against itself)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_c_kernels.py"),
                          "single_path", "--rows", "50", "--repeats", "1", "--rounds", "1",
                          "--against", str(root)],
                         capture_output=True, text=True, check=True).stdout
    theirs, ours = out.strip().splitlines()[-2:]
    assert re.search(r"single_path\s+z\s+against\s+out\s+[\d.]+\s+xs\s+[\d.]+\s+w\s+[\d.]+$",
                     theirs), out
    assert re.search(r"this\s+out .*\(faster by out\s+[\d.]+x\s+xs\s+[\d.]+x\s+w\s+[\d.]+x\)$",
                     ours), out
    flags = [line for line in out.splitlines() if line.startswith(("this tree:", "against:"))]
    assert len(flags) == 2 and len({f.split(":", 1)[1].strip() for f in flags}) == 1, out


def test_the_weights_meet_the_leg_with_fewest_components() -> None:
    """One vertex, ``uvw``: ``1o ⊗ 1o → 2e`` folds x into the weights first in the forward
    (3 components, not 5) and closes its weight gradient on x; ``2e ⊗ 1o → 1o`` keeps the
    weights last (the result has the fewest). Values: every test against einsum."""
    spec = ("diagram a(x: 16x1o, y: 1o) -> z: 16x2e { z = fuse(x, y) weights uvw }\n"
            "diagram b(x: 16x2e, y: 1o) -> z: 16x1o { z = fuse(x, y) weights uvw }\n")
    prog = fusiondsl.loads(spec)
    source = {n: prog.compile(n, backend="c").source for n in ("a", "b")}

    def function(name: str, role: str) -> str:
        return source[name].split(f"void z_{role}(", 1)[1].split("\n}\n", 1)[0]

    assert "x0 ⊗ weights, summed over u" in function("a", "out")
    assert "x1 ⊗ out → x0" in function("a", "w")
    assert "⊗ weights" not in function("b", "out")
    assert "x0 ⊗ x1 → out" in function("b", "w")

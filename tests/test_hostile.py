"""Hostile and careless input (issue 12): injection, collisions, bad tensors, bounded work."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import fusiondsl
from fusiondsl.backends.names import safe_name
from fusiondsl.nn.arguments import ArgumentError
from fusiondsl.nn.testing import equivariance_error, random_inputs

SPEC = "diagram d(x: 2x0e + 2x1o, y: 1x1o) -> z: 2x1o { z = fuse(x, y) weights uvu }\n"
EVIL = 'x"""\nimport os; os.system("touch PWNED")\n"""*/y.fd'


# ---- 1. no code injection through the file name -------------------------------------------
@pytest.mark.parametrize("backend", ["einsum", "c"])
def test_a_file_name_cannot_inject_code(tmp_path, monkeypatch, backend):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / EVIL.replace("/", "_")
    path.write_text(SPEC)
    layer = fusiondsl.load(path).compile("d", backend=backend, spec_name=EVIL)
    assert not (tmp_path / "PWNED").exists()
    compile(layer.source, "generated", "exec")  # still valid Python
    assert '"""\nimport os' not in layer.source and "*/y.fd" not in layer.source
    x, y = torch.randn(3, 8), torch.randn(3, 3)
    assert layer(x, y).shape == (3, 6)


@pytest.mark.parametrize("target", ["einsum", "c"])
def test_a_compiled_file_from_an_evil_name_imports_cleanly(tmp_path, target):
    path = tmp_path / EVIL.replace("/", "_")
    path.write_text(SPEC)
    out = tmp_path / "out.py"
    cli = [sys.executable, "-m", "fusiondsl.cli.main", "compile", str(path), "--target", target,
           "-o", str(out)]
    subprocess.run(cli, check=True, capture_output=True, cwd=tmp_path)
    subprocess.run([sys.executable, "-c", f"import runpy; runpy.run_path({str(out)!r})"],
                   check=True, capture_output=True, cwd=tmp_path)
    assert not (tmp_path / "PWNED").exists()


# ---- 3. one namer: users' names collide neither with each other nor with the compiler's -----
RENAMED = {
    "collide": ("diagram d(a: 1o + 1o, a_0: 1o) -> z: 0e + 0e { z = fuse(a, a_0) }",
                "diagram d(p: 1o + 1o, q: 1o) -> z: 0e + 0e { z = fuse(p, q) }"),
    "keywords": ("diagram d(lambda: 2x1o, lambda_: 1o) -> z: 2x0e { z = fuse(lambda, lambda_) }",
                 "diagram d(p: 2x1o, q: 1o) -> z: 2x0e { z = fuse(p, q) }"),
    "runtime names": (
        "diagram d(receivers: 2x0e+2x1o, senders: edge sh(1), num_nodes: edge 2x0e)"
        " -> o: 2x0e+2x1o {\n m = sum_j fuse(receivers[j], senders) * num_nodes -> 0e+1o\n"
        " o = linear(cat(receivers, m)) }",
        "diagram d(h: 2x0e+2x1o, y: edge sh(1), g: edge 2x0e) -> o: 2x0e+2x1o {\n"
        " m = sum_j fuse(h[j], y) * g -> 0e+1o\n o = linear(cat(h, m)) }"),
    "checker names": (
        "diagram d(h: 2x0e+2x1o, y: edge sh(1)) -> o: 2x0e+2x1o {\n"
        " _c1 = sum_j fuse(h[j], y) -> 0e+1o\n o = linear(cat(h, _c1)) }",
        "diagram d(h: 2x0e+2x1o, y: edge sh(1)) -> o: 2x0e+2x1o {\n"
        " m = sum_j fuse(h[j], y) -> 0e+1o\n o = linear(cat(h, m)) }"),
    "backend names": (
        "diagram d(_fuse: 2x0e+2x1o, y: edge sh(1)) -> o: 2x0e+2x1o {\n"
        " _scatter_sum = sum_j fuse(_fuse[j], y) -> 0e+1o\n"
        " kernels_o = linear(cat(_fuse, _scatter_sum))\n o = linear(kernels_o) }",
        "diagram d(h: 2x0e+2x1o, y: edge sh(1)) -> o: 2x0e+2x1o {\n"
        " m = sum_j fuse(h[j], y) -> 0e+1o\n k = linear(cat(h, m))\n o = linear(k) }"),
    "temporaries": ("diagram d(t0: 2x1o, xx1: 2x1o, weight: 1o) -> result: 2x1o {\n"
                    " t = fuse(t0, xx1) weights uvu\n result = fuse(t, weight) weights uvu }",
                    "diagram d(p: 2x1o, q: 2x1o, r: 1o) -> z: 2x1o {\n"
                    " s = fuse(p, q) weights uvu\n z = fuse(s, r) weights uvu }"),
}


@pytest.mark.parametrize("backend", ["einsum", "c"])
@pytest.mark.parametrize("case", sorted(RENAMED))
def test_names_never_change_the_numbers(case, backend):
    text, plain = RENAMED[case]
    ref = fusiondsl.loads(plain).compile("d", backend="einsum").double()
    layer = fusiondsl.loads(text).compile("d", backend=backend).double()
    layer.load_state_dict(ref.state_dict())
    xs = random_inputs(layer)
    out = layer(*xs)
    assert out.shape[-1] == layer.irreps_out.dim
    torch.testing.assert_close(out, ref(*xs), atol=1e-12, rtol=0)
    assert equivariance_error(layer) < 1e-10


def test_safe_names_are_injective():
    names = ["a", "a_0", "a_0_0", "lambda", "lambda_", "U1_a", "t", "t_", "t0", "_c1", "c1"]
    assert len({safe_name(n) for n in names}) == len(names)


# ---- 2 and 6. the calling contract ----------------------------------------------------------
BLOCK = fusiondsl.load("examples/fusion_block.fd")


@pytest.fixture(scope="module", params=["einsum", "c"])
def block(request):
    return BLOCK.compile("fusion_block", backend=request.param).double()


BAD_CALLS = {
    "y with one row": (lambda h, y, g, e: (h, y[:1], g, e), "argument 'y' must have one row"),
    "y too narrow": (lambda h, y, g, e: (h, y[:, :-1], g, e), "argument 'y' must be"),
    "y too wide": (lambda h, y, g, e: (h, torch.cat([y, y], 1), g, e), "argument 'y' must be"),
    "edge_index with 3 rows": (lambda h, y, g, e: (h, y, g, torch.cat([e, e[:1]])),
                               "'edge_index' must be [2, num_edges]"),
    "edge_index out of range": (lambda h, y, g, e: (h, y, g, e * 1000), "outside [0, 5)"),
    "negative edge_index": (lambda h, y, g, e: (h, y, g, -e - 1), "outside [0, 5)"),
    "float edge_index": (lambda h, y, g, e: (h, y, g, e.double()), "must be int64 or int32"),
    "int features": (lambda h, y, g, e: (h.long(), y, g, e), "floating-point tensor"),
    "float32 into a float64 layer": (lambda h, y, g, e: (h.float(), y, g, e),
                                     "has dtype torch.float32 but this layer computes in"),
    "extra argument": (lambda h, y, g, e: (h, y, g, e, g), "takes 4 argument(s)"),
    "missing argument": (lambda h, y, g, e: (h, y, g), "takes 4 argument(s)"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_tensors_are_one_line_errors_naming_the_argument(block, case):
    change, message = BAD_CALLS[case]
    args = change(*random_inputs(block))
    with pytest.raises(ArgumentError) as err:
        block(*args)
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("layer 'fusion_block': ")


def test_empty_inputs_give_empty_outputs(block):
    h, y, g, e = random_inputs(block)
    h.requires_grad_(True)
    out = block(h[:0], y[:0], g[:0], e[:, :0])
    assert out.shape == (0, block.irreps_out.dim)
    out.sum().backward()
    no_edges = block(h, y[:0], g[:0], e[:, :0])  # nodes, but nobody has neighbours
    assert no_edges.shape == (h.shape[0], block.irreps_out.dim)


@pytest.mark.parametrize("backend", ["einsum", "c"])
def test_tree_layers_share_the_contract(backend):
    layer = fusiondsl.loads(SPEC).compile("d", backend=backend)
    x, y = torch.randn(4, 8), torch.randn(4, 3)
    assert layer(x[:0], y[:0]).shape == (0, 6)
    assert layer(x[:, None], y[None]).shape == (4, 4, 6)  # leading shapes broadcast
    for args, message in [((x, y, y), "takes 2 argument(s)"),
                          ((x.double(), y.double()), "this layer computes in torch.float32"),
                          ((x.long(), y), "floating-point"),
                          ((x[:, :5], y), "argument 'x' must be [..., 8] (2x0e+2x1o)"),
                          ((x[:3], y), "do not broadcast")]:
        with pytest.raises(ArgumentError, match=message.replace("[", r"\[").replace("(", r"\(")
                           .replace(")", r"\)").replace("+", r"\+").replace(".", r"\.")):
            layer(*args)


def test_the_c_backend_survives_bad_tensors_in_a_subprocess(tmp_path):
    script = textwrap.dedent("""
        import torch, fusiondsl
        from fusiondsl.nn.testing import random_inputs
        layer = fusiondsl.load("examples/fusion_block.fd").compile("fusion_block", backend="c")
        h, y, g, e = random_inputs(layer, dtype=torch.float32)
        big = torch.stack([torch.zeros(5_000_000, dtype=torch.long),
                           torch.ones(5_000_000, dtype=torch.long)])
        calls = [(h, y[:1], g, big), (h, y[:1], g, e), (h, y[:, :-1], g, e),
                 (h.t().contiguous().t(), y, g, e), (h[:, ::1], y, g, e.flip(0))]
        for args in calls:
            try:
                out = layer(*args)
                assert torch.isfinite(out).all()
            except ValueError as err:
                assert "\\n" not in str(err)
        print("survived")
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)), env=env, timeout=600)
    assert run.returncode == 0 and "survived" in run.stdout, run.stderr[-2000:]


# ---- 4. bounded work: counted before built, refused with the count and the override ---------
BIG = {
    "16 operands": ("diagram d(x: 2x(0e+1o)) -> z: 2x0e { z = fuse(" + ", ".join(["x"] * 16)
                    + ") }", "paths, more than the limit of 20,000"),
    "12 nested fuses": ("diagram d(x: 2x(0e+1o)) -> z: 0e { z = " + "fuse(" * 12 + "x, x)"
                        + ", x)" * 11 + " }", "paths, more than the limit"),
    "sh(40) x sh(40)": ("diagram d(x: sh(40), y: sh(40)) -> z: sh(40) { z = fuse(x, y) }",
                        "couples up to spin 40, above the limit of 16"),
    "uvw on 100000 channels": ("diagram d(x: 100000x0e, y: 100000x0e) -> z: 100000x0e {"
                               " z = fuse(x, y) weights uvw }", "weights by this fuse"),
    "a huge multiplicity": ("diagram d(x: 99999999999999999999999x0e, y: 0e) -> z: 0e {"
                            " z = fuse(x, y) }", "is too large"),
}


@pytest.mark.parametrize("case", sorted(BIG))
def test_large_diagrams_are_refused_quickly_with_a_position(case):
    import time

    text, message = BIG[case]
    start = time.perf_counter()
    with pytest.raises(fusiondsl.FusionError) as err:
        fusiondsl.loads(text)
    assert time.perf_counter() - start < 20  # was minutes, or a hang; generous on shared CI
    assert message in str(err.value) and "FUSIONDSL_MAX_" in str(err.value)
    assert str(err.value).startswith("<string>:1:")


def test_limits_can_be_raised(monkeypatch):
    text = "diagram d(x: 2x(0e+1o)) -> z: 2x0e { z = fuse(x, x, x, x, x, x, x) }"
    with pytest.raises(fusiondsl.FusionError, match="MAX_PATHS"):
        fusiondsl.loads(text.replace("x)", "x, x, x, x, x, x, x, x)"))
    monkeypatch.setenv("FUSIONDSL_MAX_PATHS", "10")
    with pytest.raises(fusiondsl.FusionError, match="limit of 10"):
        fusiondsl.loads(text)
    monkeypatch.setenv("FUSIONDSL_MAX_PATHS", "100000")
    assert fusiondsl.loads(text).diagrams["d"]


# ---- options are checked (issue 18) ----------------------------------------------------------
@pytest.mark.parametrize("option, value, message", [
    ("strategy", "fast", "unknown strategy 'fast': use one of 'auto', 'autotune'"),
    ("irrep_normalization", "bogus", "unknown irrep_normalization 'bogus': use one of"),
    ("path_normalization", "paths", "unknown path_normalization 'paths'"),
    ("backend", "gpu", "unknown backend 'gpu': use one of 'einsum', 'triton', 'c'"),
    ("batch", 0, "batch must be a positive integer"),
    ("hoist", "yes", "unknown hoist 'yes'"),
])
def test_compile_options_are_checked(option, value, message):
    with pytest.raises(ValueError, match=message):
        fusiondsl.loads(SPEC).compile("d", **{option: value})

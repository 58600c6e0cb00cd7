"""``backend="auto"``, the default: what it picks, why it says so, how it falls back.

CUDA calls run on a twin compiled for CUDA; with no GPU here, the routing is tested by
treating CPU tensors as CUDA ones under the Triton interpreter.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

import fusiondsl
from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.cli.main import main
from fusiondsl.nn import devices
from fusiondsl.nn.testing import random_inputs

SPEC = """group O3
diagram f(x: 2x0e + 2x1o, y: sh(1)) -> z: 2x0e + 2x1o { z = fuse(x, y) weights uvw }
"""


@pytest.fixture(scope="module")
def program() -> fusiondsl.Program:
    return fusiondsl.loads(SPEC)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    b.load_state_dict(a.state_dict())
    inputs = random_inputs(a, 7, dtype=torch.float64, seed=1)
    assert torch.allclose(a.double()(*inputs), b.double()(*inputs), atol=1e-12)


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_default_is_c_on_a_cpu_with_a_compiler(program: fusiondsl.Program) -> None:
    layer = program.compile()
    assert layer.backend == "c"
    assert layer.backend_reason.startswith("c, the fast CPU path")
    assert "on CUDA tensors" in layer.backend_reason
    _same(layer, program.compile(backend="einsum"))


def test_no_compiler_gives_einsum_and_says_why(program: fusiondsl.Program,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c_runtime, "available", lambda: False)
    layer = program.compile()
    assert layer.backend == "einsum"
    assert "no C compiler with OpenMP" in layer.backend_reason.split(";")[0]


def test_refused_construct_gives_einsum_and_says_why() -> None:
    su2 = fusiondsl.loads("group SU2\ndiagram s(a: 1/2, b: 1/2) -> c: 0 { c = fuse(a, b) }\n")
    layer = su2.compile()
    assert layer.backend == "einsum"
    assert "SU2" in layer.backend_reason


def test_a_failed_c_build_falls_back_with_one_warning(program: fusiondsl.Program,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c_runtime, "available", lambda: True)

    def broken(source: str) -> None:
        raise RuntimeError("compiling x.c failed:\nx.c:1: error: boom")

    monkeypatch.setattr(c_runtime, "load_library", broken)
    with pytest.warns(RuntimeWarning, match="building the C kernels of 'f' failed") as seen:
        layer = program.compile(spec_name="<fallback test>")  # a new source: no cached module
    assert len(seen) == 1 and "\n" not in str(seen[0].message)
    assert layer.backend == "einsum"
    assert "building the C kernels failed: compiling x.c failed:" in layer.backend_reason
    with pytest.raises(RuntimeError, match="boom"):  # asked by name: no fallback
        program.compile(backend="c", spec_name="<fallback test 2>")


def test_forced_backends_are_kept(program: fusiondsl.Program) -> None:
    layer = program.compile(backend="einsum")
    assert (layer.backend, layer.backend_reason) == ("einsum", "einsum, as asked")


def test_cuda_calls_run_on_a_twin_with_the_layers_weights(
        program: fusiondsl.Program, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("triton")
    monkeypatch.setattr(devices, "_on_cuda", lambda args, kwargs: True)  # CPU as if CUDA
    layer = program.compile().double()
    assert layer.backend_reason.endswith("triton on CUDA tensors")
    reference = program.compile(backend="einsum").double()
    reference.load_state_dict(layer.state_dict())
    x, y = random_inputs(layer, 5, dtype=torch.float64, seed=2)
    out = layer(x, y)
    assert torch.allclose(out, reference(x, y), atol=1e-12)
    out.pow(2).sum().backward()  # the gradient reaches the layer's own weights
    reference(x, y).pow(2).sum().backward()
    for (name, p), q in zip(layer.named_parameters(), reference.parameters()):
        assert p.grad is not None, name
        assert torch.allclose(p.grad, q.grad, atol=1e-12), name


def test_check_verbose_shows_the_choice(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "f.fd"
    spec.write_text(SPEC)
    assert main(["check", "-v", str(spec)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "backend" in x)
    assert line.startswith("  backend (auto, the default): ")
    assert "on CUDA tensors" in line


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_a_large_unbuilt_layer_gets_einsum_until_built_once(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusiondsl.nn import layers

    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    monkeypatch.setattr(layers, "AUTO_C_MAX_LINES", 10)  # every layer is "large"
    prog = fusiondsl.loads(SPEC)
    first = prog.compile()
    assert first.backend == "einsum"
    assert "are not built yet" in first.backend_reason
    assert "backend='c'" in first.backend_reason
    prog.compile(backend="c")  # builds and caches the kernels
    assert prog.compile().backend == "c"


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_a_layer_with_many_paths_is_not_lowered_to_c_until_built_once(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above AUTO_C_MAX_PATHS auto does not even write the C source (a warm compile of cofd
    spent 65 ms on it), unless backend='c' built the same plan before; then auto gives c."""
    from fusiondsl.backends.c import lower as c_lower
    from fusiondsl.nn import layer_cache, layers

    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    monkeypatch.setattr(layers, "AUTO_C_MAX_PATHS", 0)  # every layer has "many" paths
    lowered = []
    real_lower = c_lower.CLowering.render

    def counting(self):
        lowered.append(self.spec_name)
        return real_lower(self)

    monkeypatch.setattr(c_lower.CLowering, "render", counting)
    prog = fusiondsl.loads(SPEC)
    first = prog.compile()
    assert first.backend == "einsum" and not lowered
    assert "paths) are not built yet" in first.backend_reason
    prog.compile(backend="c")  # builds the kernels and leaves the marker
    assert len(lowered) == 1
    again = prog.compile()  # the C source built was cached (nn.layer_cache): not lowered again
    assert again.backend == "c" and again.source == prog.compile(backend="c").source
    assert len(lowered) == 1
    monkeypatch.setattr(layer_cache, "load", lambda k, backend: None)  # the marker alone
    assert prog.compile().backend == "c" and len(lowered) == 2
    other = prog.compile(spec_name="another name")  # another C source: never built
    assert other.backend == "einsum" and len(lowered) == 2


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_check_verbose_says_what_compile_gives(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``check -v`` applies the first-compile size rule too: its line is the layer's reason."""
    from fusiondsl.nn import layers

    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    spec = tmp_path / "f.fd"
    spec.write_text(SPEC)
    for limit, backend in ((10, "einsum"), (10**9, "c")):
        monkeypatch.setattr(layers, "AUTO_C_MAX_LINES", limit)
        assert main(["check", "-v", str(spec)]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if "backend" in x)
        layer = fusiondsl.loads(SPEC).compile()
        assert layer.backend == backend
        assert line == f"  backend (auto, the default): {layer.backend_reason}"


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
def test_the_first_build_rule_reads_the_nests_the_c_header_declares(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """so3's kernels take 3.8 s of cc a precision for 1,403 lines (conv: 3.1 s for 1,480):
    their 45 loop nests over u, v and w (declared in the C header, counted by the writer)
    keep auto on einsum."""
    from pathlib import Path

    from fusiondsl.nn import layers

    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    root = Path(__file__).resolve().parent.parent
    header = (root / "kernels" / "so3.so3.c.c").read_text().split("*/", 1)[0]
    assert "Build cost: 45 loop nests over u, v and w" in header
    layer = fusiondsl.load(str(root / "examples" / "so3.fd")).compile("so3")
    assert layer.backend == "einsum"
    assert "45 loop nests over u, v and w" in layer.backend_reason
    source = 'C_SOURCE = r"""/* Build cost: 0 loop nests over u, v and w */\n"""'
    assert layers.c_too_slow_to_build(source) is None  # short, and no nests

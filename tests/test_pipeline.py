"""fusiondsl.nn.pipeline.run: the compiler stage by stage, equal to Program.compile."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.nn.pipeline import STAGES, run
from fusiondsl.nn.testing import random_inputs

ROOT = Path(__file__).resolve().parent.parent
FCTP = "diagram tp(x: 2x1o + 1x0e, y: 0e + 1o) -> z: 2x0e + 2x1o { z = fuse(x, y) weights uvw }"
REACHED = {"parse": ["module"], "check": ["diagrams", "diagram"], "expand": ["paths"],
           "plan": ["plan"], "lower": ["source"], "load": ["layer"]}


@pytest.mark.parametrize("until", STAGES)
def test_each_stage_is_reached_and_nothing_after_it(until: str) -> None:
    s = run(FCTP, until=until)
    stop = STAGES.index(until)
    for i, stage in enumerate(STAGES):
        for field in REACHED[stage]:
            assert (getattr(s, field) is not None) == (i <= stop), (stage, field)


@pytest.mark.parametrize("spec", ["fctp.fd", "conv.fd", "fusion_block.fd", "sixj.fd"])
def test_the_loaded_layer_equals_program_compile(spec: str, float64_default: None) -> None:
    text = (ROOT / "examples" / spec).read_text()
    prog = fusiondsl.loads(text)
    name = prog.names[0]
    s = run(text, name)
    ref = prog.compile(name)
    assert s.layer is not None and s.source == ref.source
    s.layer.load_state_dict(ref.state_dict())
    xs = random_inputs(ref, 7, torch.float64)
    torch.testing.assert_close(s.layer(*xs), ref(*xs), rtol=0, atol=0)
    if s.diagram is not None and not hasattr(s.diagram, "legs"):
        assert s.paths is None and s.plan is None  # graphs have no path table or plan


def test_backend_choice_is_recorded() -> None:
    s = run(FCTP, until="plan", backend="auto")
    assert s.backend in ("c", "einsum") and s.backend_reason.startswith(s.backend)


def test_bad_requests_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="unknown stage 'optimise': use one of parse, check"):
        run(FCTP, until="optimise")
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        run(FCTP, backend="cuda")
    with pytest.raises(TypeError, match="unknown compile option"):
        run(FCTP, sparsity=True)
    with pytest.raises(fusiondsl.FusionError, match="<string>:1:8: error: unexpected end"):
        run("diagram", until="check")


def test_auto_decides_as_compile_does(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large unbuilt C layer: run() lowers and loads einsum, saying why, as compile does;
    a failed C build falls back to einsum with one warning, as compile does."""
    from fusiondsl.backends.c import runtime as c_runtime
    from fusiondsl.nn import layers

    if not c_runtime.available():
        pytest.skip("no C compiler")
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    monkeypatch.setattr(layers, "AUTO_C_MAX_LINES", 10)  # every layer is "large"
    s = run(FCTP)
    ref = fusiondsl.loads(FCTP).compile()
    assert s.backend == ref.backend == "einsum" and s.source == ref.source
    assert s.backend_reason == ref.backend_reason and "not built yet" in s.backend_reason
    assert run(FCTP, until="lower").backend == "einsum"

    monkeypatch.setattr(layers, "AUTO_C_MAX_LINES", 10**9)

    def broken(source: str) -> None:
        raise RuntimeError("compiling kernels.c failed:\nkernels.c:1: error: no")

    monkeypatch.setattr(c_runtime, "load_library", broken)
    with pytest.warns(RuntimeWarning, match="building the C kernels of 'tp' failed"):
        s = run(FCTP)
    assert s.backend == "einsum" and s.layer.backend == "einsum"
    assert "building the C kernels failed: compiling kernels.c failed" in s.backend_reason

"""Warm compiles load the source an earlier compile cached (fusiondsl.nn.layer_cache).

A cached layer must be the layer a first compile gives: same source, same numbers, same
plan when asked, same backend and reason; anything that changes the source (options, the
diagram, fusiondsl's code) must miss; a damaged entry is rebuilt, never used.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.core import cg
from fusiondsl.core.cachefile import CacheWarning
from fusiondsl.nn import layer_cache, layers
from fusiondsl.nn.testing import random_inputs
from fusiondsl.plan.text import plan_text

SPEC = """group O3
diagram f(x: 2x0e + 2x1o, y: sh(1)) -> z: 2x0e + 2x1o { z = fuse(x, y) weights uvw }
"""
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(c_runtime, "_LOADED", {})
    cg.clear_cache(disk=False)
    return tmp_path / "cache"


def _entries(cache: Path) -> list[str]:
    return sorted(p.name.split(".", 1)[1] for p in cache.glob("*/layers/*.json"))


def _no_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a warm compile planned or lowered")

    monkeypatch.setattr(layers, "make_plan", refuse)
    monkeypatch.setattr(layers, "expand", refuse)


@pytest.mark.parametrize("backend", ["einsum", "c"])
def test_a_warm_compile_loads_the_cached_layer_and_plans_only_when_asked(
        backend: str, _private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "c" and not c_runtime.available():
        pytest.skip("no C compiler with OpenMP")
    prog = fusiondsl.loads(SPEC)
    first = prog.compile(backend=backend)
    assert _entries(_private_cache) == [f"{backend}.json"]
    with monkeypatch.context() as m:
        _no_planning(m)
        warm = prog.compile(backend=backend)
    assert warm.source == first.source
    assert (warm.backend, warm.backend_reason) == (first.backend, first.backend_reason)
    assert "plan" not in vars(warm)  # not made yet
    assert plan_text(warm.plan) == plan_text(first.plan)  # made now, as the first compile did
    warm.load_state_dict(first.state_dict())
    inputs = random_inputs(first, 5, dtype=torch.float64, seed=3)
    assert torch.equal(warm.double()(*inputs), first.double()(*inputs))


def test_anything_that_changes_the_source_misses(_private_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    prog = fusiondsl.loads(SPEC)
    prog.compile(backend="einsum")
    other = fusiondsl.loads(SPEC.replace("2x0e + 2x1o {", "2x0e + 1x1o {"))
    for compile_again in (lambda: prog.compile(backend="einsum", spec_name="f.fd"),
                          lambda: prog.compile(backend="einsum", path_normalization="path"),
                          lambda: prog.compile(backend="einsum", irrep_normalization="norm"),
                          lambda: prog.compile(backend="einsum", strategy="grouped"),
                          lambda: prog.compile(backend="einsum", hoist=False),
                          lambda: other.compile(backend="einsum")):
        before = len(_entries(_private_cache))
        compile_again()
        assert len(_entries(_private_cache)) == before + 1
    layer_cache.code_digest.cache_clear()
    monkeypatch.setattr(layer_cache, "PACKAGE", ROOT / "tests")  # "other code": another key
    try:
        with monkeypatch.context() as m:
            _no_planning(m)
            with pytest.raises(AssertionError, match="planned or lowered"):
                prog.compile(backend="einsum")
    finally:
        layer_cache.code_digest.cache_clear()


def test_a_damaged_entry_is_rebuilt_not_used(_private_cache: Path) -> None:
    prog = fusiondsl.loads(SPEC)
    first = prog.compile(backend="einsum")
    (entry,) = _private_cache.glob("*/layers/*.json")
    entry.write_text(entry.read_text().replace("einsum", "EINSUM"))
    with pytest.warns(CacheWarning, match="was corrupt"):
        again = prog.compile(backend="einsum")
    assert again.source == first.source
    assert layer_cache.load(entry.name.split(".")[0], "einsum") is not None  # written again


def test_a_sound_file_that_is_no_entry_is_rejected(_private_cache: Path) -> None:
    prog = fusiondsl.loads(SPEC)
    prog.compile(backend="einsum")
    (entry,) = _private_cache.glob("*/layers/*.json")
    from fusiondsl.core import cachefile

    cachefile.store(entry, b'{"source": 1}')
    with pytest.warns(CacheWarning, match="not a layer entry"):
        assert prog.compile(backend="einsum").backend == "einsum"


@pytest.mark.skipif(not c_runtime.available(), reason="no C compiler with OpenMP")
@pytest.mark.parametrize("limit", ["AUTO_C_MAX_PATHS", "AUTO_C_MAX_LINES"])
def test_auto_gives_the_cached_decision_until_c_is_built(
        limit: str, _private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer over auto's size limits (paths, or lines of C) gets einsum from the cache (no
    planning) with the first compile's reason; once backend='c' built it, auto gives c, still
    unplanned; under other limits the cached decision is not used."""
    monkeypatch.setattr(layers, limit, 0)
    prog = fusiondsl.loads(SPEC)
    first = prog.compile()
    assert first.backend == "einsum"
    with monkeypatch.context() as m:
        _no_planning(m)
        warm = prog.compile()
    assert (warm.backend, warm.backend_reason) == ("einsum", first.backend_reason)
    built = prog.compile(backend="c")
    with monkeypatch.context() as m:
        _no_planning(m)
        warm = prog.compile()
    assert warm.backend == "c" and warm.source == built.source
    monkeypatch.setattr(layers, limit, 10**9)  # now a small layer: the einsum entry is not used
    monkeypatch.setattr(layer_cache, "CACHED_BACKENDS", ("einsum",))
    assert prog.compile().backend == "c"


def test_generated_code_is_cached_per_source_and_a_bad_code_file_is_rebuilt(
        _private_cache: Path) -> None:
    from fusiondsl.backends import registry

    source = "def f():\n    return 41 + 1\n"
    assert registry.exec_source(source, "g")["f"]() == 42
    (code,) = (p for p in _private_cache.glob("*/code/*") if p.suffix != ".sha256")
    assert registry.exec_source(source, "g")["f"]() == 42  # from the file
    from fusiondsl.core import cachefile

    cachefile.store(code, b"not marshal data")
    with pytest.warns(CacheWarning, match="not a code object"):
        assert registry.exec_source(source, "g")["f"]() == 42
    assert registry.exec_source(source.replace("41", "40"), "g")["f"]() == 41  # another file
    assert len(list(_private_cache.glob("*/code/*.sha256"))) == 2


def test_a_fresh_process_compiles_warm(_private_cache: Path) -> None:
    """What users see: the second process neither plans nor compiles Python (timings are the
    benchmark's, benchmarks/bench_compile.py; here only what runs)."""
    child = textwrap.dedent(f"""
        import fusiondsl, fusiondsl.nn.layers as L, fusiondsl.backends.registry as R
        prog = fusiondsl.loads({SPEC!r})
        if len(__import__("sys").argv) > 1:
            def refuse(*a, **k):
                raise SystemExit("planned or compiled")
            L.make_plan = L.expand = refuse
            R.compile = refuse
        layer = prog.compile(backend="einsum")
        print(layer.backend, layer.weight_numel)
    """)
    env = {"FUSIONDSL_CACHE_DIR": str(_private_cache), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.run([sys.executable, "-c", child, *warm], capture_output=True, text=True,
                           env=env, cwd=ROOT, check=False) for warm in ([], ["warm"])]
    assert [r.returncode for r in runs] == [0, 0], [r.stderr[-500:] for r in runs]
    assert runs[0].stdout == runs[1].stdout

"""Cached artefacts are checked before use: a corrupt file is reported in one line and rebuilt.

Every cache file has ``<file>.sha256`` beside it (fusiondsl.core.cachefile). These tests break the
files the ways issue 12 found (well-formed arrays with wrong values, truncated or garbage
libraries) and check that nothing wrong is ever used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fusiondsl.core import cachefile, cg
from fusiondsl.core.cachefile import CacheWarning
from fusiondsl.front import parse


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty cache folder and forgets what earlier tests loaded."""
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "cache"))
    cg.clear_cache(disk=False)
    yield tmp_path / "cache"
    cg.clear_cache(disk=False)
    parse._parser.cache_clear()  # the next parse reads the parser tables of the real cache


def _reload(fn, *args):
    cg.clear_cache(disk=False)  # as a fresh process would: only the disk copy is left
    return fn(*args)


# ---- the store itself ----------------------------------------------------------------------
def test_store_writes_the_hash_and_load_checks_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.bin"
    assert cachefile.store(path, b"payload")
    assert cachefile.hash_path(path).read_text().strip() == cachefile.digest(b"payload")
    assert cachefile.load(path) == b"payload"
    assert cachefile.load(tmp_path / "absent.bin") is None
    path.write_bytes(b"paylaod")
    with pytest.warns(CacheWarning, match=r"cache file .*x\.bin was corrupt \(hash mismatch\)"):
        assert cachefile.load(path) is None
    assert not path.exists() and not cachefile.hash_path(path).exists()


def test_a_file_without_its_hash_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"who wrote this?")
    with pytest.warns(CacheWarning, match="no hash beside it"):
        assert not cachefile.verify(path)


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert not cachefile.store(blocker / "x.bin", b"data")


def test_the_warning_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cachefile.verify(path)
    (w,) = caught
    text = warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
    assert text.count("\n") == 1 and "rebuilding it" in text


# ---- coefficient arrays (.npy) -------------------------------------------------------------
ARRAYS = [(cg.real_w3j, (2, 1, 1), "real_w3j_2_1_1.npy"),
          (cg.su2_cg, (1, 2, 1), "su2_cg_1_2_1.npy")]


@pytest.mark.parametrize(("fn", "args", "name"), ARRAYS, ids=["real_w3j", "su2_cg"])
@pytest.mark.parametrize("wrong", ["all_half", "flipped_sign", "truncated", "garbage"])
def test_a_corrupt_array_is_detected_and_rebuilt(fn, args, name, wrong: str,
                                                 _private_cache: Path) -> None:
    ref = fn(*args)
    path = cg.cache_dir() / name
    assert path.exists() and cachefile.verify(path)
    if wrong == "all_half":  # a well-formed .npy, silently wrong before
        np.save(path, np.full_like(ref, 0.5))
    elif wrong == "flipped_sign":
        np.save(path, -ref)
    elif wrong == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:
        path.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(CacheWarning, match=r"was corrupt \(hash mismatch\); rebuilding it"):
        got = _reload(fn, *args)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.load(path), ref)  # rebuilt on disk, atomically
    assert cachefile.verify(path)
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_a_good_array_is_read_from_disk_without_a_word(_private_cache: Path) -> None:
    ref = cg.real_w3j(1, 1, 2)
    path = cg.cache_dir() / "real_w3j_1_1_2.npy"
    marked = np.full_like(ref, 7.0)  # stored with its hash: proof the disk copy is what is used
    cachefile.store(path, _npy_bytes(marked))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_reload(cg.real_w3j, 1, 1, 2), marked)


def test_a_hashed_array_of_the_wrong_shape_is_rebuilt(_private_cache: Path) -> None:
    ref = cg.real_w3j(1, 1, 2)
    path = cg.cache_dir() / "real_w3j_1_1_2.npy"
    cachefile.store(path, _npy_bytes(np.zeros((3, 3))))
    with pytest.warns(CacheWarning, match="not a float64 array of shape 3x3x5"):
        np.testing.assert_array_equal(_reload(cg.real_w3j, 1, 1, 2), ref)


def test_clear_cache_removes_the_hashes_too(_private_cache: Path) -> None:
    cg.real_w3j(1, 1, 0)
    cg.clear_cache()
    assert not list(cg.cache_dir().glob("*.npy*"))


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# ---- the parser's tables -------------------------------------------------------------------
SPEC = "diagram d(x: 1o, y: 1o) -> z: 0e + 1e { z = fuse(x, y) }"


@pytest.mark.parametrize("wrong", ["garbage", "truncated", "hashed_garbage"])
def test_a_corrupt_parser_cache_is_rebuilt(wrong: str, _private_cache: Path) -> None:
    import fusiondsl

    parse._parser.cache_clear()
    want = fusiondsl.loads(SPEC).diagram().to_text()
    (path,) = cg.cache_dir().glob("fusion-lark-*.cache")
    if wrong == "garbage":
        path.write_bytes(b"\x80\x04 not a pickle")
    elif wrong == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:  # intact hash, bytes lark cannot read: still rebuilt, never a crash
        cachefile.store(path, b"\x80\x04 not a pickle")
    parse._parser.cache_clear()
    match = "lark could not read it" if wrong == "hashed_garbage" else "hash mismatch"
    with pytest.warns(CacheWarning, match=match):
        assert fusiondsl.loads(SPEC).diagram().to_text() == want
    assert cachefile.verify(path)
    parse._parser.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fusiondsl.loads(SPEC).diagram().to_text() == want


# ---- autotuning results --------------------------------------------------------------------
def test_a_corrupt_autotune_table_is_dropped(_private_cache: Path) -> None:
    pytest.importorskip("torch")
    from fusiondsl.nn import autotune

    table = {"d:abc:cpu:float32:8": {"strategy": "grouped", "ms": {"grouped": 1.0}}}
    autotune._save(table)
    assert autotune._load() == table
    path = autotune._store()
    path.write_text(json.dumps({"d:abc:cpu:float32:8": {"strategy": "per-path", "ms": {}}}))
    with pytest.warns(CacheWarning, match="hash mismatch"):
        assert autotune._load() == {}  # re-measured next time, never a wrong winner
    cachefile.store(path, b"[1, 2, 3]")  # hashed, but not a table
    with pytest.warns(CacheWarning, match="not a JSON table"):
        assert autotune._load() == {}


# ---- generated Triton kernel files ---------------------------------------------------------
def test_a_changed_kernel_file_is_rewritten(_private_cache: Path) -> None:
    from fusiondsl.backends.triton import lower as lower_triton

    source = "VALUE = 42\n"
    assert lower_triton.load_module(source, "k")["VALUE"] == 42
    (path,) = lower_triton.kernel_dir().glob("*.py")
    path.write_text("VALUE = 666\n")
    with pytest.warns(CacheWarning, match="not the generated kernel"):
        assert lower_triton.load_module(source, "k")["VALUE"] == 42
    assert path.read_text() == source


# ---- compiled C libraries (.so), each step in a fresh process ------------------------------
STEP = textwrap.dedent("""
    import fusiondsl, torch
    from fusiondsl.backends.c import runtime as c_runtime
    from fusiondsl.nn.testing import random_inputs
    text = "diagram tiny(x: 2x1o, y: 1o) -> z: 2x0e + 2x1e { z = fuse(x, y) weights uvu }"
    layer = fusiondsl.loads(text).compile(backend="c").double()
    ref = fusiondsl.loads(text).compile(backend="einsum").double()
    ref.load_state_dict(layer.state_dict())
    xs = random_inputs(layer, batch=4, seed=1)
    torch.testing.assert_close(layer(*xs), ref(*xs), rtol=0, atol=1e-12)
    print("compiles", c_runtime.stats["compiles"])
""")


def _step(cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FUSIONDSL_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", STEP], env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_a_corrupt_c_library_is_rebuilt(_private_cache: Path) -> None:
    from fusiondsl.backends.c import runtime as c_runtime

    if not c_runtime.available():
        pytest.skip("no C compiler")
    first = _step(_private_cache)
    assert "compiles 2" in first.stdout and "CacheWarning" not in first.stderr
    libs = sorted(_private_cache.rglob("*.so"))
    assert len(libs) == 2 and all(cachefile.verify(p) for p in libs)
    libs[0].write_bytes(libs[0].read_bytes()[: 1000])  # truncated
    libs[1].write_bytes(b"\x7fELF garbage")
    second = _step(_private_cache)
    assert "compiles 2" in second.stdout
    assert second.stderr.count("was corrupt (hash mismatch); rebuilding it") == 2, second.stderr
    cachefile.store(libs[0], b"\x7fELF garbage with a good hash")
    third = _step(_private_cache)  # the loader refuses it: rebuilt as well
    assert "compiles 2" in third.stdout and "the loader refused it" in third.stderr
    fourth = _step(_private_cache)
    assert "compiles 0" in fourth.stdout and "CacheWarning" not in fourth.stderr


def test_two_processes_building_the_same_layer_build_it_once(_private_cache: Path) -> None:
    """Concurrent first compiles of one C layer: one process builds, the other waits for its
    lock and loads that build; both compute the right numbers, nothing is reported corrupt."""
    from fusiondsl.backends.c import runtime as c_runtime

    if not c_runtime.available():
        pytest.skip("no C compiler")
    env = {**os.environ, "FUSIONDSL_CACHE_DIR": str(_private_cache)}
    procs = [subprocess.Popen([sys.executable, "-c", STEP], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
        assert "CacheWarning" not in err, err
    compiles = sorted(int(out.split("compiles")[-1]) for out, _ in outs)
    assert compiles == [0, 2], compiles  # both precisions once, by one of the two
    libs = sorted(_private_cache.rglob("*.so"))
    assert len(libs) == 2 and all(cachefile.verify(p) for p in libs)
    assert not list(_private_cache.rglob(".*.so"))  # no temporary build left behind


def test_a_reader_between_the_two_writes_of_a_store_removes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes filling one cache (pytest-xdist workers, DDP ranks): a reader that comes
    between ``store``'s two writes finds no file, not a file without its hash (which it used
    to remove as corrupt, with a CacheWarning, under the writer's feet)."""
    path = tmp_path / "a.npy"
    seen: list[bytes | None] = []
    real = cachefile.write_atomic

    def write_then_read(target, data):
        real(target, data)
        if not seen:  # after the first of the two writes
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                seen.append(cachefile.load(path))

    monkeypatch.setattr(cachefile, "write_atomic", write_then_read)
    assert cachefile.store(path, b"payload")
    assert seen == [None]
    assert cachefile.load(path) == b"payload"


def test_the_openmp_probe_is_remembered_so_a_warm_start_runs_no_compiler(
        _private_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``available()`` builds a probe once per compiler and flags; later processes read the
    record (40 ms saved on every warm compile). A failing compiler is never recorded."""
    from fusiondsl.backends.c import runtime as c_runtime

    cc = c_runtime.compiler()
    if cc is None:
        pytest.skip("no C compiler")
    c_runtime._probe.cache_clear()
    raw = c_runtime._probe.__wrapped__
    monkeypatch.setattr(c_runtime, "_probe", raw)  # no memo: disk only
    if not c_runtime._openmp_works(cc):
        pytest.skip("no OpenMP")
    # one record for the flags, one for whether the compiler takes PEEL (gcc does)
    records = 1 + c_runtime._probe(cc, (*c_runtime.FLAGS, *c_runtime.PEEL))
    assert len(list(c_runtime.library_dir().glob("probe-*.ok"))) == records

    def no_compiler(*args, **kwargs):
        raise AssertionError("the probe ran the compiler again")

    with monkeypatch.context() as m:
        m.setattr(c_runtime.subprocess, "run", no_compiler)
        assert c_runtime._openmp_works(cc)  # from the record
        m.setenv(c_runtime.CFLAGS_VAR, "-O1")  # other flags: another record
        with pytest.raises(AssertionError, match="ran the compiler again"):
            c_runtime._openmp_works(cc)
    fake = tmp_path / "fake-cc"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    assert not raw(str(fake), tuple(c_runtime.flags()))
    assert len(list(c_runtime.library_dir().glob("probe-*.ok"))) == records  # failure: none

import io
import itertools
import os
import stat

import numpy as np
import pytest
import sympy
from sympy.physics import wigner as sw

from fusiondsl.core import cachefile, cg, nj
from fusiondsl.core.wigner import random_rotation, real_wigner_D

LMAX = 6
TRIADS = [
    (a, b, c)
    for a in range(LMAX + 1)
    for b in range(LMAX + 1)
    for c in range(abs(a - b), min(a + b, LMAX) + 1)
]
SU2_TRIADS = [
    (a, b, c) for a in range(5) for b in range(5) for c in range(abs(a - b), a + b + 1, 2)
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache folder, never the user's."""
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "cache"))
    cg.clear_cache(disk=False)
    yield
    cg.clear_cache(disk=False)


def _half(j2):
    return sympy.Rational(j2, 2)


def test_real_w3j_matches_e3nn():
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    assert len(TRIADS) == 175
    for triad in TRIADS:
        ref = o3.wigner_3j(*triad, dtype=torch.float64).numpy()
        ours = cg.real_w3j(*triad)
        assert ours.dtype == np.float64 and ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0, err_msg=str(triad))


def test_real_w3j_unit_norm_and_exact_values():
    for triad in TRIADS:
        assert abs(np.linalg.norm(cg.real_w3j(*triad)) - 1) < 1e-14
    exact = cg.real_w3j_exact(2, 2, 2)
    total = sympy.nsimplify(sum(v**2 for v in exact.values()))
    assert total == 1
    dense = cg.real_w3j(2, 2, 2)
    for idx, value in exact.items():
        assert abs(float(value) - dense[idx]) < 1e-15
    assert np.count_nonzero(dense) == len(exact)


def test_real_w3j_is_intertwiner():
    rng = np.random.default_rng(0)
    for _ in range(2):
        rot = random_rotation(rng)
        d = [real_wigner_D(ell, rot) for ell in range(LMAX + 1)]
        for l1, l2, l3 in TRIADS:
            c = cg.real_w3j(l1, l2, l3)
            left = np.einsum("ia,jb,abk->ijk", d[l1], d[l2], c)
            right = np.einsum("ijn,nk->ijk", c, d[l3])
            np.testing.assert_allclose(left, right, atol=1e-12)


def test_real_w3j_returns_fresh_arrays():
    a = cg.real_w3j(1, 1, 2)
    a[...] = 0
    assert np.abs(cg.real_w3j(1, 1, 2)).max() > 0


def test_real_w3j_l1_is_cartesian():
    # In e3nn 0.6 the l=1 basis is (x, y, z): 1x1->0 is the dot product, 1x1->1 the cross product.
    np.testing.assert_allclose(cg.real_w3j(1, 1, 0)[:, :, 0], np.eye(3) / np.sqrt(3), atol=1e-15)
    eps = np.zeros((3, 3, 3))
    for i, j, k in itertools.permutations(range(3)):
        eps[i, j, k] = np.linalg.det(np.eye(3)[[i, j, k]])
    np.testing.assert_allclose(cg.real_w3j(1, 1, 1), eps / np.sqrt(6), atol=1e-15)


def test_su2_cg_matches_sympy():
    for a, b, c in SU2_TRIADS:
        ours = cg.su2_cg(a, b, c)
        assert ours.dtype == np.complex128 and ours.shape == (a + 1, b + 1, c + 1)
        for i, k, n in itertools.product(range(a + 1), range(b + 1), range(c + 1)):
            ms = (_half(2 * i - a), _half(2 * k - b), _half(2 * n - c))
            ref = float(sw.clebsch_gordan(_half(a), _half(b), _half(c), *ms))
            assert abs(ours[i, k, n] - ref) < 1e-13, (a, b, c, i, k, n)


def test_su2_3j_matches_sympy():
    for a, b, c in SU2_TRIADS:
        ours = cg.su2_3j(a, b, c)
        for i, k, n in itertools.product(range(a + 1), range(b + 1), range(c + 1)):
            ms = (_half(2 * i - a), _half(2 * k - b), _half(2 * n - c))
            ref = float(sw.wigner_3j(_half(a), _half(b), _half(c), *ms))
            assert abs(ours[i, k, n] - ref) < 1e-13, (a, b, c, i, k, n)


def test_su2_cg_orthogonality():
    for a in range(7):
        for b in range(7):
            cs = [cg.su2_cg(a, b, c) for c in range(abs(a - b), a + b + 1, 2)]
            for c in cs:
                gram = np.einsum("abn,abk->nk", c.conj(), c)
                np.testing.assert_allclose(gram, np.eye(c.shape[2]), atol=1e-13)
                assert abs(np.linalg.norm(c) ** 2 - c.shape[2]) < 1e-12
            full = np.concatenate(cs, axis=2).reshape((a + 1) * (b + 1), -1)
            np.testing.assert_allclose(full @ full.conj().T, np.eye(full.shape[0]), atol=1e-13)


def test_su2_metric():
    g = cg.su2_metric(1)
    np.testing.assert_array_equal(g.real, [[0, -1], [1, 0]])
    for j2 in range(6):
        g = cg.su2_metric(j2)
        np.testing.assert_array_equal(g @ g, (-1) ** j2 * np.eye(j2 + 1))
        for i in range(j2 + 1):
            m, mbar = _half(2 * i - j2), _half(j2 - 2 * i)
            ref = float(sw.wigner_3j(_half(j2), _half(j2), 0, m, mbar, 0))
            assert abs(g[i, j2 - i] - ref * np.sqrt(j2 + 1)) < 1e-13


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (cg.su2_cg, (1, 1, 1)),
        (cg.su2_cg, (2, 2, 6)),
        (cg.su2_cg, (0, 2, 0)),
        (cg.su2_cg, (-1, 1, 0)),
        (cg.su2_3j, (1, 2, 2)),
        (cg.su2_3j, (4, 0, 2)),
        (cg.real_w3j, (1, 1, 3)),
        (cg.real_w3j, (0, 2, 1)),
        (cg.real_w3j_exact, (3, 0, 2)),
    ],
)
def test_invalid_triads_raise(fn, args):
    with pytest.raises(ValueError, match=r"triangle|integer|non-negative"):
        fn(*args)


def test_real_w3j_rejects_floats():
    with pytest.raises(TypeError):
        cg.real_w3j(1.0, 1, 0)


def test_wigner_6j_and_9j():
    assert nj.wigner_6j(2, 2, 2, 2, 2, 2) == sympy.Rational(1, 6)
    assert nj.wigner_6j((2, 2, 2, 2, 2, 2)) == sympy.Rational(1, 6)
    ref = sw.wigner_6j(*(sympy.Rational(j, 2) for j in (1, 1, 2, 1, 1, 2)))
    assert ref != 0 and sympy.simplify(nj.wigner_6j(1, 1, 2, 1, 1, 2) - ref) == 0
    assert nj.wigner_6j(2, 2, 6, 2, 2, 2) == 0
    with pytest.raises(ValueError, match="integer"):
        nj.wigner_6j(1, 1, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="6"):
        nj.wigner_6j(2, 2, 2)
    args = (2, 2, 2, 2, 2, 2, 2, 2, 2)
    assert nj.wigner_9j(*args) == sw.wigner_9j(*(sympy.Rational(j, 2) for j in args))
    assert nj.wigner_9j(2, 2, 6, 2, 2, 2, 2, 2, 2) == 0
    with pytest.raises(ValueError, match="integer"):
        nj.wigner_9j(1, 1, 1, 2, 2, 2, 2, 2, 2)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "rt"))
    cg.clear_cache()
    first = cg.real_w3j(3, 2, 4)
    su2 = cg.su2_cg(3, 2, 3)
    folder = cg.cache_dir()
    assert folder.is_relative_to(tmp_path / "rt") and cg.CONVENTION in folder.name
    files = {p.name for p in folder.glob("*.npy")}
    assert {"real_w3j_3_2_4.npy", "su2_cg_3_2_3.npy"} <= files
    assert not list(folder.glob("*.tmp"))
    np.testing.assert_array_equal(np.load(folder / "real_w3j_3_2_4.npy"), first)
    cg.clear_cache(disk=False)
    marked = io.BytesIO()
    np.save(marked, np.full_like(first, 7.0))
    cachefile.store(folder / "real_w3j_3_2_4.npy", marked.getvalue())  # with its hash
    assert np.all(cg.real_w3j(3, 2, 4) == 7.0)  # proof the value came from disk
    cg.clear_cache(disk=False)
    np.save(folder / "real_w3j_3_2_4.npy", np.full_like(first, 5.0))  # no hash: not trusted
    with pytest.warns(cachefile.CacheWarning, match="hash mismatch"):
        np.testing.assert_array_equal(cg.real_w3j(3, 2, 4), first)
    cg.clear_cache()
    assert not list(folder.glob("*.npy"))
    np.testing.assert_array_equal(cg.real_w3j(3, 2, 4), first)
    np.testing.assert_array_equal(cg.su2_cg(3, 2, 3), su2)


def test_corrupt_cache_file_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path))
    ref = cg.real_w3j(2, 2, 2)
    cg.clear_cache(disk=False)
    (cg.cache_dir() / "real_w3j_2_2_2.npy").write_bytes(b"garbage")
    with pytest.warns(cachefile.CacheWarning, match="corrupt"):
        np.testing.assert_array_equal(cg.real_w3j(2, 2, 2), ref)
    cg.clear_cache(disk=False)
    np.save(cg.cache_dir() / "real_w3j_2_2_2.npy", np.zeros((3, 3)))
    with pytest.warns(cachefile.CacheWarning, match="corrupt"):
        np.testing.assert_array_equal(cg.real_w3j(2, 2, 2), ref)


def test_unwritable_cache_still_works(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(blocker / "sub"))
    ref = cg.real_w3j_exact(1, 2, 3)
    out = cg.real_w3j(1, 2, 3)
    assert all(abs(float(v) - out[i]) < 1e-15 for i, v in ref.items())
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(stat.S_IRUSR | stat.S_IXUSR)
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(readonly))
    cg.clear_cache(disk=False)
    try:
        np.testing.assert_array_equal(cg.real_w3j(1, 2, 3), out)
        np.testing.assert_array_equal(cg.su2_cg(1, 2, 3), cg.su2_cg(1, 2, 3))
    finally:
        readonly.chmod(stat.S_IRWXU)


def test_cache_dir_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("FUSIONDSL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cg.cache_dir().parent == tmp_path / "fusiondsl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cg.cache_dir().parent == cg.Path(os.path.expanduser("~")) / ".cache" / "fusiondsl"


def test_no_home_directory_still_works(monkeypatch):
    def no_home():
        raise RuntimeError("no home directory")

    monkeypatch.delenv("FUSIONDSL_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(cg.Path, "home", staticmethod(no_home))
    assert abs(np.linalg.norm(cg.real_w3j(2, 3, 4)) - 1) < 1e-14

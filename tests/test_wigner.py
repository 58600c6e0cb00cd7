from typing import NamedTuple

import numpy as np
import pytest

from fusiondsl.core import cg
from fusiondsl.core.wigner import (
    irreps_D,
    random_rotation,
    random_su2,
    real_wigner_D,
    su2_irreps_D,
    su2_wigner_D,
)

LMAX = 6


class Ir(NamedTuple):
    """A stand-in for fusiondsl.core.irreps.Irrep: only j2, p and dim are used."""

    j2: int
    p: int

    @property
    def dim(self):
        return self.j2 + 1


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def e3nn64():
    """torch and e3nn.o3 with float64 as the default dtype (e3nn computes angles in it)."""
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch, o3
    torch.set_default_dtype(old)


def test_random_rotation_is_proper_orthogonal():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rot = random_rotation(rng)
        assert rot.dtype == np.float64
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-14)
        assert abs(np.linalg.det(rot) - 1) < 1e-14


def test_random_rotation_is_uniform_on_average():
    # The Haar average of a rotation matrix is zero (and of D^l for every l > 0).
    rng = np.random.default_rng(1)
    mean = np.mean([random_rotation(rng) for _ in range(4000)], axis=0)
    assert np.abs(mean).max() < 0.05


def test_real_wigner_d_matches_e3nn(e3nn64):
    torch, o3 = e3nn64
    rng = np.random.default_rng(2)
    for _ in range(3):
        rot = random_rotation(rng)
        for ell in range(LMAX + 1):
            ref = o3.Irrep(ell, 1).D_from_matrix(torch.tensor(rot)).numpy()
            np.testing.assert_allclose(real_wigner_D(ell, rot), ref, atol=1e-12)


def test_real_wigner_d_l1_is_the_rotation():
    rot = random_rotation(np.random.default_rng(3))
    np.testing.assert_array_equal(real_wigner_D(1, rot), rot)
    np.testing.assert_array_equal(real_wigner_D(0, rot), [[1.0]])


def test_real_wigner_d_homomorphism_and_orthogonality():
    rng = np.random.default_rng(4)
    r1, r2 = random_rotation(rng), random_rotation(rng)
    for ell in range(LMAX + 1):
        d1, d2 = real_wigner_D(ell, r1), real_wigner_D(ell, r2)
        np.testing.assert_allclose(real_wigner_D(ell, r1 @ r2), d1 @ d2, atol=1e-12)
        np.testing.assert_allclose(d1 @ d1.T, np.eye(2 * ell + 1), atol=1e-12)
        np.testing.assert_allclose(real_wigner_D(ell, np.eye(3)), np.eye(2 * ell + 1), atol=1e-14)


def test_irreps_d_matches_e3nn_including_improper(e3nn64):
    torch, o3 = e3nn64
    labels = [(2, Ir(0, 1)), (1, Ir(2, -1)), (1, Ir(4, 1)), (1, Ir(6, -1))]
    rot = random_rotation(np.random.default_rng(5))
    for mat in (rot, -rot):
        ref = o3.Irreps("2x0e+1o+2e+3o").D_from_matrix(torch.tensor(mat)).numpy()
        ours = irreps_D(labels, mat)
        assert ours.shape == (17, 17)
        np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_irreps_d_with_fusiondsl_irreps():
    irreps = pytest.importorskip("fusiondsl.core.irreps")
    labels = [(3, irreps.Irrep(2, -1)), (2, irreps.Irrep(4, 1))]
    rot = random_rotation(np.random.default_rng(6))
    out = irreps_D(labels, -rot)
    np.testing.assert_allclose(out[:3, :3], -rot, atol=1e-15)  # odd: the inversion gives -1
    np.testing.assert_allclose(out[9:14, 9:14], real_wigner_D(2, rot), atol=1e-15)


def test_irreps_d_errors():
    rot = random_rotation(np.random.default_rng(7))
    with pytest.raises(ValueError, match="no parity"):
        irreps_D([(1, Ir(2, 0))], -rot)
    np.testing.assert_allclose(irreps_D([(1, Ir(2, 0))], rot), rot)
    with pytest.raises(ValueError, match="half-integer"):
        irreps_D([(1, Ir(1, 0))], rot)
    with pytest.raises(ValueError, match="orthogonal"):
        irreps_D([(1, Ir(2, 1))], 2 * rot)
    with pytest.raises(ValueError, match="proper"):
        real_wigner_D(1, -rot)


def test_su2_wigner_d_unitary_and_homomorphism():
    rng = np.random.default_rng(8)
    u, v = random_su2(rng), random_su2(rng)
    np.testing.assert_allclose(u @ u.conj().T, np.eye(2), atol=1e-14)
    assert abs(np.linalg.det(u) - 1) < 1e-14
    for j2 in range(9):
        du, dv = su2_wigner_D(j2, u), su2_wigner_D(j2, v)
        np.testing.assert_allclose(du @ du.conj().T, np.eye(j2 + 1), atol=1e-12)
        np.testing.assert_allclose(su2_wigner_D(j2, u @ v), du @ dv, atol=1e-12)
    np.testing.assert_allclose(su2_wigner_D(1, u), u[::-1, ::-1])
    minus = su2_wigner_D(3, -np.eye(2))
    np.testing.assert_allclose(minus, -np.eye(4), atol=1e-14)  # half-integer spins feel -1


def test_su2_cg_is_intertwiner():
    rng = np.random.default_rng(9)
    u = random_su2(rng)
    d = [su2_wigner_D(j2, u) for j2 in range(7)]
    for a in range(5):
        for b in range(5):
            for c in range(abs(a - b), min(a + b, 6) + 1, 2):
                cgt = cg.su2_cg(a, b, c)
                # The form in the brief: C contracted with D on the left of every leg ...
                left = np.einsum("abc,ax,by->xyc", cgt, d[a], d[b])
                right = np.einsum("cz,xyz->xyc", d[c], cgt)
                np.testing.assert_allclose(left, right, atol=1e-12)
                # ... and the usual one, D acting on kets: (Da x Db) C = C Dc.
                left = np.einsum("xa,yb,abc->xyc", d[a], d[b], cgt)
                right = np.einsum("xyz,zc->xyc", cgt, d[c])
                np.testing.assert_allclose(left, right, atol=1e-12)


def test_su2_metric_is_invariant():
    u = random_su2(np.random.default_rng(10))
    for j2 in range(7):
        g, d = cg.su2_metric(j2), su2_wigner_D(j2, u)
        np.testing.assert_allclose(d.T @ g @ d, g, atol=1e-12)


def test_su2_irreps_d():
    u = random_su2(np.random.default_rng(11))
    labels = [(2, Ir(1, 0)), (1, Ir(4, 0))]
    out = su2_irreps_D(labels, u)
    assert out.shape == (9, 9) and out.dtype == np.complex128
    np.testing.assert_allclose(out[2:4, 2:4], su2_wigner_D(1, u))
    np.testing.assert_allclose(out[4:, 4:], su2_wigner_D(4, u))
    assert not out[:2, 2:].any()
    with pytest.raises(ValueError, match="parity"):
        su2_irreps_D([(1, Ir(2, 1))], u)
    with pytest.raises(ValueError, match=r"unitary|SU\(2\)"):
        su2_wigner_D(1, 2 * u)
    with pytest.raises(ValueError, match="determinant"):
        su2_wigner_D(1, np.diag([1, -1]))

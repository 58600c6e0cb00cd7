"""Rotation matrices of O(3) and SU(2) irreps, in the bases of ``fusiondsl.core.cg``.

Built from the coupling tensors alone, independently of e3nn: in e3nn 0.6's real basis the
l = 1 block is Cartesian, ``D^1(R) = R``, and every higher degree follows from
``D^l = (2l+1) C^T (D^1 ⊗ D^(l-1)) C`` with ``C = real_w3j(1, l-1, l)``. For SU(2) the spin-1/2
matrix is ``U`` itself in the basis (up, down), reordered to ascending m, and higher spins
follow the same recursion with ``su2_cg(1, j2-1, j2)``.

>>> R = random_rotation(np.random.default_rng(0))
>>> bool(np.allclose(real_wigner_D(1, R), R))
True
"""

# ruff: noqa: N802, N803, N806 - D, R and U are the standard names of these matrices

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import numpy as np

from fusiondsl.core.cg import real_w3j, su2_cg

_TOL = 1e-8


class IrrepLike(Protocol):
    """What ``irreps_D`` needs of an irrep: twice its spin, its parity and its dimension."""

    @property
    def j2(self) -> int:
        """Twice the spin."""

    @property
    def p(self) -> int:
        """Parity: +1 even, -1 odd, 0 none."""

    @property
    def dim(self) -> int:
        """Dimension ``j2 + 1``."""


def _unit_quaternion(rng: np.random.Generator) -> np.ndarray:
    """A Haar-random unit quaternion (a normalised 4D Gaussian)."""
    q = rng.standard_normal(4)
    return q / np.linalg.norm(q)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Draw a uniformly random proper rotation matrix (float64, 3x3) from ``rng``."""
    w, x, y, z = _unit_quaternion(rng)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def random_su2(rng: np.random.Generator) -> np.ndarray:
    """Draw a Haar-random SU(2) matrix ``[[a, b], [-conj(b), conj(a)]]`` (complex128)."""
    w, x, y, z = _unit_quaternion(rng)
    a, b = complex(w, z), complex(y, x)
    return np.array([[a, b], [-b.conjugate(), a.conjugate()]])


def _check_orthogonal(R: np.ndarray) -> np.ndarray:
    """Return ``R`` as a float64 array after checking it is a 3x3 orthogonal matrix."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=_TOL):
        raise ValueError(f"expected a 3x3 orthogonal matrix, got shape {R.shape}")
    return R


def _couple(D1: np.ndarray, D2: np.ndarray, C: np.ndarray, scale: float) -> np.ndarray:
    """Restrict ``D1 ⊗ D2`` to the image of ``C``: ``scale * C^T (D1 ⊗ D2) C``."""
    right = np.einsum("ia,jb,abd->ijd", D1, D2, C)
    return scale * np.einsum("ijc,ijd->cd", C, right)


def real_wigner_D(l: int, R: np.ndarray) -> np.ndarray:  # noqa: E741
    """Real Wigner matrix of degree ``l`` for a proper rotation, in e3nn 0.6's basis.

    Equal to ``e3nn.o3.Irrep(l, 1).D_from_matrix(R)``; satisfies ``D(R1 R2) = D(R1) D(R2)``.

    Args:
        l: The degree, at least 0.
        R: A 3x3 rotation matrix with determinant +1.

    Returns:
        A float64 array of shape ``(2l+1, 2l+1)``.

    Raises:
        ValueError: If ``l`` is negative or ``R`` is not a proper rotation.
    """
    R = _check_orthogonal(R)
    if np.linalg.det(R) < 0:
        raise ValueError("real_wigner_D needs a proper rotation (det +1); use irreps_D")
    if l < 0:
        raise ValueError(f"degree must be non-negative, got {l}")
    D = np.ones((1, 1))
    for degree in range(1, l + 1):
        D = (
            R.copy()
            if degree == 1
            else _couple(R, D, real_w3j(1, degree - 1, degree), 2 * degree + 1)
        )
    return D


def _block_diag(blocks: list[np.ndarray], dtype: type) -> np.ndarray:
    """Place square ``blocks`` along the diagonal of one matrix."""
    dim = sum(b.shape[0] for b in blocks)
    out = np.zeros((dim, dim), dtype=dtype)
    start = 0
    for b in blocks:
        stop = start + b.shape[0]
        out[start:stop, start:stop] = b
        start = stop
    return out


def irreps_D(irreps: Iterable[tuple[int, IrrepLike]], R: np.ndarray) -> np.ndarray:
    """Block-diagonal O(3) matrix of a whole irreps for an orthogonal ``R`` (``mul_ir`` layout).

    An improper ``R`` is ``-1`` times the proper ``-R``; the inversion acts as the parity ``p`` on
    each block, as in ``e3nn.o3.Irreps(...).D_from_matrix``.

    Args:
        irreps: ``(mul, ir)`` pairs; ``ir`` has ``j2`` (even), ``p`` (+1, -1, or 0 for SO3).
        R: A 3x3 orthogonal matrix.

    Returns:
        A float64 array of shape ``(dim, dim)``: ``mul`` copies of each block, consecutively.

    Raises:
        ValueError: For a half-integer spin, or for an irrep without parity when ``det R = -1``.
    """
    R = _check_orthogonal(R)
    improper = np.linalg.det(R) < 0
    proper = -R if improper else R
    blocks = []
    for mul, ir in irreps:
        if ir.j2 % 2:
            raise ValueError(f"irreps_D got half-integer spin j2={ir.j2}; use su2_irreps_D")
        if improper and ir.p == 0:
            raise ValueError(f"irrep j2={ir.j2} has no parity, so det(R) = -1 is undefined")
        D = real_wigner_D(ir.j2 // 2, proper)
        blocks += [ir.p * D if improper else D] * mul
    return _block_diag(blocks, np.float64)


def _check_su2(U: np.ndarray) -> np.ndarray:
    """Return ``U`` as complex128 after checking it is a 2x2 unitary with determinant 1."""
    U = np.asarray(U, dtype=np.complex128)
    if U.shape != (2, 2) or not np.allclose(U @ U.conj().T, np.eye(2), atol=_TOL):
        raise ValueError(f"expected a 2x2 unitary matrix, got shape {U.shape}")
    if abs(np.linalg.det(U) - 1) > _TOL:
        raise ValueError("expected an SU(2) matrix (determinant 1)")
    return U


def su2_wigner_D(j2: int, U: np.ndarray) -> np.ndarray:
    """Wigner matrix of spin ``j2 / 2`` for ``U`` in SU(2), ascending-m Condon-Shortley basis.

    ``su2_wigner_D(1, U)`` is ``U`` acting on (up, down), reordered to (down, up). The CG tensors
    of ``fusiondsl.core.cg.su2_cg`` intertwine these matrices:
    ``einsum("ia,jb,abk->ijk", Da, Db, C) == einsum("ijn,nk->ijk", C, Dc)``.

    Args:
        j2: Twice the spin, at least 0.
        U: A 2x2 unitary matrix with determinant 1.

    Returns:
        A unitary complex128 array of shape ``(j2+1, j2+1)``.

    Raises:
        ValueError: If ``j2`` is negative or ``U`` is not in SU(2).
    """
    U = _check_su2(U)
    if j2 < 0:
        raise ValueError(f"spin must be non-negative, got j2={j2}")
    half = U[::-1, ::-1].copy()
    D = np.ones((1, 1), dtype=np.complex128)
    for spin in range(1, j2 + 1):
        D = half if spin == 1 else _couple(half, D, su2_cg(1, spin - 1, spin), 1.0)
    return D


def su2_irreps_D(irreps: Iterable[tuple[int, IrrepLike]], U: np.ndarray) -> np.ndarray:
    """Block-diagonal SU(2) matrix of a whole irreps (``mul_ir`` layout) for ``U`` in SU(2).

    Args:
        irreps: ``(mul, ir)`` pairs; ``ir`` has any ``j2`` and ``p == 0``.
        U: A 2x2 unitary matrix with determinant 1.

    Returns:
        A complex128 array of shape ``(dim, dim)``.

    Raises:
        ValueError: If an irrep carries a parity (SU(2) has no inversion).
    """
    blocks = []
    for mul, ir in irreps:
        if ir.p != 0:
            raise ValueError(f"SU(2) irreps carry no parity, got p={ir.p} for j2={ir.j2}")
        blocks += [su2_wigner_D(ir.j2, U)] * mul
    return _block_diag(blocks, np.complex128)

"""Recoupling (F-moves): re-express ``((a ⊗ b → k) ⊗ c → J)`` paths in ``a ⊗ (b ⊗ c → k')``.

With norm-1 couplings ``N`` (e3nn's wigner_3j in O3/SO3, the Condon–Shortley CG over
``sqrt(2c+1)`` in SU2, as the compiled layers use), the left chain tensor
``L_k = N(a,b,k) N(k,c,J)`` and the right one ``R_k' = N(b,c,k') N(a,k',J)`` obey

    L_k = sum_k' (-1)^(a+b+c+J) (2k'+1) {a b k; c J k'} R_k'

(orthogonal 6j matrix between the normalised bases ``sqrt(2k+1) L_k``, block-diagonal in J).
A planner may therefore evaluate the right tree, the cheaper one when ``a`` is wide, and mix
its paths with :attr:`Recoupling.matrix` for identical results.

>>> from fusiondsl.core.irreps import Irrep
>>> ks, kps, m = fmove_matrix("SO3", Irrep(2), Irrep(2), Irrep(2), Irrep(2))
>>> [str(k) for k in ks], m.shape
(['0', '1', '2'], (3, 3))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import factorial, sqrt
from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.core import nj
from fusiondsl.core.irreps import Group, Irrep

if TYPE_CHECKING:
    import sympy

    from fusiondsl.core.coupling import LocalPath
    from fusiondsl.ir.paths import Path


def fmove_matrix(
    group: Group, a: Irrep, b: Irrep, c: Irrep, out: Irrep
) -> tuple[list[Irrep], list[Irrep], sympy.Matrix]:
    """The exact matrix ``M`` with ``L_k = sum_k' M[k, k'] R_k'`` for one block ``J``.

    Returns:
        The left labels ``k``, the right labels ``k'`` and ``M`` (rows k, columns k').
    """
    import sympy  # exact values: imported only here (the planner uses fmove_matrix_float)

    ks = [k for k in a * b if out in k * c]
    kps = [k for k in b * c if out in a * k]
    sign = sympy.S.NegativeOne ** ((a.j2 + b.j2 + c.j2 + out.j2) // 2 % 2)
    rows = [[sign * (kp.j2 + 1) * nj.wigner_6j(a.j2, b.j2, k.j2, c.j2, out.j2, kp.j2)
             for kp in kps] for k in ks]
    return ks, kps, sympy.Matrix(rows)


@dataclass(frozen=True)
class RightPath:
    """One path of the right-nested tree: operand entries, its inner label ``k'``, output."""

    inputs: tuple[int, ...]
    irs: tuple[Irrep, ...]
    label: Irrep
    out: Irrep
    out_entry: int


@dataclass(frozen=True)
class Recoupling:
    """Left paths as combinations of right paths: ``left[i] = sum_j matrix[i, j] right[j]``."""

    right: tuple[RightPath, ...]
    exact: sympy.Matrix

    @property
    def matrix(self) -> np.ndarray:
        """The float64 matrix ``[num_left, num_right]``."""
        return np.array(self.exact.tolist(), dtype=np.float64).reshape(self.exact.shape)


def recouple(group: Group, paths: Sequence[LocalPath | Path]) -> Recoupling:
    """Re-express the chain tensors of a three-operand fuse node in the right-nested tree.

    Args:
        group: the diagram's group.
        paths: the node's left-to-right paths (each with one internal label).

    Returns:
        The right tree's paths (one per entry choice, output entry and admissible ``k'``) and
        the block-diagonal matrix; coefficients and weights of the left paths are left out.
    """
    if any(len(p.irs) != 3 for p in paths):
        raise ValueError("an F-move recouples exactly three operands")
    right: dict[tuple, int] = {}
    entries: list[tuple[int, int, sympy.Expr]] = []
    for i, p in enumerate(paths):
        a, b, c = p.irs
        ks, kps, m = fmove_matrix(group, a, b, c, p.out)
        row = ks.index(p.labels[0])
        for col, kp in enumerate(kps):
            key = (p.inputs, kp, p.out, p.out_entry)
            j = right.setdefault(key, len(right))
            entries.append((i, j, m[row, col]))
    import sympy

    exact = sympy.zeros(len(paths), len(right))
    for i, j, value in entries:
        exact[i, j] = value
    rights = tuple(RightPath(inputs, _irs(paths, inputs), kp, out, e)
                   for (inputs, kp, out, e) in right)
    return Recoupling(rights, exact)


def wigner_6j_float(j1: int, j2: int, j3: int, j4: int, j5: int, j6: int) -> float:
    """The 6j symbol ``{j1 j2 j3; j4 j5 j6}`` (doubled spins) in float64, without sympy.

    Racah's formula with exact fractions, rounded once: ``sign × sqrt(S² Δ)``, so the value is
    the same on every machine (compiled layers embed it as a literal). 0 off the triangle rule.

    >>> wigner_6j_float(2, 2, 2, 2, 2, 2)
    0.16666666666666666
    """
    total, delta = wigner_6j_parts(j1, j2, j3, j4, j5, j6)
    return (1.0 if total >= 0 else -1.0) * sqrt(total * total * delta)


def wigner_6j_parts(
    j1: int, j2: int, j3: int, j4: int, j5: int, j6: int
) -> tuple[Fraction, Fraction]:
    """The 6j symbol exactly, as ``(S, Δ)`` with value ``S * sqrt(Δ)`` (``(0, 0)`` off the rules).

    >>> wigner_6j_parts(2, 2, 2, 2, 2, 2)
    (Fraction(96, 1), Fraction(1, 331776))
    """
    triads = ((j1, j2, j3), (j1, j5, j6), (j4, j2, j6), (j4, j5, j3))
    if any((a + b + c) % 2 or not abs(a - b) <= c <= a + b for a, b, c in triads):
        return Fraction(0), Fraction(0)
    delta = Fraction(1)
    for a, b, c in triads:
        delta *= Fraction(factorial((a + b - c) // 2) * factorial((a - b + c) // 2)
                          * factorial((b + c - a) // 2), factorial((a + b + c) // 2 + 1))
    sums = [(a + b + c) // 2 for a, b, c in triads]
    pairs = [(j1 + j2 + j4 + j5) // 2, (j2 + j3 + j5 + j6) // 2, (j3 + j1 + j6 + j4) // 2]
    total = Fraction(0)
    for t in range(max(sums), min(pairs) + 1):
        den = 1
        for n in (*(t - s for s in sums), *(p - t for p in pairs)):
            den *= factorial(n)
        total += Fraction((-1) ** t * factorial(t + 1), den)
    return total, delta


def fmove_matrix_float(
    group: Group, a: Irrep, b: Irrep, c: Irrep, out: Irrep
) -> tuple[list[Irrep], list[Irrep], list[list[float]]]:
    """:func:`fmove_matrix` in float64 without sympy (for the planner, at compile time)."""
    ks = [k for k in a * b if out in k * c]
    kps = [k for k in b * c if out in a * k]
    sign = -1.0 if (a.j2 + b.j2 + c.j2 + out.j2) // 2 % 2 else 1.0
    rows = [[sign * (kp.j2 + 1) * wigner_6j_float(a.j2, b.j2, k.j2, c.j2, out.j2, kp.j2)
             for kp in kps] for k in ks]
    return ks, kps, rows


def _irs(paths: Sequence[LocalPath | Path], inputs: tuple[int, ...]) -> tuple[Irrep, ...]:
    return next(p.irs for p in paths if p.inputs == inputs)

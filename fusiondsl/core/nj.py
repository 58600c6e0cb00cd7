"""Exact Wigner 6j and 9j symbols (recoupling coefficients) from doubled spins.

Thin, checked wrappers over :mod:`sympy.physics.wigner`: every triad is validated first (an
odd sum is a ``ValueError``, a broken triangle gives 0), and spins are doubled integers as
everywhere in :mod:`fusiondsl.core.cg`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.core.cg import Index, _spins

if TYPE_CHECKING:
    import sympy


def _wigner_nj(j2s: tuple[int, ...], triads: tuple[Index, ...], name: str) -> sympy.Expr:
    """Validate every triad (odd sum: ValueError; triangle broken: 0), then call sympy."""
    import sympy

    for t in triads:
        a, b, c = (j2s[i] for i in t)
        if (a + b + c) % 2:
            raise ValueError(f"triad 2j = {(a, b, c)}: j1 + j2 + j3 is not an integer")
    for t in triads:
        a, b, c = (j2s[i] for i in t)
        if not abs(a - b) <= c <= a + b:
            return sympy.S.Zero
    from sympy.physics import wigner

    return sympy.sympify(getattr(wigner, name)(*(sympy.Rational(j, 2) for j in j2s)))


def _flat(j2s: tuple, n: int) -> tuple[int, ...]:
    """Accept ``f(a, b, ...)`` or ``f((a, b, ...))`` and check that there are ``n`` spins."""
    values = j2s[0] if len(j2s) == 1 and not isinstance(j2s[0], (int, np.integer)) else j2s
    out = _spins(values)
    if len(out) != n:
        raise ValueError(f"expected {n} doubled spins, got {len(out)}")
    return out


def wigner_6j(*j2s: int | Sequence[int]) -> sympy.Expr:
    """Exact 6j symbol ``{j1 j2 j3; j4 j5 j6}`` from six doubled spins (row-major).

    Returns 0 when a triad breaks the triangle rule; raises ``ValueError`` when a triad's sum is
    not an integer (sympy itself would raise). Accepts six ints or one sequence of six.

    >>> wigner_6j(2, 2, 2, 2, 2, 2)
    1/6
    """
    triads = ((0, 1, 2), (0, 4, 5), (3, 1, 5), (3, 4, 2))
    return _wigner_nj(_flat(j2s, 6), triads, "wigner_6j")


def wigner_9j(*j2s: int | Sequence[int]) -> sympy.Expr:
    """Exact 9j symbol ``{j1 j2 j3; j4 j5 j6; j7 j8 j9}`` from nine doubled spins (row-major).

    Returns 0 when a row or column breaks the triangle rule; raises ``ValueError`` when a row's
    or column's sum is not an integer. Accepts nine ints or one sequence of nine.
    """
    triads = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8))
    return _wigner_nj(_flat(j2s, 9), triads, "wigner_9j")

"""Exact Clebsch-Gordan coefficients for SU(2) and O(3), as float64 arrays cached on disk.

Exact throughout: the complex (Condon-Shortley) CG by Racah's formula as ``c * sqrt(s)``
(``c`` rational, ``s`` squarefree), mapped to e3nn 0.6's real basis by its matrix Q (entries
``i**k / sqrt(2)**h``), so real values are exact sums ``sum_s c_s * sqrt(s)`` whose imaginary
part is checked to vanish; only the last step rounds to float64. SU(2) spins are ``j2 = 2j``.

>>> real_w3j(1, 1, 0)[:, :, 0].round(6)  # e3nn's l=1 basis is Cartesian: a scaled identity
array([[0.57735, 0.     , 0.     ],
       [0.     , 0.57735, 0.     ],
       [0.     , 0.     , 0.57735]])
>>> su2_cg(1, 1, 0)[:, :, 0].real.round(6)  # <1/2 m1 1/2 m2 | 0 0>, m ascending
array([[ 0.      , -0.707107],
       [ 0.707107,  0.      ]])
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import hashlib
import importlib.metadata
import io
import operator
import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from math import factorial, lcm, sqrt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.core import cachefile

if TYPE_CHECKING:
    import sympy

CONVENTION = "cg-v1-e3nn06"
"""Cache key of the conventions: CS phases, e3nn 0.6 real basis, unit Frobenius norm."""

Surd = dict[int, Fraction]
"""An exact real number ``sum(c * sqrt(s) for s, c in x.items())`` with squarefree ``s``."""

Index = tuple[int, int, int]


def _check_triad(j2a: int, j2b: int, j2c: int) -> None:
    """Raise ``ValueError`` unless the doubled spins couple (triangle rule, integer sum)."""
    if min(j2a, j2b, j2c) < 0:
        raise ValueError(f"spins must be non-negative, got 2j = {(j2a, j2b, j2c)}")
    if (j2a + j2b + j2c) % 2:
        raise ValueError(f"spins 2j = {(j2a, j2b, j2c)}: j1 + j2 + j3 is not an integer")
    if not abs(j2a - j2b) <= j2c <= j2a + j2b:
        raise ValueError(f"spins 2j = {(j2a, j2b, j2c)} break the triangle rule")


def _spins(values: Sequence[int]) -> tuple[int, ...]:
    """Convert integer-like values to a tuple of ints, rejecting floats and negatives."""
    out = tuple(operator.index(v) for v in values)
    if min(out) < 0:
        raise ValueError(f"spins must be non-negative, got {out}")
    return out


@functools.lru_cache(maxsize=4096)
def _squarefree(num: int, den: int) -> tuple[Fraction, int]:
    """Write ``sqrt(num / den)`` as ``k * sqrt(s)`` with ``k`` rational and ``s`` squarefree."""
    n, k, s, p = num * den, 1, 1, 2
    while p * p <= n:
        while n % (p * p) == 0:
            n //= p * p
            k *= p
        if n % p == 0:
            n //= p
            s *= p
        p += 1
    return Fraction(k, den), s * n


@functools.cache
def _complex_cg_exact(j2a: int, j2b: int, j2c: int) -> dict[Index, tuple[Fraction, int]]:
    """Nonzero CS coefficients ``<ja ma jb mb | jc mc>`` by index (ascending m) as ``(c, s)``."""
    _check_triad(j2a, j2b, j2c)
    f = [factorial(n) for n in range(j2a + j2b + j2c + 2)]
    a_ = (j2a + j2b - j2c) // 2
    b_ = (j2a - j2b + j2c) // 2
    c_ = (-j2a + j2b + j2c) // 2
    base = (j2c + 1) * f[a_] * f[b_] * f[c_]
    top = f[(j2a + j2b + j2c) // 2 + 1]
    out: dict[Index, tuple[Fraction, int]] = {}
    for i in range(j2a + 1):
        for k in range(j2b + 1):
            n = i + k - a_
            if not 0 <= n <= j2c:
                continue
            d1, d2 = i - a_, c_ - k
            total = Fraction(0)
            for t in range(max(0, -d1, -d2), min(a_, j2a - i, k) + 1):
                den = f[t] * f[a_ - t] * f[j2a - i - t] * f[k - t] * f[d1 + t] * f[d2 + t]
                total += Fraction((-1) ** t, den)
            if total:
                num = base * f[n] * f[j2c - n] * f[i] * f[j2a - i] * f[k] * f[j2b - k]
                kq, s = _squarefree(num, top)
                out[i, k, n] = (total * kq, s)
    return out


@functools.cache
def _q_rows(l: int) -> tuple[tuple[tuple[int, int, int], ...], ...]:  # noqa: E741
    """Nonzeros of e3nn 0.6's real-to-complex matrix Q per row: ``(column, k, h)`` for i^k/√2^h.

    Row ``l + m`` holds the Wikipedia real form of ``Y_lm``, and the whole matrix is multiplied
    by ``(-i)**l = i**(3l)`` so that real-basis CG tensors come out real.
    """
    rows = []
    for m in range(-l, l + 1):
        entries: tuple[tuple[int, int, int], ...]
        if m < 0:
            entries = ((l - m, 0, 1), (l + m, 3, 1))
        elif m == 0:
            entries = ((l, 0, 0),)
        else:
            entries = ((l + m, 2 * m, 1), (l - m, 2 * m + 1, 1))
        rows.append(tuple((col, (k + 3 * l) % 4, h) for col, k, h in entries))
    return tuple(rows)


def _add_term(acc: dict[tuple[int, int], int], c: int, s: int, k: int, h: int) -> None:
    """Add ``i**k * c * sqrt(s) / sqrt(2)**h`` to ``acc``, keyed by (squarefree, imaginary?).

    ``c`` is an integer divisible by 4, so dividing by ``sqrt(2)**h`` (h <= 3) stays exact.
    """
    c //= 2 ** (h // 2)
    if h % 2:
        c, s = (c, s // 2) if s % 2 == 0 else (c // 2, 2 * s)
    key = (s, k % 2)
    acc[key] = acc.get(key, 0) + (c if k % 4 < 2 else -c)


@functools.cache
def _real_w3j_surds(l1: int, l2: int, l3: int) -> dict[Index, Surd]:
    """Exact nonzero entries of e3nn's ``wigner_3j(l1, l2, l3)`` as surd sums.

    Computes ``sum Q1[i, a] Q2[k, b] conj(Q3[n, d]) CG[i, k, n]`` (e3nn's change of basis) over
    integer numerators with one common denominator, then divides by the norm ``sqrt(2 l3 + 1)``.
    """
    q1, q2, q3 = _q_rows(l1), _q_rows(l2), _q_rows(l3)
    values = _complex_cg_exact(2 * l1, 2 * l2, 2 * l3)
    scale = 4 * lcm(*(c.denominator for c, _ in values.values()))
    acc: dict[Index, dict[tuple[int, int], int]] = {}
    for (i, k, n), (c, s) in values.items():
        num = c.numerator * (scale // c.denominator)
        for a, ka, ha in q1[i]:
            for b, kb, hb in q2[k]:
                for d, kd, hd in q3[n]:
                    entry = acc.setdefault((a, b, d), {})
                    _add_term(entry, num, s, ka + kb - kd, ha + hb + hd)
    norm = 2 * l3 + 1
    out: dict[Index, Surd] = {}
    for idx, entry in sorted(acc.items()):
        if any(v for (_, imag), v in entry.items() if imag):
            raise RuntimeError(f"real_w3j{(l1, l2, l3)}{idx} has an imaginary part")
        surd: Surd = {}
        for (s, _), v in entry.items():
            if v:
                kq, s2 = _squarefree(s * norm, norm * norm)
                surd[s2] = surd.get(s2, Fraction(0)) + Fraction(v, scale) * kq
        if any(surd.values()):
            out[idx] = {s: c for s, c in surd.items() if c}
    return out


def _surd_sympy(x: Surd) -> sympy.Expr:
    """Convert a surd sum to a sympy expression (sympy is imported lazily: it is slow to load)."""
    import sympy

    return sympy.Add(
        *(sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(s) for s, c in sorted(x.items()))
    )


def cache_dir() -> Path:
    """Folder of the on-disk coefficient cache, keyed by convention and package version.

    ``$FUSIONDSL_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/fusiondsl``, else
    ``~/.cache/fusiondsl``; the arrays live in a subfolder named after the convention, the
    package version and a hash of this file, such as ``cg-v1-e3nn06-0.1.0-<hash>``.
    """
    root = os.environ.get("FUSIONDSL_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "fusiondsl"
    return base / f"{CONVENTION}-{_package_version()}"


@functools.lru_cache(maxsize=1)
def _package_version() -> str:
    """The installed version plus a hash of this file, so that edits never reuse stale files."""
    try:
        version = importlib.metadata.version("fusiondsl")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return f"{version}-{digest}"


def _save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` and its hash atomically; give up silently when the cache is read-only."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    cachefile.store(path, buffer.getvalue())


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached array if its file matches its hash, shape and dtype; else ``None``."""
    data = cachefile.load(path)
    if data is None:
        return None
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        array = None
    if array is None or array.shape != shape or array.dtype != np.float64:
        cachefile.reject(path, "not a float64 array of shape " + "x".join(map(str, shape)))
        return None
    return array


def _disk_cached(
    name: str, shape: tuple[int, ...], compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """Load ``name`` from the disk cache (hash-checked), or compute and store it; read-only."""
    try:
        path: Path | None = cache_dir() / f"{name}.npy"
    except RuntimeError:  # no home directory to put a cache in: compute every time
        path = None
    array = _load(path, shape) if path else None
    if array is None:
        array = compute()
        if path:
            _save(path, array)
    array.flags.writeable = False
    return array


def _rounded_once(value: dict[int, Fraction]) -> float:
    """``Σ c·sqrt(s)`` over ``{s: c}`` rounded once to float64, from a 50-digit sum.

    Every entry is then the float nearest the exact value, as the kernel IR rounds it.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        total = sum((decimal.Decimal(c.numerator) / decimal.Decimal(c.denominator)
                     * decimal.Decimal(s).sqrt() for s, c in value.items()), decimal.Decimal(0))
        return float(total)


@functools.cache
def _real_w3j_array(l1: int, l2: int, l3: int) -> np.ndarray:
    """Float64 real-basis tensor, cached in memory and on disk."""

    def compute() -> np.ndarray:
        out = np.zeros(shape)
        for idx, value in _real_w3j_surds(l1, l2, l3).items():
            out[idx] = _rounded_once(value)
        return out

    shape = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    return _disk_cached(f"real_w3j_{l1}_{l2}_{l3}", shape, compute)


def _degrees(l1: int, l2: int, l3: int) -> tuple[int, int, int]:
    """Validate three O(3) degrees and return them as ints."""
    a, b, c = _spins((l1, l2, l3))
    _check_triad(2 * a, 2 * b, 2 * c)
    return a, b, c


def real_w3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real-basis coupling tensor equal to e3nn 0.6's ``o3.wigner_3j(l1, l2, l3)``.

    Args:
        l1: Degree of the first input.
        l2: Degree of the second input.
        l3: Degree of the output.

    Returns:
        A fresh float64 array of shape ``(2l1+1, 2l2+1, 2l3+1)`` with Frobenius norm 1.

    Raises:
        ValueError: If the degrees break the triangle rule or are negative.
    """
    return _real_w3j_array(*_degrees(l1, l2, l3)).copy()


def real_w3j_exact(l1: int, l2: int, l3: int) -> dict[Index, sympy.Expr]:
    """Exact nonzero entries of ``real_w3j(l1, l2, l3)`` as sympy numbers keyed by index.

    >>> real_w3j_exact(1, 1, 0)
    {(0, 0, 0): sqrt(3)/3, (1, 1, 0): sqrt(3)/3, (2, 2, 0): sqrt(3)/3}
    """
    return {idx: _surd_sympy(v) for idx, v in _real_w3j_surds(*_degrees(l1, l2, l3)).items()}


@functools.cache
def _su2_cg_array(j2a: int, j2b: int, j2c: int) -> np.ndarray:
    """Float64 CS coefficients, cached in memory and on disk."""

    def compute() -> np.ndarray:
        out = np.zeros(shape)
        for idx, (c, s) in _complex_cg_exact(j2a, j2b, j2c).items():
            out[idx] = float(c) * sqrt(s)
        return out

    shape = (j2a + 1, j2b + 1, j2c + 1)
    return _disk_cached(f"su2_cg_{j2a}_{j2b}_{j2c}", shape, compute)


def su2_cg(j2a: int, j2b: int, j2c: int) -> np.ndarray:
    """Condon-Shortley coefficients ``C[i, k, n] = <ja ma jb mb | jc mc>`` with ``m = -j + index``.

    Equal to sympy's ``clebsch_gordan``; ``sum(C[..., n] * C[..., n']) = delta(n, n')``.

    Args:
        j2a: Twice the first spin.
        j2b: Twice the second spin.
        j2c: Twice the coupled spin.

    Returns:
        A fresh complex128 array (real values) of shape ``(j2a+1, j2b+1, j2c+1)``.

    Raises:
        ValueError: If the triad breaks the triangle rule or ``ja + jb + jc`` is not an integer.
    """
    j2a, j2b, j2c = _spins((j2a, j2b, j2c))
    _check_triad(j2a, j2b, j2c)
    return _su2_cg_array(j2a, j2b, j2c).astype(np.complex128)


def su2_3j(j2a: int, j2b: int, j2c: int) -> np.ndarray:
    """Wigner 3j symbols ``(ja jb jc; ma mb mc)`` as a tensor with ascending-m indices.

    ``(-1)**(ja - jb - mc) / sqrt(2jc + 1) * <ja ma jb mb | jc -mc>``, as sympy's ``wigner_3j``.

    Raises:
        ValueError: If the triad breaks the triangle rule or ``ja + jb + jc`` is not an integer.
    """
    cg = su2_cg(j2a, j2b, j2c)[:, :, ::-1]
    n = np.arange(j2c + 1)
    sign = (-1.0) ** (((j2a - j2b + j2c) // 2 - n) % 2)
    return np.ascontiguousarray(cg * sign / sqrt(j2c + 1))


def su2_metric(j2: int) -> np.ndarray:
    """The 1j symbol ``g[m, m'] = (-1)**(j - m) * delta(m', -m)`` with ascending m (complex128)."""
    (j2,) = _spins((j2,))
    return np.diag((-1.0) ** np.arange(j2 + 1))[::-1].astype(np.complex128)


def clear_cache(disk: bool = True) -> None:
    """Forget in-memory coefficients and, if ``disk``, delete this convention's cached files."""
    for fn in (_complex_cg_exact, _real_w3j_surds, _real_w3j_array, _su2_cg_array):
        fn.cache_clear()
    if disk:
        for path in [*cache_dir().glob("*.npy"), *cache_dir().glob("*.npy.sha256")]:
            with contextlib.suppress(OSError):
                path.unlink()

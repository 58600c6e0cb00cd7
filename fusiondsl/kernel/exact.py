"""Exact numbers of the kernel IR: sums of rational multiples of square roots, and tables of them.

Every coefficient a fusion diagram needs (real-basis and Condon–Shortley couplings, 3j and 1j
symbols, e3nn's normalisation factors, 6j recoupling weights) is such a sum
``c1 * sqrt(s1) + c2 * sqrt(s2) + …`` with rational ``c`` and squarefree ``s``. The kernel IR
keeps them exactly and rounds once, to the dtype a kernel runs in, when asked.

>>> x = Exact.parse("-1/3*sqrt(2)")
>>> str(x), float(x)
('-1/3*sqrt(2)', -0.4714045207910317)
>>> str(Exact.sqrt(Fraction(1, 8)) * Exact.sqrt(Fraction(2)))
'1/2'
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING

from fusiondsl.core import cg
from fusiondsl.core.diagnostics import InternalError

if TYPE_CHECKING:
    import torch

_TERM = re.compile(r"([+-]?)(\d+(?:/\d+)?)?(\*?sqrt\((\d+)\))?")
_DIGITS = 50  # enough that rounding the decimal approximation never differs from the exact


@dataclass(frozen=True)
class Exact:
    """``sum(c * sqrt(s) for s, c in terms)``: ``s`` squarefree and increasing, ``c`` nonzero."""

    terms: tuple[tuple[int, Fraction], ...] = ()

    @staticmethod
    def of(pairs: Iterable[tuple[int, Fraction]]) -> Exact:
        """Collect ``(s, c)`` pairs with squarefree ``s`` into a normalised value."""
        acc: dict[int, Fraction] = {}
        for s, c in pairs:
            acc[s] = acc.get(s, Fraction(0)) + Fraction(c)
        return Exact(tuple((s, c) for s, c in sorted(acc.items()) if c))

    @staticmethod
    def sqrt(x: Fraction | int) -> Exact:
        """The square root of a non-negative rational."""
        x = Fraction(x)
        if x < 0:
            raise ValueError(f"sqrt of a negative number {x}")
        if x == 0:
            return Exact()
        k, s = cg._squarefree(x.numerator, x.denominator)
        return Exact(((s, k),))

    @staticmethod
    def parse(text: str) -> Exact:
        """The inverse of ``str``: ``"1/2"``, ``"-sqrt(3)"``, ``"1/6*sqrt(6)-1/2*sqrt(2)"``."""
        text = text.replace(" ", "")
        if text == "0":
            return Exact()
        pairs, pos = [], 0
        while pos < len(text):
            m = _TERM.match(text, pos)
            if m is None or m.end() == pos or (m.group(2) is None and m.group(4) is None):
                raise ValueError(f"not an exact number: {text!r}")
            c = Fraction(m.group(2) or 1) * (-1 if m.group(1) == "-" else 1)
            pairs.append((int(m.group(4) or 1), c))
            pos = m.end()
        return Exact.of(pairs)

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for s, c in self.terms:
            sign = "-" if c < 0 else "+"
            mag = abs(c)
            if s == 1:
                body = str(mag)
            else:
                body = f"sqrt({s})" if mag == 1 else f"{mag}*sqrt({s})"
            parts.append(sign + body)
        text = "".join(parts)
        return text[1:] if text.startswith("+") else text

    def __add__(self, other: Exact) -> Exact:
        return Exact.of((*self.terms, *other.terms))

    def __mul__(self, other: Exact) -> Exact:
        pairs = []
        for s1, c1 in self.terms:
            for s2, c2 in other.terms:
                g = math.gcd(s1, s2)
                pairs.append((s1 // g * (s2 // g), c1 * c2 * g))
        return Exact.of(pairs)

    def __neg__(self) -> Exact:
        return Exact(tuple((s, -c) for s, c in self.terms))

    def decimal(self) -> Decimal:
        """A 50-digit decimal approximation (far finer than any float it is rounded to)."""
        with localcontext() as ctx:
            ctx.prec = _DIGITS
            total = Decimal(0)
            for s, c in self.terms:
                total += Decimal(c.numerator) / Decimal(c.denominator) * Decimal(s).sqrt()
            return total

    def __float__(self) -> float:
        return float(self.decimal())  # correctly rounded to float64


def round_exact(values: Sequence[Exact], dtype: torch.dtype) -> torch.Tensor:
    """Each value rounded once to ``dtype`` (the nearest number of that dtype), as a tensor.

    Complex dtypes get the value rounded in their real part (these coefficients are real).
    """
    import torch

    real = {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
    decs = [v.decimal() for v in values]
    wide = torch.tensor([float(d) for d in decs], dtype=torch.float64)
    if real != torch.float64:
        base = wide.to(real)
        inf = torch.tensor(math.inf, dtype=real)
        candidates = torch.stack([base, torch.nextafter(base, inf), torch.nextafter(base, -inf)])
        best = [min(candidates[:, n].tolist(), key=lambda f, d=d: abs(Decimal(f) - d))
                for n, d in enumerate(decs)]
        wide = torch.tensor(best, dtype=torch.float64)
    return wide.to(dtype)


@dataclass(frozen=True)
class Table:
    """A sparse coefficient tensor: nonzero indices and their exact values.

    Attributes:
        name: its name in the kernel IR (``w3j_1_2_1``, ``cg_1_1_2``, ``tj_…``, ``g_…``).
        shape: the dense shape.
        indices: one index tuple per nonzero, in row-major order.
        exact: the exact value of each nonzero.
        doc: what it is, in words.
    """

    name: str
    shape: tuple[int, ...]
    indices: tuple[tuple[int, ...], ...]
    exact: tuple[Exact, ...]
    doc: str

    @property
    def nnz(self) -> int:
        """Number of nonzeros."""
        return len(self.indices)

    def values(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``[nnz]`` values, rounded once to ``dtype`` (default float64)."""
        import torch

        return _rounded(self, dtype or torch.float64)

    def index_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[nnz, ndim]`` int64 indices."""
        import torch

        return torch.tensor(self.indices, dtype=torch.int64, device=device).reshape(
            len(self.indices), len(self.shape))

    def dense(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense tensor (for checks and the graph-form reference)."""
        import torch

        values = self.values(dtype)
        out = torch.zeros(self.shape, dtype=values.dtype)
        out[tuple(self.index_tensor().T)] = values
        return out


@functools.lru_cache(maxsize=1024)
def _rounded(table: Table, dtype: torch.dtype) -> torch.Tensor:
    return round_exact(table.exact, dtype)


def _table(name: str, shape: tuple[int, ...], entries: dict, doc: str) -> Table:
    items = sorted(entries.items())
    return Table(name, shape, tuple(tuple(i) for i, _ in items), tuple(v for _, v in items), doc)


@functools.cache
def w3j_table(l1: int, l2: int, l3: int) -> Table:
    """e3nn's ``wigner_3j(l1, l2, l3)`` exactly (the O3/SO3 coupling of one step)."""
    surds = cg._real_w3j_surds(l1, l2, l3)
    entries = {idx: Exact.of(v.items()) for idx, v in surds.items()}
    return _table(f"w3j_{l1}_{l2}_{l3}", (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1), entries,
                  f"wigner_3j({l1}, {l2}, {l3})")


def _cs(j2a: int, j2b: int, j2c: int) -> dict[tuple[int, int, int], Exact]:
    return {idx: Exact(((s, c),)) for idx, (c, s) in cg._complex_cg_exact(j2a, j2b, j2c).items()}


@functools.cache
def su2_fuse_table(j2a: int, j2b: int, j2c: int) -> Table:
    """The SU2 coupling of one step: Condon–Shortley CG over ``sqrt(2c + 1)``."""
    scale = Exact.sqrt(Fraction(1, j2c + 1))
    entries = {idx: v * scale for idx, v in _cs(j2a, j2b, j2c).items()}
    return _table(f"cg_{j2a}_{j2b}_{j2c}", (j2a + 1, j2b + 1, j2c + 1), entries,
                  f"SU2 CG <{j2a}/2 {j2b}/2 | {j2c}/2> / sqrt({j2c + 1}) (spins as 2j)")


@functools.cache
def su2_3j_table(j2a: int, j2b: int, j2c: int) -> Table:
    """The Wigner 3j symbol (a graph vertex in SU2), as :func:`fusiondsl.cg.su2_3j`."""
    scale = Exact.sqrt(Fraction(1, j2c + 1))
    entries = {}
    for (i, k, n), v in _cs(j2a, j2b, j2c).items():
        m = j2c - n  # the third index runs over -m
        sign = -1 if ((j2a - j2b + j2c) // 2 - m) % 2 else 1
        entries[i, k, m] = v * scale * Exact(((1, Fraction(sign)),))
    return _table(f"tj_{j2a}_{j2b}_{j2c}", (j2a + 1, j2b + 1, j2c + 1), entries,
                  f"Wigner 3j symbol ({j2a}/2 {j2b}/2 {j2c}/2) (spins as 2j)")


@functools.cache
def metric_table(j2: int) -> Table:
    """The SU2 1j symbol ``(-1)^(j - m) δ(m', -m)``, as :func:`fusiondsl.cg.su2_metric`."""
    entries = {(r, j2 - r): Exact(((1, Fraction((-1) ** (j2 - r))),)) for r in range(j2 + 1)}
    return _table(f"g_{j2}", (j2 + 1, j2 + 1), entries, f"1j symbol of spin {j2}/2")


def check_close(what: str, exact: Exact, planned: float) -> None:
    """Raise ``InternalError`` when the plan's float is not the exact value (to 1e-13)."""
    if abs(float(exact) - planned) > 1e-13 * max(1.0, abs(planned)):
        raise InternalError(f"kernel IR: {what} is {exact} = {float(exact)!r} exactly, but the "
                            f"plan holds {planned!r}")

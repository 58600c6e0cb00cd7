"""Irreducible representations of O3, SO3 and SU2, and lists of them with multiplicities.

Labels follow e3nn: ``0e``, ``1o`` in O3 (ℓ with parity), ``2`` in SO3, and ``1/2`` in SU2.
A spin is stored as the integer ``j2 = 2j`` so half-integers never become floats.

>>> x = Irreps.parse("16x0e + 8x1o")
>>> x.dim
40
>>> str(x)
'16x0e+8x1o'
>>> [str(ir) for ir in Irrep.parse("1o") * Irrep.parse("2e")]
['1o', '2o', '3o']
>>> str(Irreps.parse("1/2 + 3/2", group="SU2"))
'1x1/2+1x3/2'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, NamedTuple

Group = Literal["O3", "SO3", "SU2"]
GROUPS: tuple[Group, ...] = ("O3", "SO3", "SU2")
PARITY_CHARS = {1: "e", -1: "o"}


@dataclass(frozen=True, order=True)
class Irrep:
    """One irrep: twice its spin ``j2`` and its parity ``p`` (+1, -1, or 0 for none)."""

    j2: int
    p: int = 0

    def __post_init__(self) -> None:
        if self.j2 < 0 or self.p not in (-1, 0, 1):
            raise ValueError(f"invalid irrep j2={self.j2} p={self.p}")

    @staticmethod
    def parse(text: str, group: Group = "O3") -> Irrep:
        """Parse one label such as ``1o``, ``2`` or ``3/2``."""
        irreps = Irreps.parse(text, group)
        if len(irreps) != 1 or irreps[0].mul != 1:
            raise ValueError(f"{text!r} is not a single irrep")
        return irreps[0].ir

    @property
    def l(self) -> int:  # noqa: E743 - e3nn's name for the degree
        """The integer degree ℓ (errors for half-integer spins)."""
        if self.j2 % 2:
            raise ValueError(f"{self} has a half-integer spin")
        return self.j2 // 2

    @property
    def j(self) -> Fraction:
        """The spin as an exact fraction."""
        return Fraction(self.j2, 2)

    @property
    def dim(self) -> int:
        """Dimension 2j + 1."""
        return self.j2 + 1

    @property
    def is_integer(self) -> bool:
        """Whether the spin is an integer (an SO3 irrep)."""
        return self.j2 % 2 == 0

    def __mul__(self, other: Irrep) -> list[Irrep]:  # type: ignore[override]
        """Labels in the decomposition of a product (Clebsch–Gordan series)."""
        parity = self.p * other.p
        lo, hi = abs(self.j2 - other.j2), self.j2 + other.j2
        return [Irrep(j2, parity) for j2 in range(lo, hi + 1, 2)]

    def couples(self, a: Irrep, b: Irrep) -> bool:
        """Whether this label appears in ``a ⊗ b`` (triangle rule, integer sum, parity)."""
        return self in (a * b)

    def __str__(self) -> str:
        spin = str(self.j2 // 2) if self.j2 % 2 == 0 else f"{self.j2}/2"
        return spin + PARITY_CHARS.get(self.p, "")

    def __repr__(self) -> str:
        return f"Irrep({self})"


class MulIr(NamedTuple):
    """A multiplicity (number of channels) times one irrep."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        """Total dimension mul · (2j + 1)."""
        return self.mul * self.ir.dim

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"


_TEXT_PARSER: Callable[[str, Group], Irreps] | None = None


def set_text_parser(parser: Callable[[str, Group], Irreps]) -> None:
    """Install the one irreps grammar (:func:`fusiondsl.front.parse.parse_irreps`).

    The parser lives in the front end, above this module; it hands itself down here when it
    is imported (``import fusiondsl`` always imports it), so the core imports nothing above it.
    """
    global _TEXT_PARSER
    _TEXT_PARSER = parser


@dataclass(frozen=True)
class Irreps:
    """An ordered list of (mul, irrep) entries, laid out as e3nn's ``mul_ir``."""

    entries: tuple[MulIr, ...] = ()

    @staticmethod
    def parse(text: str, group: Group = "O3") -> Irreps:
        """Parse e3nn syntax: ``16x0e + 8x1o``, ``32x(0e + 1o)``, ``sh(3)``, ``1/2``.

        Raises:
            FusionError: when the text is not a well-formed irreps for ``group``.
        """
        if _TEXT_PARSER is None:  # only when core is used without the package around it
            raise RuntimeError("Irreps.parse needs the front end: import fusiondsl first")
        return _TEXT_PARSER(text, group)

    @staticmethod
    def spherical_harmonics(lmax: int, group: Group = "O3") -> Irreps:
        """``sh(lmax)``: ``0e + 1o + 2e + …`` in O3, ``0 + 1 + 2 + …`` otherwise."""
        parity = (lambda ell: (-1) ** ell) if group == "O3" else (lambda ell: 0)
        return Irreps(tuple(MulIr(1, Irrep(2 * ell, parity(ell))) for ell in range(lmax + 1)))

    def __iter__(self) -> Iterator[MulIr]:  # type: ignore[override]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> MulIr:
        return self.entries[i]

    def __add__(self, other: Irreps) -> Irreps:
        return Irreps(self.entries + other.entries)

    def __mul__(self, other: Irreps) -> Irreps:  # type: ignore[override]
        """The full decomposition of the product, one entry per (entry, entry, label)."""
        return Irreps(
            tuple(
                MulIr(a.mul * b.mul, ir)
                for a in self.entries
                for b in other.entries
                for ir in a.ir * b.ir
            )
        )

    def scaled(self, mul: int) -> Irreps:
        """Every multiplicity multiplied by ``mul`` (``32x(0e + 1o)``)."""
        return Irreps(tuple(MulIr(mul * e.mul, e.ir) for e in self.entries))

    @property
    def dim(self) -> int:
        """Total dimension of the feature vector."""
        return sum(e.dim for e in self.entries)

    @property
    def num_irreps(self) -> int:
        """Number of irreps counted with multiplicity."""
        return sum(e.mul for e in self.entries)

    @property
    def slices(self) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` offsets of each entry in the flat feature vector."""
        out, start = [], 0
        for e in self.entries:
            out.append((start, start + e.dim))
            start += e.dim
        return tuple(out)

    def sort(self) -> Irreps:
        """Entries ordered by (spin, parity) as e3nn does: odd before even at equal ℓ."""
        return Irreps(tuple(sorted(self.entries, key=lambda e: (e.ir.j2, e.ir.p))))

    def simplify(self) -> Irreps:
        """Merge neighbouring entries that carry the same irrep; drop zero multiplicities."""
        merged: list[MulIr] = []
        for e in self.entries:
            if e.mul == 0:
                continue
            if merged and merged[-1].ir == e.ir:
                merged[-1] = MulIr(merged[-1].mul + e.mul, e.ir)
            else:
                merged.append(e)
        return Irreps(tuple(merged))

    def count(self, ir: Irrep) -> int:
        """Total multiplicity of one label."""
        return sum(e.mul for e in self.entries if e.ir == ir)

    @property
    def labels(self) -> tuple[Irrep, ...]:
        """The distinct labels, in first-appearance order."""
        return tuple(dict.fromkeys(e.ir for e in self.entries))

    def __str__(self) -> str:
        return "+".join(str(e) for e in self.entries)

    def __repr__(self) -> str:
        return f"Irreps({str(self)!r})"

"""Irreps expressions evaluated in a group, every label checked (``16x0e + 8x(1o + 2e)``).

Both the checker (``let`` values, declared ports, filters) and :func:`fusiondsl.front.parse.
parse_irreps` (standalone irreps strings) evaluate through :func:`evaluate_irreps`, so a
label means the same wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from fusiondsl.core.diagnostics import Diagnostic, FusionError, Span
from fusiondsl.core.irreps import Group, Irrep, Irreps, MulIr
from fusiondsl.front import ast
from fusiondsl.front.limits import advice, limit

_ATOM = re.compile(r"(\d+)(?:/(\d+))?([A-Za-z]?)")
MAX_SPIN = 64  # larger labels make path enumeration explode; sh() has the same bound


@dataclass(frozen=True)
class LetValue:
    """What a ``let`` bound: the irreps, the group it was written in, where."""

    irreps: Irreps
    group: Group
    span: Span


class Reporter:
    """Collects diagnostics; :meth:`mark`/:meth:`failed_since` tell whether a step added any."""

    def __init__(self) -> None:
        self.diags: list[Diagnostic] = []

    def error(self, message: str, span: Span, *notes: str) -> None:
        """Record one error."""
        self.diags.append(Diagnostic(message, span, tuple(notes)))

    def mark(self) -> int:
        """A checkpoint for :meth:`failed_since`."""
        return len(self.diags)

    def failed_since(self, mark: int) -> bool:
        """Whether an error was recorded after ``mark``."""
        return len(self.diags) > mark


class IrrepsEvaluator:
    """Evaluates irreps expressions in one group, checking every label."""

    def __init__(
        self, group: Group, lets: dict[str, LetValue], rep: Reporter, later: dict[str, Span]
    ) -> None:
        self.group, self.lets, self.rep, self.later = group, lets, rep, later

    def expr(self, e: ast.IrrepsExpr) -> Irreps:
        """Sum of terms."""
        out = Irreps()
        for term in e.terms:
            out = out + self.term(term)
        return out

    def term(self, t: ast.IrrepsTerm) -> Irreps:
        """``[mul x] atom``."""
        if t.mul is not None and t.mul <= 0:
            self.rep.error("a multiplicity must be at least 1", t.span)
        value = self._atoms[type(t.atom)](self, t.atom)
        value = value.scaled(t.mul) if t.mul else value
        largest = max((m.mul for m in value), default=1)
        if largest > limit("MAX_MUL"):
            self.rep.error(f"multiplicity {largest:,} is too large", t.span, advice("MAX_MUL"))
            return Irreps()
        return value

    def atom(self, a: ast.IrrepAtom) -> Irreps:
        """A label such as ``1o``, ``2`` or ``3/2``."""
        ir = self.label(a.text, a.span)
        return Irreps((MulIr(1, ir),)) if ir is not None else Irreps()

    def label(self, text: str, span: Span) -> Irrep | None:
        """Check one label against the group; ``None`` (and an error) when it is malformed."""
        m = _ATOM.fullmatch(text)
        if m is None:
            self.rep.error(f"malformed irrep {text!r}", span)
            return None
        num, den, par = int(m[1]), m[2], m[3]
        if par == "x":
            self.rep.error(f"malformed irrep {text!r}: a multiplicity {text} needs an irrep "
                           f"after it, as in {text}{'0e' if self.group == 'O3' else '0'}", span)
            return None
        j2 = self._spin(text, num, den, span)
        parity = self._parity(text, par, span) if j2 is not None else None
        if j2 is None or parity is None:
            return None
        return Irrep(j2, parity)

    def _spin(self, text: str, num: int, den: str | None, span: Span) -> int | None:
        if (2 * num if den is None else num) > 2 * MAX_SPIN:
            self.rep.error(f"spin {text!r} is too large (at most {MAX_SPIN})", span)
            return None
        if den is None:
            return 2 * num
        if den != "2":
            self.rep.error(f"spin {text!r} is not an integer or a half-integer", span)
        elif num % 2 == 0:
            self.rep.error(f"write spin {text!r} as {num // 2}", span)
        elif self.group != "SU2":
            self.rep.error(
                f"half-integer spin {num}/2 is only allowed in group SU2 "
                f"(this item is in group {self.group})",
                span,
                "add 'group SU2' before it",
            )
        else:
            return num
        return None

    def _parity(self, text: str, par: str, span: Span) -> int | None:
        if self.group != "O3":
            if par:
                self.rep.error(
                    f"parity label {par!r} only exists in group O3 (this item is in group "
                    f"{self.group})",
                    span,
                )
                return None
            return 0
        if not par:
            self.rep.error(f"an O3 label needs a parity: write {text}e or {text}o", span)
            return None
        if par not in "eo":
            self.rep.error(f"unknown parity {par!r} in {text!r}: use e (even) or o (odd)", span)
            return None
        return 1 if par == "e" else -1

    def sh(self, a: ast.ShAtom) -> Irreps:
        """``sh(lmax)``."""
        if a.lmax > MAX_SPIN:
            self.rep.error(f"sh({a.lmax}) is too large (at most sh({MAX_SPIN}))", a.span)
            return Irreps()
        return Irreps.spherical_harmonics(a.lmax, self.group)

    def ref(self, a: ast.IrrepsRef) -> Irreps:
        """A name bound by ``let``."""
        value = self.lets.get(a.name)
        if value is None:
            if a.name in self.later:
                self.rep.error(
                    f"{a.name!r} is used before its definition on line {self.later[a.name].line}",
                    a.span,
                )
            else:
                self.rep.error(f"unknown irreps name {a.name!r}", a.span, _known(self.lets))
            return Irreps()
        if value.group != self.group:
            self.rep.error(
                f"irreps {a.name!r} was defined in group {value.group}, used in {self.group}",
                a.span,
            )
        return value.irreps

    _atoms: ClassVar[dict[type, Callable[[Any, Any], Irreps]]] = {
        ast.IrrepAtom: atom,
        ast.ShAtom: sh,
        ast.IrrepsRef: ref,
        ast.IrrepsExpr: expr,
    }


def _known(names: dict[str, Any]) -> str:
    return "known names: " + (", ".join(sorted(names)) if names else "none")


def evaluate_irreps(
    expr: ast.IrrepsExpr, group: Group, lets: dict[str, LetValue] | None = None
) -> Irreps:
    """Evaluate and check one irreps expression.

    Raises:
        FusionError: listing every malformed label.
    """
    rep = Reporter()
    value = IrrepsEvaluator(group, lets or {}, rep, {}).expr(expr)
    if rep.diags:
        raise FusionError(rep.diags)
    return value

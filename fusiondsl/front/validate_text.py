"""The words of the tree checker's messages: why a label is unreached, what is in scope."""

from __future__ import annotations

from typing import Any

from fusiondsl.ir.diagram import Operand


def why_unreached(group: str, ir: Any, coupled: set[Any] | None = None) -> str:
    """Why no coupling reaches ``ir``: its parity, its size, or (in general) the rule."""
    rule = "a label c of a ⊗ b needs |a - b| ≤ c ≤ a + b"
    rule += " and parity p(c) = p(a)·p(b)" if group == "O3" else ""
    if not coupled:
        return rule
    flipped = [c for c in coupled if c.j2 == ir.j2 and c.p != ir.p]
    if flipped:
        return f"{ir} has the wrong parity: these operands give {flipped[0]} (p(c) = p(a)·p(b))"
    top = max(coupled, key=lambda c: c.j2)
    if ir.j2 > top.j2:
        return f"{ir} is above the largest label these operands reach, {top} (c ≤ a + b)"
    return rule


def labels_text(labels: set[Any]) -> str:
    """``0e + 1e + 2e`` (by spin, then parity), or ``nothing``."""
    return " + ".join(str(c) for c in sorted(labels, key=lambda c: (c.j2, -c.p))) or "nothing"


def known_names(scope: dict[str, Operand]) -> str:
    """``names in scope: a, b`` (for an unknown name)."""
    return "names in scope: " + (", ".join(sorted(scope)) or "none")

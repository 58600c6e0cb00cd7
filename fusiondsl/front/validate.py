"""Syntax tree to checked IR: every coupling rule, every violation reported with its span.

The checker walks the items in order (a ``group`` line applies to what follows), collects
all diagnostics instead of stopping at the first, and raises one :class:`FusionError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fusiondsl.core.diagnostics import FusionError, Span
from fusiondsl.core.irreps import GROUPS, Group, Irreps
from fusiondsl.front import ast
from fusiondsl.front.evaluate import IrrepsEvaluator, LetValue, Reporter, evaluate_irreps
from fusiondsl.front.validate_graph import check_graph
from fusiondsl.front.validate_tree import check_diagram
from fusiondsl.ir.diagram import AnyDiagram, GraphDiagram, GraphEdge


class Checker(Reporter):
    """Walks a module's items in order and builds the checked diagrams."""

    def __init__(self, module: ast.Module) -> None:
        super().__init__()
        self.module = module
        self.group: Group = "O3"
        self.lets: dict[str, LetValue] = {}
        self.later = {i.name: i.span for i in module.items if isinstance(i, ast.Let)}
        self.names: dict[str, Span] = {}

    def run(self) -> tuple[AnyDiagram, ...]:
        """Check every item; diagrams that fail are left out (their errors are recorded)."""
        handlers: dict[type, Callable[[Any], AnyDiagram | None]] = {
            ast.GroupStmt: self.group_stmt,
            ast.Let: self.let,
            ast.DiagramDecl: self.diagram,
            ast.GraphDecl: self.graph,
        }
        out = [handlers[type(item)](item) for item in self.module.items]
        return tuple(d for d in out if d is not None)

    def irreps(self, expr: ast.IrrepsExpr) -> Irreps | None:
        """Evaluate in the current group; ``None`` if it had errors."""
        mark = self.mark()
        value = IrrepsEvaluator(self.group, self.lets, self, self.later).expr(expr)
        return None if self.failed_since(mark) else value

    def group_stmt(self, item: ast.GroupStmt) -> None:
        """``group NAME``."""
        if item.name not in GROUPS:
            self.error(f"unknown group {item.name!r}: use one of {', '.join(GROUPS)}", item.span)
            return
        self.group = item.name  # type: ignore[assignment]

    def let(self, item: ast.Let) -> None:
        """``let NAME = irreps``."""
        if item.name in self.lets:
            first = self.lets[item.name].span
            self.error(f"{item.name!r} is already defined on line {first.line}", item.span)
            return
        value = self.irreps(item.value)
        self.later.pop(item.name, None)
        if value is not None:
            self.lets[item.name] = LetValue(value, self.group, item.span)

    def _declare(self, name: str, span: Span) -> bool:
        if name in self.names:
            self.error(
                f"a diagram named {name!r} is already defined on line {self.names[name].line}",
                span,
            )
            return False
        self.names[name] = span
        return True

    def diagram(self, item: ast.DiagramDecl) -> AnyDiagram | None:
        """A tree diagram (see :mod:`fusiondsl.front.validate_tree`)."""
        fresh = self._declare(item.name, item.span)
        result = check_diagram(self, item)
        return result if fresh else None

    def graph(self, item: ast.GraphDecl) -> AnyDiagram | None:
        """A graph diagram (see :mod:`fusiondsl.front.validate_graph`)."""
        fresh = self._declare(item.name, item.span)
        result = check_graph(self, item)
        return result if fresh else None


def validate(module: ast.Module) -> tuple[AnyDiagram, ...]:
    """Check a parsed module and build its diagrams.

    Raises:
        FusionError: every violation in the file, sorted by position.
    """
    checker = Checker(module)
    diagrams = checker.run()
    if checker.diags:
        raise FusionError(checker.diags, module.source, module.filename)
    return diagrams


__all__ = ["Checker", "GraphDiagram", "GraphEdge", "LetValue", "evaluate_irreps", "validate"]

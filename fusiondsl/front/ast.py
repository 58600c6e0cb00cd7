"""The syntax tree: what the user wrote, every node with its source span.

Nothing here is checked yet; :mod:`fusiondsl.front.validate` turns it into the graph IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fusiondsl.core.diagnostics import Span


def _span() -> Span:
    """A span field: kept for messages, ignored by ``==``."""
    return field(default=Span(0, 0), compare=False, repr=False)



# ---- irreps expressions ----------------------------------------------------------------
@dataclass(frozen=True)
class IrrepAtom:
    """A single label as written: ``0e``, ``1o``, ``2``, ``1/2``."""

    text: str
    span: Span = _span()


@dataclass(frozen=True)
class ShAtom:
    """``sh(lmax)``: the spherical-harmonics irreps up to ``lmax``."""

    lmax: int
    span: Span = _span()


@dataclass(frozen=True)
class IrrepsRef:
    """A name bound by ``let``."""

    name: str
    span: Span = _span()


@dataclass(frozen=True)
class IrrepsTerm:
    """``[MUL x] atom``; the atom may be a parenthesised sum."""

    mul: int | None
    atom: IrrepAtom | ShAtom | IrrepsRef | IrrepsExpr
    span: Span = _span()


@dataclass(frozen=True)
class IrrepsExpr:
    """``term + term + …``."""

    terms: tuple[IrrepsTerm, ...]
    span: Span = _span()


# ---- statements ------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupStmt:
    """``group O3|SO3|SU2``: applies to every item after it."""

    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Let:
    """``let NAME = irreps``."""

    name: str
    value: IrrepsExpr
    span: Span = _span()


@dataclass(frozen=True)
class Ref:
    """A use of a leg or result name, optionally indexed ``h[i]`` / ``h[j]``."""

    name: str
    index: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Weights:
    """``weights MODE [external]``."""

    mode: str
    external: bool = False
    span: Span = _span()


@dataclass(frozen=True)
class Fuse:
    """``fuse(a, b, …)`` (ordered) or ``fuse{a, b, …}`` (order left to the compiler)."""

    args: tuple[Expr, ...]
    ordered: bool
    filters: tuple[IrrepsExpr, ...] = ()
    weights: tuple[Weights, ...] = ()
    gates: tuple[Ref, ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class SumJ:
    """``sum_j fuse…``: an edge term summed over the neighbours j of each centre i."""

    body: Fuse
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """``name(args)``: ``linear(…)``, ``cat(…)``."""

    func: str
    args: tuple[Expr, ...]
    span: Span = _span()


Expr = Ref | Fuse | SumJ | Call


@dataclass(frozen=True)
class Assign:
    """``NAME = expr`` inside a diagram body."""

    target: str
    value: Expr
    span: Span = _span()


@dataclass(frozen=True)
class LegDecl:
    """An input leg ``name: [node|edge] irreps``."""

    name: str
    domain: str | None
    irreps: IrrepsExpr
    span: Span = _span()


@dataclass(frozen=True)
class DiagramDecl:
    """``diagram NAME(legs) -> out: irreps { assignments }``."""

    name: str
    legs: tuple[LegDecl, ...]
    out_name: str
    out_irreps: IrrepsExpr
    body: tuple[Assign, ...]
    span: Span = _span()
    out_span: Span = _span()


@dataclass(frozen=True)
class EdgeDecl:
    """``edge NAME: irreps`` (graph form), or an open leg ``in``/``out``."""

    name: str
    irreps: IrrepsExpr
    kind: str = "edge"
    span: Span = _span()


@dataclass(frozen=True)
class VertexDecl:
    """``vertex (e1, e2, e3)``: one coupling; edges in coupling order."""

    edges: tuple[Ref, ...]
    span: Span = _span()


@dataclass(frozen=True)
class GraphDecl:
    """``graph NAME { edge…; vertex…; in…; out… }``."""

    name: str
    edges: tuple[EdgeDecl, ...]
    vertices: tuple[VertexDecl, ...]
    span: Span = _span()


Item = GroupStmt | Let | DiagramDecl | GraphDecl


@dataclass(frozen=True)
class Module:
    """A whole ``.fd`` file."""

    items: tuple[Item, ...]
    source: str = field(default="", compare=False, repr=False)
    filename: str = field(default="<string>", compare=False)

"""Checks for graph-form diagrams: every edge joins two slots, every vertex couples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from fusiondsl.core.irreps import Irrep
from fusiondsl.front import ast
from fusiondsl.ir.diagram import GraphDiagram, GraphEdge

if TYPE_CHECKING:
    from fusiondsl.front.validate import Checker

SLOTS = {"edge": 2, "in": 1, "out": 1}


def vertex_problem(a: Irrep, b: Irrep, c: Irrep) -> str | None:
    """Why three labels cannot meet at one vertex, or ``None`` when they can."""
    names = f"{a}, {b}, {c}"
    if (a.j2 + b.j2 + c.j2) % 2:
        return f"spins {names} cannot meet at a vertex: j1 + j2 + j3 must be an integer"
    if not abs(a.j2 - b.j2) <= c.j2 <= a.j2 + b.j2:
        return f"spins {names} break the triangle rule |j1 - j2| ≤ j3 ≤ j1 + j2"
    if a.p * b.p * c.p == -1:
        return f"parities of {names} multiply to odd: an O3 vertex needs an even product"
    return None


def _edges(chk: Checker, decl: ast.GraphDecl) -> dict[str, GraphEdge]:
    edges: dict[str, GraphEdge] = {}
    for e in decl.edges:
        irreps = chk.irreps(e.irreps)
        if e.name in edges:
            chk.error(f"edge {e.name!r} is already declared on line {edges[e.name].span.line}",
                      e.span)
            continue
        if irreps is None:
            continue
        if len(irreps) != 1:
            chk.error(f"a graph edge carries one label, {e.name!r} has {irreps}", e.irreps.span)
            continue
        mul, ir = irreps[0]
        if mul != 1 and e.kind == "edge":
            chk.error(f"internal edge {e.name!r} cannot have a multiplicity ({irreps})",
                      e.irreps.span, "multiplicities (channels) belong on open legs in/out")
            continue
        edges[e.name] = GraphEdge(e.name, ir, mul, e.kind, e.span)  # type: ignore[arg-type]
    return edges


def _vertex_edges(chk: Checker, v: ast.VertexDecl, edges: dict[str, GraphEdge],
                  declared: set[str]) -> list[str]:
    """The known edges of one vertex; unknown or indexed ones are reported."""
    names = []
    for r in v.edges:
        if r.index is not None:
            chk.error("graph edges are not indexed", r.span)
        if r.name in edges:
            names.append(r.name)
        elif r.name not in declared:  # a declared edge that failed was reported already
            chk.error(f"unknown edge {r.name!r}", r.span,
                      "declare it with 'edge NAME: label' (or 'in'/'out')")
    return names


def _vertices(chk: Checker, decl: ast.GraphDecl, edges: dict[str, GraphEdge]) -> list:
    slots: dict[str, int] = dict.fromkeys(edges, 0)
    declared = {e.name for e in decl.edges}
    vertices = []
    for v in decl.vertices:
        if len(v.edges) != 3:
            chk.error(f"a vertex couples exactly three edges, this one has {len(v.edges)}", v.span)
        names = _vertex_edges(chk, v, edges, declared)
        for name in names:
            slots[name] += 1
        if len(names) == 3 == len(v.edges):
            problem = vertex_problem(*(edges[n].ir for n in names))
            if problem:
                chk.error(problem, v.span)
            vertices.append(tuple(names))
    for name, count in slots.items():
        e = edges[name]
        if count != SLOTS[e.kind]:
            what = "an internal edge" if e.kind == "edge" else f"an open '{e.kind}' leg"
            chk.error(f"edge {name!r} meets {count} vertex slot(s); {what} meets exactly "
                      f"{SLOTS[e.kind]}", e.span)
    return vertices


def check_graph(chk: Checker, decl: ast.GraphDecl) -> GraphDiagram | None:
    """Check one graph diagram; ``None`` (errors recorded on ``chk``) when it fails."""
    mark = chk.mark()
    edges = _edges(chk, decl)
    vertices = _vertices(chk, decl, edges)
    if not decl.vertices:
        chk.error(f"graph {decl.name!r} has no vertex", decl.span)
    outs = [e for e in edges.values() if e.kind == "out"]
    if len(outs) > 1:
        chk.error("a graph has at most one 'out' leg", outs[1].span)
    muls = {e.mul for e in edges.values()} - {1}
    if len(muls) > 1:
        chk.error("open legs couple channel by channel: multiplicities must agree or be 1",
                  decl.span)
    ins = [e.mul for e in edges.values() if e.kind == "in"]
    if len(outs) == 1 and len(muls) <= 1 and outs[0].mul != max(ins, default=1):
        chk.error(f"out leg {outs[0].name!r} has {outs[0].mul} channel(s) but the in legs give "
                  f"{max(ins, default=1)}", outs[0].span,
                  "the graph couples channel by channel: the out leg has the in legs' channels")
    if chk.failed_since(mark):
        return None
    g = GraphDiagram(decl.name, chk.group, tuple(edges.values()), tuple(vertices), decl.span)
    if not nx.is_connected(g.graph()):
        parts = nx.number_connected_components(g.graph())
        chk.error(f"graph {decl.name!r} is not connected ({parts} separate parts)", decl.span)
        return None
    return g

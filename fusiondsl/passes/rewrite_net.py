"""The working form of graph rewriting: vertices with ids and explicitly oriented edges.

A :class:`~fusiondsl.ir.diagram.GraphDiagram` orients each SU2 edge implicitly (its metric runs from
the first listed slot to the second). Rewrites remove and merge vertices, which would change
that implicit order, so they work on a :class:`Net` that stores each internal edge's tail
(the vertex whose slot the 1j metric starts from) and convert back at the end, paying
``(-1)^(2j)`` per edge whose stored and implicit orientations differ. In O3/SO3 every phase
here is 1 or ``(-1)^(l1 + l2 + l3)``, the same rules with integer spins (checked in tests).

Elementary phases (SU2 3j symbols, and e3nn's real wigner_3j alike):

- reversing an edge: ``g^T = (-1)^(2j) g``;
- an odd permutation of a vertex's slots: ``(-1)^(j1 + j2 + j3)``; cyclic ones: 1;
- ``g g = (-1)^(2j) 1``, so a chain ``X -> (local g) -> Y`` of three metrics is ``(-1)^(2j) g``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from fusiondsl.ir.diagram import GraphDiagram, GraphEdge

Slots = tuple[str, str, str]


@dataclass(frozen=True)
class Net:
    """A graph diagram being rewritten: vertex ids, slots, and the tail of each internal edge.

    Attributes:
        name, group: those of the source graph.
        edges: every live edge (open legs included), in the source's order.
        vertices: ``(id, slots)`` in the order they will be printed.
        tails: ``(edge name, tail vertex id)`` for every internal edge (a loop's tail is its
            vertex, and its metric runs from its first slot to its second).
    """

    name: str
    group: str
    edges: tuple[GraphEdge, ...]
    vertices: tuple[tuple[int, Slots], ...]
    tails: tuple[tuple[str, int], ...]

    def edge(self, name: str) -> GraphEdge:
        """Look up a live edge."""
        return next(e for e in self.edges if e.name == name)

    def slots(self, vid: int) -> Slots:
        """The slots of a vertex."""
        return dict(self.vertices)[vid]

    def tail(self, name: str) -> int | None:
        """The tail vertex of an internal edge (``None`` for an open leg)."""
        return dict(self.tails).get(name)

    def ends(self, name: str) -> list[int]:
        """The vertex ids holding a slot of this edge (twice for a loop)."""
        return [vid for vid, s in self.vertices for x in s if x == name]


def from_graph(d: GraphDiagram) -> Net:
    """The working form of a checked graph: ids in order, implicit orientations made explicit."""
    vertices = tuple((k, tuple(v)) for k, v in enumerate(d.vertices))
    tails: dict[str, int] = {}
    for k, v in vertices:
        for name in v:
            tails.setdefault(name, k)
    internal = {e.name for e in d.edges if e.kind == "edge"}
    return Net(d.name, d.group, d.edges, vertices,  # type: ignore[arg-type]
               tuple((n, t) for n, t in tails.items() if n in internal))


def to_graph(net: Net) -> tuple[GraphDiagram, sympy.Expr]:
    """Back to a graph diagram, and the phase that its implicit orientations cost."""
    back = from_graph(GraphDiagram(net.name, net.group, net.edges,  # type: ignore[arg-type]
                                   tuple(s for _, s in net.vertices)))
    ids = [vid for vid, _ in net.vertices]
    phase = sympy.S.One
    for name, tail in net.tails:
        if ids[back.tail(name)] != tail:  # type: ignore[index]
            phase *= flip_phase(net, name)
    return GraphDiagram(net.name, net.group, net.edges,  # type: ignore[arg-type]
                        tuple(s for _, s in net.vertices)), phase


def spin(net: Net, name: str) -> sympy.Rational:
    """The spin j of an edge, exactly."""
    return sympy.Rational(net.edge(name).ir.j2, 2)


def flip_phase(net: Net, name: str) -> sympy.Expr:
    """``(-1)^(2j)``: the cost of reversing an SU2 edge (1 for integer spins)."""
    return sympy.S.NegativeOne ** (net.edge(name).ir.j2 % 2)


def orient(net: Net, name: str, tail: int) -> tuple[Net, sympy.Expr]:
    """Make ``tail`` the tail of an internal edge; open legs are left alone."""
    current = net.tail(name)
    if current is None or current == tail:
        return net, sympy.S.One
    tails = tuple((n, tail if n == name else t) for n, t in net.tails)
    return replace(net, tails=tails), flip_phase(net, name)


def permutation_phase(net: Net, have: Slots, want: Slots) -> sympy.Expr:
    """Phase of reordering a vertex's (distinct) slots: ``(-1)^(j1+j2+j3)`` if odd."""
    perm = [have.index(x) for x in want]
    inversions = sum(perm[i] > perm[k] for i in range(3) for k in range(i + 1, 3))
    if inversions % 2 == 0:
        return sympy.S.One
    total = sum(net.edge(x).ir.j2 for x in have) // 2
    return sympy.S.NegativeOne ** (total % 2)


def reorder(net: Net, vid: int, want: Slots) -> tuple[Net, sympy.Expr]:
    """Give a vertex the slot order ``want`` (a permutation of its slots), with its phase."""
    have = net.slots(vid)
    phase = permutation_phase(net, have, want)
    vertices = tuple((k, want if k == vid else s) for k, s in net.vertices)
    return replace(net, vertices=vertices), phase


def drop(net: Net, vids: set[int], edges: set[str]) -> Net:
    """Remove vertices and edges (their other slots are rewired by the caller)."""
    return replace(
        net,
        edges=tuple(e for e in net.edges if e.name not in edges),
        vertices=tuple((k, s) for k, s in net.vertices if k not in vids),
        tails=tuple((n, t) for n, t in net.tails if n not in edges),
    )


def splice(net: Net, c: str, d: str, gamma: int, local: set[int]) -> tuple[Net, sympy.Expr]:
    """Join edges ``c`` and ``d`` through a removed two-slot piece ``K g[γ, δ]`` (K excluded).

    ``c`` meets the piece at γ, ``d`` at δ; the pieces' vertices ``local`` are already gone
    from ``net`` but still name the tails; ``gamma`` is the one holding γ. ``c`` is turned
    to point into the piece and ``d`` out of it; then ``g_c g g_d = (-1)^(2j) g`` (also with
    an open leg at either end), so the merged edge runs from c's far end to d's far end.
    When ``c == d`` the loop closes: ``sum g[γ, δ] g[γ, δ] = 2j + 1`` for an edge from γ to δ.
    """
    if c == d:
        tail = net.tail(c)
        edge = net.edge(c)
        phase = sympy.S.One if tail == gamma else flip_phase(net, c)
        return drop(net, set(), {c}), phase * (edge.ir.j2 + 1)
    far_c, far_d = net.ends(c), net.ends(d)
    phase = sympy.S.One
    if net.tail(c) is not None and net.tail(c) in local:
        phase *= flip_phase(net, c)
    if net.tail(d) is not None and net.tail(d) not in local:
        phase *= flip_phase(net, d)
    phase *= flip_phase(net, c)  # g g g = (-1)^(2j) g
    keep, gone = (d, c) if net.edge(d).kind != "edge" else (c, d)
    merged = net.edge(keep)
    vertices = tuple((k, tuple(keep if x == gone else x for x in s)) for k, s in net.vertices)
    tails = [(n, t) for n, t in net.tails if n not in (c, d)]
    if merged.kind == "edge":
        x, y = far_c[0], far_d[0]
        tails.append((keep, x))
        if x == y and net.slots(x).index(c) > net.slots(x).index(d):
            phase *= flip_phase(net, c)  # a loop's metric runs from its first slot
    out = replace(net, edges=tuple(e for e in net.edges if e.name != gone),
                  vertices=vertices, tails=tuple(tails))  # type: ignore[arg-type]
    return out, phase

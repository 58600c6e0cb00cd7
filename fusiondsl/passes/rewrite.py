"""Diagram algebra: simplify graph diagrams with the graphical rules of recoupling theory.

Every pass is a pure function of a checked :class:`~fusiondsl.ir.diagram.GraphDiagram`. The result
:class:`Simplified` keeps the identity ``contract(before) == factor * contract(after)`` with an
exact sympy ``factor``; a closed diagram that reduces to nothing is evaluated exactly, with no
tensor touched. Rules, tried in this order until none applies:

- **bubble**: two vertices joined by two edges become ``δ`` on the two other edges, times
  ``1/(2c+1)`` (SU2: ``(-1)^(2c)/(2c+1)`` with the orientation of :mod:`rewrite_net`); two
  vertices joined by three edges (the theta graph) are ``1``;
- **zero-line**: a ``j = 0`` edge goes, its two vertices becoming deltas, times
  ``1/sqrt((2a+1)(2c+1))`` (SU2: times ``(-1)^(2a+2c)``);
- **triangle**: a three-cycle becomes one vertex on its three outer edges, times a 6j symbol
  (SU2: times ``(-1)^(2 e31)``);
- **9j**: a closed K3,3 component is the 9j symbol of its rows and columns.

The phases are derived in :mod:`fusiondsl.passes.rewrite_net` and docs/simplify.md and checked in
tests/test_rewrite.py against contracting the unsimplified graph.

>>> from fusiondsl import loads
>>> g = loads('''group SO3
... graph t {
...     edge a: 1, b: 1, c: 1, d: 1, e: 1, f: 1
...     vertex (a, b, c)
...     vertex (a, e, f)
...     vertex (d, b, f)
...     vertex (d, e, c)
... }''').diagrams["t"]
>>> evaluate_exact(g)
1/6
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import sympy

from fusiondsl.core import nj
from fusiondsl.ir.diagram import GraphDiagram
from fusiondsl.passes.rewrite_net import (
    Net,
    drop,
    flip_phase,
    from_graph,
    orient,
    reorder,
    splice,
    to_graph,
)


@dataclass(frozen=True)
class Rewrite:
    """One applied rule: its name, the edges it consumed or joined, its exact factor."""

    rule: str
    where: tuple[str, ...]
    factor: sympy.Expr

    def __str__(self) -> str:
        return f"{self.rule}({', '.join(self.where)}): × {self.factor}"


@dataclass(frozen=True)
class Simplified:
    """``contract(before) == factor * contract(after)``; ``after`` may have no vertex left."""

    before: GraphDiagram
    after: GraphDiagram
    factor: sympy.Expr
    steps: tuple[Rewrite, ...]

    @property
    def closed(self) -> bool:
        """Whether nothing is left to contract (the factor is the diagram's value)."""
        return not self.after.vertices and not self.after.edges


Step = tuple[Net, sympy.Expr, Rewrite]
Rule = Callable[[Net], "Step | None"]


def _plain(net: Net, name: str) -> bool:
    """An internal edge of one channel: the rules may consume it."""
    e = net.edge(name)
    return e.kind == "edge" and e.mul == 1


def _loopless(net: Net, vid: int) -> bool:
    slots = net.slots(vid)
    return len(set(slots)) == 3


def _shared(net: Net, u: int, v: int) -> list[str]:
    """Internal single-channel edges joining vertices u and v, in u's slot order."""
    return [x for x in net.slots(u) if x in net.slots(v) and _plain(net, x)]


def _pairs(net: Net) -> list[tuple[int, int]]:
    ids = [vid for vid, _ in net.vertices if _loopless(net, vid)]
    return list(itertools.combinations(ids, 2))


def _rest(net: Net, vid: int, used: list[str]) -> str:
    return next(x for x in net.slots(vid) if x not in used)


def _open(net: Net, name: str) -> bool:
    return net.edge(name).kind != "edge"


def bubble(net: Net) -> Step | None:
    """Two vertices joined by two (or three) edges: a delta times ``1/(2c+1)``."""
    for u, v in _pairs(net):
        ab = _shared(net, u, v)
        if len(ab) < 2:
            continue
        a, b = ab[:2]
        c, d = _rest(net, u, [a, b]), _rest(net, v, [a, b])
        if _open(net, c) and _open(net, d):
            continue
        ic, id_ = net.edge(c).ir, net.edge(d).ir
        if ic.j2 != id_.j2:  # Schur: different spins give zero
            return net, sympy.S.Zero, Rewrite("bubble", (a, b, c, d), sympy.S.Zero)
        if ic != id_ or any(net.edge(x).mul > 1 and not _open(net, x) for x in (c, d)):
            continue
        return _apply_bubble(net, u, v, (a, b, c, d))
    return None


def _apply_bubble(net: Net, u: int, v: int, names: tuple[str, str, str, str]) -> Step:
    a, b, c, d = names
    dim = net.edge(c).ir.dim
    phase = sympy.S.One
    for vid, slots in ((u, (a, b, c)), (v, (a, b, d))):
        net, p = reorder(net, vid, slots)
        phase *= p
    for x in (a, b):
        net, p = orient(net, x, u)
        phase *= p
    net = drop(net, {u, v}, {a, b})
    net, p = splice(net, c, d, u, {u, v})
    factor = phase * p / dim
    where = (a, b, c) if c == d else (a, b, c, d)
    return net, factor, Rewrite("theta" if c == d else "bubble", where, factor)


def zero_line(net: Net) -> Step | None:
    """A ``j = 0`` edge between two vertices: both become deltas, ``1/sqrt((2a+1)(2c+1))``."""
    for z in (e.name for e in net.edges if e.ir.j2 == 0 and _plain(net, e.name)):
        ends = net.ends(z)
        if len(set(ends)) != 2 or not all(_loopless(net, v) for v in ends):
            continue
        u, v = ends
        if _shared(net, u, v) != [z]:
            continue
        pairs = [[x for x in net.slots(w) if x != z] for w in (u, v)]
        if any(net.edge(p).ir != net.edge(q).ir or (_open(net, p) and _open(net, q))
               or any(net.edge(x).mul > 1 and not _open(net, x) for x in (p, q))
               for p, q in pairs):
            continue
        return _apply_zero_line(net, z, (u, v), pairs)
    return None


def _apply_zero_line(net: Net, z: str, ends: tuple[int, int], pairs: list[list[str]]) -> Step:
    phase, dims = sympy.S.One, 1
    for vid, (p, q) in zip(ends, pairs):
        net, ph = reorder(net, vid, (z, p, q))
        phase *= ph
        dims *= net.edge(p).ir.dim
    net = drop(net, set(ends), {z})
    for vid, (p, q) in zip(ends, pairs):
        net, ph = splice(net, p, q, vid, set(ends))
        phase *= ph
    factor = phase / sympy.sqrt(dims)
    return net, factor, Rewrite("zero-line", (z, *pairs[0], *pairs[1]), factor)


def triangle(net: Net) -> Step | None:
    """A three-cycle becomes one vertex on its outer edges times ``(-1)^(2 e31) {6j}``."""
    for u, v, w in itertools.combinations([vid for vid, _ in net.vertices], 3):
        sides = [_shared(net, x, y) for x, y in ((u, v), (v, w), (w, u))]
        if any(len(s) != 1 for s in sides) or not all(_loopless(net, x) for x in (u, v, w)):
            continue
        e12, e23, e31 = (s[0] for s in sides)
        outer = (_rest(net, u, [e12, e31]), _rest(net, v, [e12, e23]), _rest(net, w, [e23, e31]))
        if len(set(outer)) == 3:
            return _apply_triangle(net, (u, v, w), (e12, e23, e31), outer)
    return None


def _apply_triangle(
    net: Net, ids: tuple[int, int, int], inner: tuple[str, str, str], outer: tuple[str, str, str]
) -> Step:
    (u, v, w), (e12, e23, e31), (o1, o2, o3) = ids, inner, outer
    phase = flip_phase(net, e31)
    for vid, slots in ((u, (o1, e31, e12)), (v, (e23, o2, e12)), (w, (e23, e31, o3))):
        net, p = reorder(net, vid, slots)
        phase *= p
    for x, tail in ((e12, u), (e23, v), (e31, u)):
        net, p = orient(net, x, tail)
        phase *= p
    j2 = [net.edge(x).ir.j2 for x in (o1, o2, o3, e23, e31, e12)]
    factor = phase * nj.wigner_6j(*j2)
    new = min(ids)
    tails = tuple((n, new if t in ids else t) for n, t in net.tails)
    net = Net(net.name, net.group, net.edges,
              tuple((new, (o1, o2, o3)) if k == new else (k, s) for k, s in net.vertices),
              tails)
    net = drop(net, set(ids) - {new}, {e12, e23, e31})
    return net, factor, Rewrite("triangle", (e12, e23, e31), factor)


def ninej(net: Net) -> Step | None:
    """A closed K3,3 component is a 9j symbol (rows: one side's vertices, in slot order)."""
    g = nx.MultiGraph()
    g.add_nodes_from(vid for vid, _ in net.vertices)
    for e in net.edges:
        ends = net.ends(e.name)
        if e.kind == "edge" and len(ends) == 2:
            g.add_edge(*ends, name=e.name)
    for part in nx.connected_components(g):
        sub = nx.Graph(g.subgraph(part))
        if len(part) == 6 and g.subgraph(part).number_of_edges() == 9 and \
                sub.number_of_edges() == 9 and nx.is_bipartite(sub) and \
                all(_plain(net, x) for vid in part for x in net.slots(vid)):
            return _apply_ninej(net, sub)
    return None


def _apply_ninej(net: Net, sub: nx.Graph) -> Step:
    r0 = min(sub.nodes)
    cols = [next(v for v in sub[r0] if sub[r0][v]["name"] == x) for x in net.slots(r0)]
    rows = sorted(set(sub.nodes) - set(cols))
    grid = [[sub[r][c]["name"] for c in cols] for r in rows]
    phase = sympy.S.One
    for r, names in zip(rows, grid):
        net, p = reorder(net, r, tuple(names))  # type: ignore[arg-type]
        phase *= p
    for k, c in enumerate(cols):
        net, p = reorder(net, c, tuple(grid[i][k] for i in range(3)))  # type: ignore[arg-type]
        phase *= p
    for r, names in zip(rows, grid):
        for x in names:
            net, p = orient(net, x, r)
            phase *= p
    factor = phase * nj.wigner_9j(*(net.edge(x).ir.j2 for row in grid for x in row))
    net = drop(net, set(rows) | set(cols), {x for row in grid for x in row})
    return net, factor, Rewrite("9j", tuple(x for row in grid for x in row), factor)


RULES: tuple[tuple[str, Rule], ...] = (
    ("bubble", bubble),
    ("zero-line", zero_line),
    ("triangle", triangle),
    ("9j", ninej),
)
"""The rules in the order they are tried; the first that matches is applied, then again."""


def simplify_graph(d: GraphDiagram, max_steps: int = 1000) -> Simplified:
    """Apply the rules until none matches (or the factor is zero).

    Returns:
        ``before``, ``after``, the exact ``factor`` and the rules applied, in order.
    """
    net, factor, steps = from_graph(d), sympy.S.One, []
    for _ in range(max_steps):
        step = next((s for _, rule in RULES if (s := rule(net)) is not None), None)
        if step is None:
            break
        net, f, rewrite = step
        factor, steps = factor * f, [*steps, rewrite]
        if f == 0:
            break
    after, phase = to_graph(net)
    if phase != 1:
        steps.append(Rewrite("orientation", (), phase))
    return Simplified(d, after, sympy.nsimplify(factor * phase), tuple(steps))


def evaluate_exact(d: GraphDiagram) -> sympy.Expr:
    """The exact value of a closed graph (products of 6j, 9j, bubbles), with no contraction.

    Raises:
        ValueError: when the graph has open legs or the rules leave vertices behind.
    """
    if any(e.kind != "edge" for e in d.edges):
        raise ValueError(f"graph {d.name!r} has open legs: it is a layer, not a number")
    result = simplify_graph(d)
    if result.factor != 0 and not result.closed:
        raise ValueError(f"graph {d.name!r} does not reduce to 6j/9j symbols and bubbles; left:\n"
                         + result.after.to_text())
    return result.factor

"""Layout of diagram pictures: a checked diagram becomes a :class:`Scene`, no matplotlib.

A scene is plain marks and lines in data coordinates. Tree diagrams read left to right: input
legs at depth 0, each coupling vertex at one more than the deepest of its inputs, the output
last. (Graph diagrams are laid out by :mod:`fusiondsl.cli.draw_graph`; :mod:`fusiondsl.cli.draw`
renders either.)

>>> from fusiondsl import loads
>>> d = loads("diagram d(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) }").diagram()
>>> [(m.kind, m.xy) for m in tree_scene(d).marks]
[('leg', (0.0, 0.0)), ('leg', (0.0, -1.2)), ('vertex', (2.6, -0.6)), ('out', (5.2, -0.6))]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import networkx as nx

from fusiondsl.core.irreps import Group, Irreps
from fusiondsl.ir.diagram import Diagram, FuseNode, Operand

DX, DY = 2.6, 1.2  # tree layout: layer spacing and minimum gap within a layer
STUB = 1.1  # graph layout: length of an open leg's stub
XY = tuple[float, float]


@dataclass(frozen=True)
class Mark:
    """One thing drawn at a point: a leg, a coupling vertex, a box (cat/linear), an output."""

    xy: XY
    kind: Literal["leg", "vertex", "box", "out", "end"]
    text: str
    angle: float = 90.0  # where a vertex's text goes, in degrees


@dataclass(frozen=True)
class Line:
    """One edge: a line or an arc (``rad`` as matplotlib's ``arc3``), labelled at ``t``.

    A ``loop`` (an edge from a vertex to itself) is the circle with diameter from ``a`` to ``b``.
    """

    a: XY
    b: XY
    label: str
    rad: float = 0.0
    style: Literal["plain", "loop", "gate", "in", "out"] = "plain"
    t: float = 0.5


@dataclass(frozen=True)
class Scene:
    """A picture in data coordinates, ready to render."""

    title: str
    marks: tuple[Mark, ...]
    lines: tuple[Line, ...]



# ---- labels ------------------------------------------------------------------------------


def short_irreps(text: str, group: Group) -> str:
    """A compact irreps label: sorted, merged, a common multiplicity factored out.

    >>> short_irreps("16x0e+16x1o+16x2e", "O3"), short_irreps("1x1/2", "SU2")
    ('16x(0e+1o+2e)', '1/2')
    >>> short_irreps("4x1o+8x0e+2x1o", "O3")
    '8x0e+6x1o'
    """
    if not text:
        return ""
    irreps = Irreps.parse(text, group).sort().simplify()
    muls = {e.mul for e in irreps}
    if len(muls) == 1:
        mul, labels = muls.pop(), [str(e.ir) for e in irreps]
        inner = "+".join(labels)
        return inner if mul == 1 else f"{mul}x{inner}" if len(labels) == 1 else f"{mul}x({inner})"
    return "+".join(str(e) if e.mul > 1 else str(e.ir) for e in irreps)


def wrap(text: str, width: int = 22) -> str:
    """Break a long irreps label at ``+`` signs so no line is much longer than ``width``."""
    lines: list[str] = []
    for term in text.split("+"):
        if lines and len(lines[-1]) + len(term) + 1 <= width:
            lines[-1] += "+" + term
        else:
            lines.append(("+" if lines else "") + term)
    return "\n".join(lines)


# ---- tree diagrams -----------------------------------------------------------------------


def tree_scene(d: Diagram) -> Scene:
    """Lay a tree diagram out in layers, legs on the left and the output on the right."""
    g = _tree_graph(d)
    pos = layered_positions(g, [("leg", leg.name) for leg in d.legs])
    marks = [_tree_mark(d, n, data, pos[n]) for n, data in g.nodes(data=True)]
    chords = [(u, v) for u, v in g.edges() if g.number_of_edges(u, v) == 1]
    lines = []
    for u, v, key, data in g.edges(keys=True, data=True):
        count = g.number_of_edges(u, v)
        rad = parallel_rad(key, count) if count > 1 else best_rad(u, v, pos, chords)
        lines.append(Line(pos[u], pos[v], data["label"], rad, data["style"]))
    return finish(f"{d.name}  ({d.group})", marks, lines)


def _results(d: Diagram) -> dict[int, tuple]:
    """The graph node that carries each IR node's result (as :meth:`Diagram.graph` builds it)."""
    result: dict[int, tuple] = {}
    for k, node in enumerate(d.nodes):
        if isinstance(node, FuseNode):
            first = _tail(d, result, node.args[0])
            result[k] = ("vertex", k, len(node.args) - 2) if len(node.args) > 1 else first
        else:
            result[k] = ("vertex", k, 0)
    return result


def _tail(d: Diagram, result: dict[int, tuple], op: Operand) -> tuple:
    return ("leg", d.legs[op.index].name) if op.kind == "leg" else result[op.index]


def _feeds(d: Diagram, result: dict[int, tuple]) -> dict[tuple, list[Operand | None]]:
    """For each (source, vertex) pair, the operands on its edges in insertion (key) order.

    ``None`` stands for the running result of a many-legged ``fuse``, fed to its next vertex.
    """
    feeds: dict[tuple, list[Operand | None]] = {}

    def add(src: tuple, vid: tuple, op: Operand | None) -> None:
        feeds.setdefault((src, vid), []).append(op)

    for k, node in enumerate(d.nodes):
        if not isinstance(node, FuseNode):
            for op in node.args:
                add(_tail(d, result, op), ("vertex", k, 0), op)
            continue
        for s, op in enumerate(node.args[1:]):
            vid = ("vertex", k, s)
            if s == 0:
                add(_tail(d, result, node.args[0]), vid, node.args[0])
            else:
                add(("vertex", k, s - 1), vid, None)
            add(_tail(d, result, op), vid, op)
    return feeds


def _tree_graph(d: Diagram) -> nx.MultiDiGraph:
    """The diagram's graph with drawing labels on edges and gate edges added (dashed)."""
    base, result = d.graph(), _results(d)
    feeds = _feeds(d, result)
    g = nx.MultiDiGraph()
    g.add_nodes_from((n, dict(data)) for n, data in base.nodes(data=True))
    for u, v, key, data in base.edges(keys=True, data=True):
        ops = feeds.get((u, v), [])
        op = ops[key] if key < len(ops) else None
        label = wrap(short_irreps(data["irreps"], d.group))
        if op is not None and op.at:
            label = f"{d.operand_name(op)}: {label}"
        g.add_edge(u, v, label=label, style="plain")
    for k, node in enumerate(d.nodes):
        for gate in getattr(node, "gates", ()):
            g.add_edge(_tail(d, result, gate), result[k], label=f"* {d.operand_name(gate)}",
                       style="gate")
    return g


def _tree_mark(d: Diagram, n: tuple, data: dict, xy: XY) -> Mark:
    """A leg, box or output mark; a coupling vertex says its result, weights and modifiers."""
    kind = data["kind"]
    if kind == "leg":
        leg = next(leg for leg in d.legs if leg.name == n[1])
        return Mark(xy, "leg", leg.name + (" (edge)" if leg.domain == "edge" else ""))
    if kind != "vertex":
        return Mark(xy, "out" if kind == "out" else "box", data["label"])
    node = d.nodes[n[1]]
    if not isinstance(node, FuseNode) or n[2] < len(node.args) - 2:
        return Mark(xy, "vertex", data["label"])  # an inner step of a many-legged fuse
    words = [("Σⱼ " if node.aggregate else "") + data["label"]]
    words.append(node.mode + (" external" if node.external else ""))
    if not node.ordered:
        words.append("{any order}")
    return Mark(xy, "vertex", "\n".join(words))


def layered_positions(g: nx.MultiDiGraph, legs: list[tuple]) -> dict[Any, XY]:
    """Layered layout: depth 0 for sources, else 1 + the deepest input; no overlaps.

    Within a layer each node sits at the mean height of its inputs, then nodes are pushed
    apart to at least ``DY`` and the layer is re-centred on those wanted heights.
    """
    depth: dict[Any, int] = {}
    for n in nx.topological_sort(g):
        depth[n] = 1 + max((depth[p] for p in g.predecessors(n)), default=-1)
    y: dict[Any, float] = {n: -DY * i + 0.0 for i, n in enumerate(legs)}
    others = [n for n in g if depth[n] == 0 and n not in y]
    y.update({n: -DY * (len(legs) + i) for i, n in enumerate(others)})
    for level in range(1, max(depth.values(), default=0) + 1):
        layer = [n for n in nx.topological_sort(g) if depth[n] == level]
        wanted = {n: sum(y[p] for p in g.predecessors(n)) / g.in_degree(n) for n in layer}
        y.update(_spread(wanted))
    return {n: (round(DX * depth[n], 9), round(y[n], 9) + 0.0) for n in g}


def _spread(wanted: dict[Any, float]) -> dict[Any, float]:
    """Heights at least ``DY`` apart, in the wanted order, with the wanted mean."""
    placed: dict[Any, float] = {}
    below = math.inf
    for n in sorted(wanted, key=lambda n: -wanted[n]):
        placed[n] = below = min(wanted[n], below - DY)
    shift = (sum(wanted.values()) - sum(placed.values())) / max(1, len(placed))
    return {n: h + shift for n, h in placed.items()}


# ---- geometry ----------------------------------------------------------------------------


def parallel_rad(key: int, count: int) -> float:
    """Bend for the ``key``-th of ``count`` parallel edges: symmetric arcs about the chord."""
    return 0.0 if count < 2 else 0.5 * (key - (count - 1) / 2)


def curve_point(line: Line, t: float) -> XY:
    """The point at ``t`` on matplotlib's ``arc3`` curve (a quadratic Bezier) for ``line``."""
    (x1, y1), (x2, y2) = line.a, line.b
    cx = (x1 + x2) / 2 + line.rad * (y2 - y1)
    cy = (y1 + y2) / 2 - line.rad * (x2 - x1)
    s = 1 - t
    return (s * s * x1 + 2 * s * t * cx + t * t * x2, s * s * y1 + 2 * s * t * cy + t * t * y2)


def crosses(p: XY, q: XY, r: XY, s: XY) -> bool:
    """Whether segments pq and rs properly cross."""

    def side(a: XY, b: XY, c: XY) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0


def best_rad(u: Any, v: Any, pos: dict[Any, XY], chords: list[tuple[Any, Any]]) -> float:
    """The least bend that keeps an edge off other nodes and, if it can, off other edges."""
    best, best_score = 0.0, math.inf
    for rad in (0.0, -0.3, 0.3, -0.55, 0.55):
        curve = [curve_point(Line(pos[u], pos[v], "", rad), k / 24) for k in range(25)]
        hits = sum(1 for n, xy in pos.items() if n not in (u, v)
                   and min(math.dist(xy, c) for c in curve) < 0.45 * DY)
        cuts = sum(1 for a, b in chords if not {a, b} & {u, v}
                   for p, q in itertools.pairwise(curve)
                   if crosses(p, q, pos[a], pos[b]))
        score = 10 * hits + cuts + 0.1 * abs(rad)
        if score < best_score:
            best, best_score = rad, score
    return best


def finish(title: str, marks: list[Mark], lines: list[Line]) -> Scene:
    """Place edge labels apart from each other and vertex texts in the widest free angle."""
    placed: list[XY] = [m.xy for m in marks]
    out_lines = []
    for line in lines:
        tries = [(t, curve_point(line, t)) for t in (0.5, 0.38, 0.62, 0.28, 0.72)]
        t, xy = max(tries, key=lambda c: min((min(math.dist(c[1], p) / 0.6, 1.0)
                                              for p in placed), default=1.0))
        placed.append(xy)
        out_lines.append(replace(line, t=t))
    out_marks = [replace(m, angle=_free_angle(m.xy, lines)) if m.kind == "vertex" else m
                 for m in marks]
    return Scene(title, tuple(out_marks), tuple(out_lines))


def _free_angle(xy: XY, lines: Iterable[Line]) -> float:
    """Direction (degrees) of the widest gap between edges leaving ``xy``; up if it is free."""
    angles = []
    for line in lines:
        for end, near in ((line.a, 0.02), (line.b, 0.98)):
            if math.dist(end, xy) < 1e-9:
                tip = curve_point(line, near) if line.a != line.b else line.b
                angles.append(math.degrees(math.atan2(tip[1] - xy[1], tip[0] - xy[0])) % 360)
    if not angles:
        return 90.0
    angles.sort()
    gaps = [((b - a) % 360 or 360, a) for a, b in zip(angles, angles[1:] + angles[:1],
                                                       strict=True)]
    if all(min(abs(a - 90), 360 - abs(a - 90)) >= 40 for a in angles):
        width, start = next(gap for gap in gaps if (90 - gap[1]) % 360 < gap[0])
        if width >= 100:
            return 90.0
    width, start = max(gaps)
    return (start + width / 2) % 360



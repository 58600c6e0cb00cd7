"""Pictures of diagrams for people reading them: ``draw(diagram, "d.svg")`` (SVG or PNG).

Drawing runs in two steps. A layout function turns a checked diagram into a :class:`Scene`
(plain marks and lines in data coordinates, no matplotlib); :func:`render` paints a scene
with matplotlib's Agg canvas. Tree diagrams read left to right: input legs at depth 0, each
coupling vertex at one more than the deepest of its inputs, the output last. Graph diagrams
get the layout with the fewest crossings among Tutte's planar embedding, a spring layout and
a circle; parallel edges are drawn as arcs, self-loops as circles, open legs as arrow stubs.
Pictures are deterministic (no dates, fixed SVG ids), so they can be kept under version control.

>>> from fusiondsl import loads
>>> d = loads("diagram d(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) }").diagram()
>>> [(m.kind, m.xy) for m in tree_scene(d).marks]
[('leg', (0.0, 0.0)), ('leg', (0.0, -1.2)), ('vertex', (2.6, -0.6)), ('out', (5.2, -0.6))]
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from fusiondsl.core.diagnostics import NO_SPAN, FusionError
from fusiondsl.core.fileio import atomic_open
from fusiondsl.core.irreps import Group, Irreps
from fusiondsl.ir.diagram import AnyDiagram, Diagram, FuseNode, GraphDiagram, Operand

FORMATS = {".svg": "svg", ".png": "png"}
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


def draw(diagram: AnyDiagram, path: str | os.PathLike[str]) -> None:
    """Draw a checked diagram to an SVG or PNG file (chosen by the suffix), atomically.

    Args:
        diagram: a tree :class:`~fusiondsl.ir.diagram.Diagram` or a
            :class:`~fusiondsl.ir.diagram.GraphDiagram`.
        path: where to write; ``.svg`` or ``.png``.

    Raises:
        FusionError: for another suffix or a missing folder, or when matplotlib is not installed.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FusionError.at(f"cannot draw to {str(path)!r}: use .svg or .png", NO_SPAN)
    if not path.parent.is_dir():  # say so before the atomic writer names its temporary file
        raise FusionError.at(f"cannot draw to {str(path)!r}: no folder {str(path.parent)!r}",
                             NO_SPAN)
    try:
        import matplotlib
    except ImportError:
        raise FusionError.at(
            "drawing needs matplotlib: pip install 'fusiondsl[draw]'", NO_SPAN
        ) from None
    scene = tree_scene(diagram) if isinstance(diagram, Diagram) else graph_scene(diagram)
    # text stays text in SVG (searchable, testable); a fixed salt makes the ids reproducible
    rc = {"svg.fonttype": "none", "svg.hashsalt": "fusiondsl", "font.family": "DejaVu Sans"}
    with matplotlib.rc_context(rc):
        fig = render(scene)
        metadata = {"Title": diagram.name, "Date": None} if fmt == "svg" else {
            "Title": diagram.name, "Software": "fusiondsl"}
        with atomic_open(path) as f:  # never a half-written picture
            fig.savefig(f, format=fmt, dpi=150, metadata=metadata)


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
        rad = _parallel_rad(key, count) if count > 1 else _best_rad(u, v, pos, chords)
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


def _parallel_rad(key: int, count: int) -> float:
    """Bend for the ``key``-th of ``count`` parallel edges: symmetric arcs about the chord."""
    return 0.0 if count < 2 else 0.5 * (key - (count - 1) / 2)


def curve_point(line: Line, t: float) -> XY:
    """The point at ``t`` on matplotlib's ``arc3`` curve (a quadratic Bezier) for ``line``."""
    (x1, y1), (x2, y2) = line.a, line.b
    cx = (x1 + x2) / 2 + line.rad * (y2 - y1)
    cy = (y1 + y2) / 2 - line.rad * (x2 - x1)
    s = 1 - t
    return (s * s * x1 + 2 * s * t * cx + t * t * x2, s * s * y1 + 2 * s * t * cy + t * t * y2)


def _crosses(p: XY, q: XY, r: XY, s: XY) -> bool:
    """Whether segments pq and rs properly cross."""

    def side(a: XY, b: XY, c: XY) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0


def _best_rad(u: Any, v: Any, pos: dict[Any, XY], chords: list[tuple[Any, Any]]) -> float:
    """The least bend that keeps an edge off other nodes and, if it can, off other edges."""
    best, best_score = 0.0, math.inf
    for rad in (0.0, -0.3, 0.3, -0.55, 0.55):
        curve = [curve_point(Line(pos[u], pos[v], "", rad), k / 24) for k in range(25)]
        hits = sum(1 for n, xy in pos.items() if n not in (u, v)
                   and min(math.dist(xy, c) for c in curve) < 0.45 * DY)
        cuts = sum(1 for a, b in chords if not {a, b} & {u, v}
                   for p, q in itertools.pairwise(curve)
                   if _crosses(p, q, pos[a], pos[b]))
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


# ---- graph diagrams ----------------------------------------------------------------------


def graph_scene(d: GraphDiagram) -> Scene:
    """Lay a graph diagram out: vertices as dots, open legs as stubs, bubbles as arcs."""
    g = d.graph()
    pos = graph_positions(g)
    marks = [Mark(pos[n], "vertex", data["label"]) for n, data in g.nodes(data=True)
             if data["kind"] == "vertex"]
    lines = []
    for u, v, key, data in g.edges(keys=True, data=True):
        irreps = short_irreps(data["irreps"], d.group)
        leg = u if u[0] != "vertex" else v if v[0] != "vertex" else None
        if leg is None:
            lines.append(_graph_edge(g, pos, u, v, key, f"{data['name']}: {irreps}"))
            continue
        vertex = v if leg is u else u
        ends = (pos[leg], pos[vertex]) if leg[0] == "in" else (pos[vertex], pos[leg])
        lines.append(Line(ends[0], ends[1], irreps, style=leg[0]))  # arrows point downstream
        (vx, vy), (lx, ly) = pos[vertex], pos[leg]
        marks.append(Mark((vx + 1.4 * (lx - vx), vy + 1.4 * (ly - vy)), "end",
                          f"{leg[0]} {data['name']}"))
    return finish(f"{d.name}  ({d.group})", marks, lines)


def _graph_edge(g: nx.MultiGraph, pos: dict[Any, XY], u: Any, v: Any, key: int,
                label: str) -> Line:
    """An internal edge: an arc among parallel edges, a loop, or a line kept off vertices."""
    if u == v:  # a tadpole: a loop pointing away from the vertex's other edges
        x, y = pos[u]
        away = [(x - ox, y - oy) for n in g[u] if n != u for ox, oy in [pos[n]]]
        angle = math.atan2(sum(b for _, b in away), sum(a for a, _ in away) or 1e-9)
        angle += 0.8 * key
        return Line(pos[u], (x + 0.9 * math.cos(angle), y + 0.9 * math.sin(angle)), label,
                    style="loop")
    count = g.number_of_edges(u, v)
    rad = _parallel_rad(key, count) if count > 1 else _best_rad(u, v, pos, [])
    return Line(pos[u], pos[v], label, rad)


def graph_positions(g: nx.MultiGraph) -> dict[Any, XY]:
    """Vertex positions with the fewest edge crossings, then open-leg stub ends."""
    vertices = [n for n in g if n[0] == "vertex"]
    simple = nx.Graph(g.subgraph(vertices))
    simple.remove_edges_from(list(nx.selfloop_edges(simple)))
    if len(vertices) <= 2:
        raw = {n: (2.2 * i, 0.0) for i, n in enumerate(vertices)}
    else:
        raw = min(_candidates(simple), key=lambda p: _num_crossings(simple, p))
    pos = _normalise({n: (float(x), float(y)) for n, (x, y) in raw.items()}, 1.6)
    for n in g:
        if n[0] != "vertex":
            pos[n] = _stub_end(g, pos, n)
    return pos


def _candidates(g: nx.Graph) -> Iterable[dict[Any, Any]]:
    """Layouts to choose from, best looking first: Tutte (planar), spring, circles."""
    planar, _ = nx.check_planarity(g)
    if planar and nx.is_biconnected(g):
        yield _tutte(g)
    if planar:
        yield nx.kamada_kawai_layout(g, pos=nx.planar_layout(g))
    yield nx.circular_layout(_alternate(g))
    yield nx.kamada_kawai_layout(g)


def _tutte(g: nx.Graph) -> dict[Any, XY]:
    """Tutte's embedding: the longest face on a circle, other vertices at their neighbours' mean.

    It is planar, without crossings, for a 3-connected planar graph (the 6j tetrahedron).
    """
    _, embedding = nx.check_planarity(g)
    outer = max((embedding.traverse_face(u, v) for u, v in embedding.edges()), key=len)
    k = len(outer)
    pos = {n: (0.0, 0.0) for n in g}
    pos.update({n: (math.cos(math.pi / 2 + 2 * math.pi * i / k),
                    math.sin(math.pi / 2 + 2 * math.pi * i / k)) for i, n in enumerate(outer)})
    inner = [n for n in g if n not in outer]
    for _ in range(200):
        for n in inner:
            near = [pos[m] for m in g[n]]
            pos[n] = (sum(x for x, _ in near) / len(near), sum(y for _, y in near) / len(near))
    return pos


def _num_crossings(g: nx.Graph, pos: dict[Any, Any]) -> int:
    edges = list(g.edges())
    return sum(1 for i, (a, b) in enumerate(edges) for c, d in edges[i + 1:]
               if not {a, b} & {c, d} and _crosses(pos[a], pos[b], pos[c], pos[d]))


def _alternate(g: nx.Graph) -> list:
    """Node order around a circle: the two sides of a bipartite graph interleaved."""
    if not nx.is_bipartite(g) or not nx.is_connected(g):
        return list(g)
    left = sorted(nx.bipartite.sets(g)[0], key=str)
    right = sorted(set(g) - set(left), key=str)
    pairs = zip(left, right, strict=False)
    return [n for pair in pairs for n in pair] + left[len(right):] + right[len(left):]


def _normalise(pos: dict[Any, XY], radius: float) -> dict[Any, XY]:
    """Centre positions at the origin and scale the farthest to ``radius``."""
    if not pos:
        return {}
    cx = sum(x for x, _ in pos.values()) / len(pos)
    cy = sum(y for _, y in pos.values()) / len(pos)
    far = max(math.hypot(x - cx, y - cy) for x, y in pos.values()) or 1.0
    scale = radius / far if len(pos) > 2 else 1.0
    return {n: ((x - cx) * scale, (y - cy) * scale) for n, (x, y) in pos.items()}


def _stub_end(g: nx.MultiGraph, pos: dict[Any, XY], leg: tuple) -> XY:
    """Where an open leg's stub ends: away from its vertex's neighbours, fanned if several."""
    vertex = next(iter(g[leg]))
    x, y = pos[vertex]
    away = [(x - ox, y - oy) for n in g[vertex] if n[0] == "vertex" and n != vertex
            for ox, oy in [pos[n]]] or [(x, y)]
    ax, ay = sum(a for a, _ in away), sum(b for _, b in away)
    if math.hypot(ax, ay) < 1e-9:
        ax, ay = (-1.0, 0.0) if leg[0] == "in" else (1.0, 0.0)
    legs = sorted((n for n in g[vertex] if n[0] != "vertex"), key=str)
    angle = math.atan2(ay, ax) + 0.7 * (legs.index(leg) - (len(legs) - 1) / 2)
    return (x + STUB * math.cos(angle), y + STUB * math.sin(angle))


# ---- rendering ---------------------------------------------------------------------------

STYLES: dict[str, dict[str, Any]] = {
    "plain": {"arrowstyle": "-", "color": "0.25", "linewidth": 1.4},
    "loop": {"arrowstyle": "-", "color": "0.25", "linewidth": 1.4},
    "gate": {"arrowstyle": "-", "color": "tab:purple", "linewidth": 1.2, "linestyle": "--"},
    "in": {"arrowstyle": "-|>", "color": "tab:blue", "linewidth": 1.4, "mutation_scale": 12},
    "out": {"arrowstyle": "-|>", "color": "tab:red", "linewidth": 1.4, "mutation_scale": 12},
}


def render(scene: Scene) -> Any:
    """Paint a scene on a fresh matplotlib figure (Agg canvas) sized to its contents."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [m.xy for m in scene.marks]
    points += [curve_point(line, t) for line in scene.lines for t in (0.0, 0.5, 1.0)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs) - 1.3, max(xs) + 1.3, min(ys) - 0.8, max(ys) + 0.8
    inch = 0.95
    fig = Figure(figsize=(max(4.0, (x1 - x0) * inch), max(3.0, (y1 - y0) * inch + 0.6)))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, (y1 - y0) * inch / fig.get_figheight()))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.axis("off")
    fig.suptitle(scene.title, fontsize=12, fontweight="bold", y=0.98, va="top")
    for line in scene.lines:
        _draw_line(ax, line)
    for mark in scene.marks:
        MARKS[mark.kind](ax, mark)
    return fig


def _draw_line(ax: Any, line: Line) -> None:
    from matplotlib.patches import Circle, FancyArrowPatch

    style = STYLES[line.style]
    if line.style == "loop":
        centre = ((line.a[0] + line.b[0]) / 2, (line.a[1] + line.b[1]) / 2)
        ax.add_patch(Circle(centre, math.dist(line.a, line.b) / 2, fill=False, zorder=1,
                            ec=style["color"], lw=style["linewidth"]))
        xy, angle = line.b, 0.0
    else:
        ax.add_patch(FancyArrowPatch(line.a, line.b, connectionstyle=f"arc3,rad={line.rad}",
                                     shrinkA=0, shrinkB=8 if line.style == "in" else 0,
                                     zorder=1, **style))
        xy, (ex, ey) = curve_point(line, line.t), curve_point(line, min(1.0, line.t + 0.01))
        angle = math.degrees(math.atan2(ey - xy[1], ex - xy[0]))
        angle = angle - 180 if angle > 90 else angle + 180 if angle <= -90 else angle
    if line.label:
        ax.text(*xy, line.label, fontsize=7, ha="center", va="center", rotation=angle,
                rotation_mode="anchor", zorder=2, color=style["color"], linespacing=1.0,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})


def _mark_leg(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "o", ms=8, mfc="white", mec="tab:blue", mew=1.8, zorder=3)
    ax.annotate(mark.text, mark.xy, xytext=(-9, 0), textcoords="offset points", ha="right",
                va="center", fontsize=10, color="tab:blue", zorder=4)


def _mark_vertex(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "o", ms=9, color="black", zorder=3)
    dx, dy = math.cos(math.radians(mark.angle)), math.sin(math.radians(mark.angle))
    ha = "left" if dx > 0.35 else "right" if dx < -0.35 else "center"
    va = "bottom" if dy > 0.35 else "top" if dy < -0.35 else "center"
    ax.annotate(mark.text, mark.xy, xytext=(9 * dx, 9 * dy), textcoords="offset points",
                ha=ha, va=va, fontsize=8, zorder=4, linespacing=1.1,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def _mark_box(ax: Any, mark: Mark) -> None:
    ax.text(*mark.xy, mark.text, ha="center", va="center", fontsize=9, zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "fc": "#fdf0d5", "ec": "tab:orange", "lw": 1.4})


def _mark_out(ax: Any, mark: Mark) -> None:
    ax.plot(*mark.xy, "s", ms=8, mfc="white", mec="tab:red", mew=1.8, zorder=3)
    ax.annotate(mark.text, mark.xy, xytext=(9, 0), textcoords="offset points", ha="left",
                va="center", fontsize=10, color="tab:red", zorder=4)


def _mark_end(ax: Any, mark: Mark) -> None:
    color = "tab:blue" if mark.text.startswith("in ") else "tab:red"
    ax.text(*mark.xy, mark.text, ha="center", va="center", fontsize=9, color=color, zorder=4,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": color, "lw": 0.8})


MARKS = {"leg": _mark_leg, "vertex": _mark_vertex, "box": _mark_box, "out": _mark_out,
         "end": _mark_end}

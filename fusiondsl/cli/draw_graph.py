"""Layout of graph diagrams: the fewest crossings of three embeddings, bubbles as arcs.

The candidates are Tutte's planar embedding, a spring layout and a circle; parallel edges are
drawn as arcs, self-loops as circles, open legs as arrow stubs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import networkx as nx

from fusiondsl.cli.draw_layout import (
    STUB,
    XY,
    Line,
    Mark,
    Scene,
    best_rad,
    crosses,
    finish,
    parallel_rad,
    short_irreps,
)
from fusiondsl.ir.diagram import GraphDiagram


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
    rad = parallel_rad(key, count) if count > 1 else best_rad(u, v, pos, [])
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
               if not {a, b} & {c, d} and crosses(pos[a], pos[b], pos[c], pos[d]))


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



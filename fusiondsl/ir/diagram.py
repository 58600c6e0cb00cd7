"""The checked graph IR: legs, fuse nodes (trees of 3-valent couplings) and graph diagrams.

Values here are frozen and built only by :mod:`fusiondsl.front.validate`. Graph algorithms
(connectivity, drawing) get a networkx view from :meth:`Diagram.graph`. Printing gives DSL
text that parses back to the same IR:

>>> from fusiondsl import loads
>>> prog = loads("diagram d(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) }")
>>> print(prog.diagrams["d"].to_text())
diagram d(x: 2x1o, y: 1x1o) -> z: 2x0e {
    z = fuse(x, y)
}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from fusiondsl.core.diagnostics import Span
from fusiondsl.core.irreps import Group, Irrep, Irreps

if TYPE_CHECKING:  # networkx costs ~100 ms to import; only graph() needs it
    import networkx as nx


def _span() -> Span:
    """A span field: kept for messages, ignored by ``==``."""
    return field(default=Span(0, 0), compare=False, repr=False)



@dataclass(frozen=True)
class Operand:
    """A use of a leg or of an earlier node's result; ``at`` is ``i``/``j`` in a neighbour sum."""

    kind: Literal["leg", "node"]
    index: int
    at: str | None = None


@dataclass(frozen=True)
class Leg:
    """An input leg: a named feature vector of the given irreps."""

    name: str
    irreps: Irreps
    domain: Literal["node", "edge"] = "node"
    span: Span = _span()


@dataclass(frozen=True)
class FuseNode:
    """One ``fuse``: couples its operands (left to right) and applies a weight mode.

    Attributes:
        name: the result's name (a user's assignment target or a generated ``_fN``).
        args: operands (legs or earlier nodes), in coupling order.
        ordered: ``False`` for ``fuse{…}``: any coupling order may be used.
        mode: weight mode (``uvw``, …, ``uuu``, ``path``, ``none``).
        external: weights are an input of the forward call.
        keep: the ``-> …`` filter (labels and, for uvw/uuw, multiplicities), or ``None``.
        irreps: the layout of the result.
        gates: invariant edge scalars multiplied channel-wise into the result (``* g``).
        aggregate: ``sum_j``: computed per edge, summed over the neighbours of each node.
        domain: ``node`` or ``edge`` (computed once per edge, before any sum).
    """

    name: str
    args: tuple[Operand, ...]
    ordered: bool
    mode: str
    external: bool
    keep: Irreps | None
    irreps: Irreps
    gates: tuple[Operand, ...] = ()
    aggregate: bool = False
    domain: Literal["node", "edge"] = "node"
    span: Span = _span()

    op = "fuse"

    @property
    def coupling_order(self) -> tuple[int, ...]:
        """The order its operands couple in (positions into ``args``): :func:`coupling_order`."""
        return coupling_order(self.args, self.ordered, self.aggregate)

    @property
    def coupled_args(self) -> tuple[Operand, ...]:
        """The operands in coupling order."""
        return tuple(self.args[i] for i in self.coupling_order)


def coupling_order(args: tuple[Operand, ...], ordered: bool, aggregate: bool) -> tuple[int, ...]:
    """The coupling order of a fuse's operands (positions into ``args``).

    For a free ``sum_j fuse{…}`` of three or more operands, centre reads (``h[i]``) go last so
    that they can leave the edge sum; otherwise the order is as written. The checker computes
    an intermediate's layout (one entry per path) in this same order, so the layout and the
    paths always agree.
    """
    positions = tuple(range(len(args)))
    if ordered or not aggregate or len(args) < 3:
        return positions
    return tuple(sorted(positions, key=lambda i: args[i].at == "i"))


@dataclass(frozen=True)
class CatNode:
    """``cat(a, b, …)``: concatenation along channels (entries one after another)."""

    name: str
    args: tuple[Operand, ...]
    irreps: Irreps
    domain: Literal["node", "edge"] = "node"
    span: Span = _span()

    op = "cat"


@dataclass(frozen=True)
class LinearNode:
    """``linear(x)``: equivariant channel mixing, block-diagonal per irrep (e3nn ``Linear``)."""

    name: str
    args: tuple[Operand, ...]
    irreps: Irreps
    domain: Literal["node", "edge"] = "node"
    span: Span = _span()

    op = "linear"


Node = FuseNode | CatNode | LinearNode


@dataclass(frozen=True)
class Diagram:
    """A checked tree diagram: legs, fuse nodes in dependency order, the output node."""

    name: str
    group: Group
    legs: tuple[Leg, ...]
    nodes: tuple[Node, ...]
    out_name: str
    irreps_out: Irreps
    span: Span = _span()

    kind = "diagram"

    def operand_irreps(self, op: Operand) -> Irreps:
        """The irreps an operand carries."""
        return self.legs[op.index].irreps if op.kind == "leg" else self.nodes[op.index].irreps

    def operand_name(self, op: Operand) -> str:
        """The user-visible name of an operand (``h[j]`` when read at a neighbour)."""
        node = self.legs[op.index] if op.kind == "leg" else self.nodes[op.index]
        name = self.out_name if node is self.nodes[-1] else node.name
        return f"{name}[{op.at}]" if op.at else name

    @property
    def is_neighbourhood(self) -> bool:
        """Whether the diagram sums over neighbours (takes ``edge_index``)."""
        return any(getattr(n, "aggregate", False) for n in self.nodes)

    @cached_property
    def _graph(self) -> nx.MultiDiGraph:
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name)
        for leg in self.legs:
            g.add_node(("leg", leg.name), kind="leg", label=leg.name)
        result: dict[int, tuple] = {}

        def tail(op: Operand) -> tuple:
            return ("leg", self.legs[op.index].name) if op.kind == "leg" else result[op.index]

        for k, node in enumerate(self.nodes):
            src, label = tail(node.args[0]), str(self.operand_irreps(node.args[0]))
            if node.op != "fuse":
                vid = ("vertex", k, 0)
                g.add_node(vid, kind=node.op, label=node.op)
                for op in node.args:
                    g.add_edge(tail(op), vid, irreps=str(self.operand_irreps(op)))
                src = vid
            for step, op in enumerate(node.args[1:] if node.op == "fuse" else ()):
                vid = ("vertex", k, step)
                g.add_node(vid, kind="vertex", mode=node.mode, label=node.name)
                g.add_edge(src, vid, irreps=label)
                g.add_edge(tail(op), vid, irreps=str(self.operand_irreps(op)))
                src, label = vid, ""
            result[k] = src
        g.add_node(("out", self.out_name), kind="out", label=self.out_name)
        g.add_edge(result[len(self.nodes) - 1], ("out", self.out_name), irreps=str(self.irreps_out))
        return nx.freeze(g)

    def graph(self) -> nx.MultiDiGraph:
        """A frozen networkx view: legs, 3-valent coupling vertices, output; edges carry irreps."""
        return self._graph

    def to_text(self) -> str:
        """DSL text for this diagram; parsing it gives back the same IR."""
        legs = ", ".join(f"{leg.name}: {_domain(leg.domain)}{leg.irreps}" for leg in self.legs)
        lines = [f"diagram {self.name}({legs}) -> {self.out_name}: {self.irreps_out} {{"]
        for k, node in enumerate(self.nodes):
            if node.domain == "edge":
                continue  # computed per edge inside a neighbour sum: printed inline there
            lines.append(f"    {self.operand_name(Operand('node', k))} = {self._fuse_text(node)}")
        lines.append("}")
        return "\n".join(lines)

    def _arg_text(self, op: Operand) -> str:
        if op.kind == "node" and self.nodes[op.index].domain == "edge":
            return self._fuse_text(self.nodes[op.index])
        return self.operand_name(op)

    def node_text(self, node: Node) -> str:
        """The right-hand side of one node as written, e.g. ``fuse(x, y) weights uvw``."""
        return self._fuse_text(node)

    def _fuse_text(self, node: Node) -> str:
        args = ", ".join(self._arg_text(a) for a in node.args)
        if not isinstance(node, FuseNode):
            return f"{node.op}({args})"
        text = f"fuse({args})" if node.ordered else f"fuse{{{args}}}"
        text = ("sum_j " if node.aggregate else "") + text
        text += "".join(f" * {self.operand_name(g)}" for g in node.gates)
        if node.keep is not None:
            text += f" -> {node.keep}"
        if node.mode != "none":
            text += f" weights {node.mode}" + (" external" if node.external else "")
        return text


def _domain(domain: str) -> str:
    return "edge " if domain == "edge" else ""


@dataclass(frozen=True)
class GraphEdge:
    """An edge of a graph diagram; ``kind`` ``in``/``out`` marks an open leg."""

    name: str
    ir: Irrep
    mul: int
    kind: Literal["edge", "in", "out"] = "edge"
    span: Span = _span()


@dataclass(frozen=True)
class GraphDiagram:
    """A checked graph-form diagram: edges and 3-valent vertices (any topology)."""

    name: str
    group: Group
    edges: tuple[GraphEdge, ...]
    vertices: tuple[tuple[str, str, str], ...]
    span: Span = _span()

    kind = "graph"

    @property
    def inputs(self) -> tuple[GraphEdge, ...]:
        """The open ``in`` legs, in declaration order."""
        return tuple(e for e in self.edges if e.kind == "in")

    @property
    def outputs(self) -> tuple[GraphEdge, ...]:
        """The open ``out`` legs (at most one)."""
        return tuple(e for e in self.edges if e.kind == "out")

    def edge(self, name: str) -> GraphEdge:
        """Look up an edge by name."""
        return next(e for e in self.edges if e.name == name)

    def graph(self) -> nx.MultiGraph:
        """A frozen networkx multigraph: one node per vertex and open leg, one edge per edge."""
        import networkx as nx

        g = nx.MultiGraph(name=self.name)
        ends: dict[str, list] = {}
        for k, vertex in enumerate(self.vertices):
            g.add_node(("vertex", k), kind="vertex", label=f"v{k}")
            for name in vertex:
                ends.setdefault(name, []).append(("vertex", k))
        for e in self.edges:
            if e.kind != "edge":
                g.add_node((e.kind, e.name), kind=e.kind, label=e.name)
                ends.setdefault(e.name, []).append((e.kind, e.name))
            a, b = [*ends.get(e.name, []), None, None][:2]
            if a is not None and b is not None:
                g.add_edge(a, b, name=e.name, irreps=f"{e.mul}x{e.ir}" if e.mul > 1 else str(e.ir))
        return nx.freeze(g)

    def to_text(self) -> str:
        """DSL text for this graph; parsing it gives back the same IR."""
        lines = [f"graph {self.name} {{"]
        run: list[GraphEdge] = []
        for e in (*self.edges, None):
            if e is not None and e.kind == "edge":
                run.append(e)
                continue
            if run:
                lines.append("    edge " + ", ".join(f"{x.name}: {_label(x)}" for x in run))
                run = []
            if e is not None:
                lines.append(f"    {e.kind} {e.name}: {_label(e)}")
        lines += [f"    vertex ({', '.join(v)})" for v in self.vertices]
        lines.append("}")
        return "\n".join(lines)


def _label(e: GraphEdge) -> str:
    return f"{e.mul}x{e.ir}" if e.mul != 1 else str(e.ir)


AnyDiagram = Diagram | GraphDiagram

"""Kernel IR of a graph-form diagram: its vertex and 1j tables and open legs as one contraction.

Vertices are e3nn's wigner_3j (O3/SO3, where joining two slots is a shared index) or Wigner
3j symbols (SU2, where an internal edge carries the 1j symbol from its first slot to its
second and an ``out`` leg is raised back with it), exactly as the einsum backend contracts
them. Letters: ``z`` the batch, ``u`` the legs' shared channel, others one per slot.
"""

from __future__ import annotations

import string

from fusiondsl.ir.diagram import GraphDiagram, GraphEdge
from fusiondsl.kernel.exact import Table, metric_table, su2_3j_table, w3j_table
from fusiondsl.kernel.ir import GraphFactor, GraphKernelIR, GraphLeg

SLOT_LETTERS = [c for c in string.ascii_letters if c not in "zu"]


def _leg(e: GraphEdge) -> GraphLeg:
    return GraphLeg(e.name, str(e.ir), e.mul, e.ir.dim)


class _Graph:
    """The factors of one graph's contraction, built slot by slot."""

    def __init__(self, d: GraphDiagram) -> None:
        self.d, self.su2 = d, d.group == "SU2"
        self.tables: dict[str, Table] = {}
        self.factors: list[GraphFactor] = []
        self.letters = iter(SLOT_LETTERS)
        self.first: dict[str, str] = {}

    def table(self, t: Table, subscripts: str) -> None:
        self.tables.setdefault(t.name, t)
        self.factors.append(GraphFactor("table", t.name, subscripts))

    def vertex(self, names: tuple[str, str, str]) -> None:
        slots = ""
        for name in names:
            letter = next(self.letters)
            if name in self.first and self.su2:
                self.table(metric_table(self.d.edge(name).ir.j2), self.first[name] + letter)
            elif name in self.first:
                letter = self.first[name]
            self.first.setdefault(name, letter)
            slots += letter
        irs = [self.d.edge(n).ir for n in names]
        vertex = (su2_3j_table(*(ir.j2 for ir in irs)) if self.su2
                  else w3j_table(*(ir.l for ir in irs)))
        self.table(vertex, slots)

    def build(self) -> GraphKernelIR:
        d = self.d
        for names in d.vertices:
            self.vertex(names)
        channel = "u" if any(e.mul > 1 for e in d.edges) else ""
        for e in d.inputs:
            sub = "z" + (channel if e.mul > 1 else "") + self.first[e.name]
            self.factors.append(GraphFactor("leg", e.name, sub))
        output = "z" + channel if d.inputs else ""
        for e in d.outputs:
            letter = self.first[e.name]
            if self.su2:
                raised = next(self.letters)
                self.table(metric_table(e.ir.j2), letter + raised)
                letter = raised
            output += letter
        out = _leg(d.outputs[0]) if d.outputs else None
        return GraphKernelIR(d.name, d.group, tuple(_leg(e) for e in d.inputs), out,
                             tuple(self.factors), output,
                             tuple(sorted(self.tables.values(), key=lambda t: t.name)))


def graph_kernel_ir(d: GraphDiagram) -> GraphKernelIR:
    """The kernel IR of a graph-form diagram."""
    return _Graph(d).build()

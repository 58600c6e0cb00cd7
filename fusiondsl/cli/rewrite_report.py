"""``fusiondsl simplify``: a diagram before and after the rewrites, factors, and costs.

Graphs: the rules of :mod:`fusiondsl.passes.rewrite`, the exact factor, and the cost of the one
contraction before and after (tensors and dense FLOPs of the opt_einsum order at the planning
batch). Trees: per fuse node the paths and weights before and after symmetric-power and
zero-path pruning (:mod:`fusiondsl.passes.symmetric`).
"""

from __future__ import annotations

import argparse
import math

from fusiondsl.backends.einsum.graph import _GraphEinsum
from fusiondsl.core.coupling import expand_fuse
from fusiondsl.ir.diagram import AnyDiagram, Diagram, GraphDiagram
from fusiondsl.nn.program import load
from fusiondsl.passes.expand import expand
from fusiondsl.passes.rewrite import simplify_graph
from fusiondsl.plan.contraction import PLANNING_BATCH, order


def graph_cost(d: GraphDiagram) -> tuple[int, int, int]:
    """``(vertices, einsum operands, dense FLOPs)`` of contracting a graph (zeros if empty)."""
    if not d.vertices:
        return 0, 0, 0

    operands, output = _GraphEinsum(d).build()
    return len(d.vertices), len(operands), order(operands, output).flops


def _graph_report(d: GraphDiagram) -> list[str]:
    result = simplify_graph(d)
    lines = ["before:", d.to_text(), "", "rules applied:"]
    lines += [f"  {k + 1}. {step}" for k, step in enumerate(result.steps)] or ["  (none)"]
    lines += ["", "after:", result.after.to_text() if not result.closed else "  (nothing left)"]
    lines += ["", f"factor: {result.factor}" + ("  (the exact value)" if result.closed else
                                                 "  (contract(before) = factor × contract(after))")]
    lines.append(f"cost at batch {PLANNING_BATCH}: vertices / einsum operands / dense FLOPs")
    for name, g in (("before", d), ("after", result.after)):
        v, ops, flops = graph_cost(g)
        lines.append(f"  {name + ':':<8} {v:>3} / {ops:>3} / {flops:,}")
    return lines


def _tree_report(d: Diagram) -> list[str]:
    paths = expand(d)
    lines = ["diagram:", d.to_text(), "", "symmetric-power and zero-path pruning:"]
    for k, node in enumerate(d.nodes):
        if node.op != "fuse":
            continue
        layout = d.irreps_out if k == len(d.nodes) - 1 else None
        local, _ = expand_fuse([d.operand_irreps(a) for a in node.args], node.mode, node.keep,
                               layout)
        weights = sum(math.prod(p.channels.weight_shape or (0,)) for p in local)
        kept = [p for p in paths.paths if p.node == k]
        lines.append(f"  node {node.name}: {len(local)} -> {len(kept)} paths, "
                     f"{weights} -> {paths.node_weight_numel[k]} weights")
    return lines


def report(d: AnyDiagram) -> str:
    """The printed report of one diagram."""
    body = _graph_report(d) if isinstance(d, GraphDiagram) else _tree_report(d)
    return "\n".join([f"== {d.name} ({d.kind}, group {d.group})", *body])


def cmd_simplify(args: argparse.Namespace) -> int:
    """Print the simplification report of each selected diagram."""
    prog = load(args.file)
    names = [args.diagram] if args.diagram else list(prog.diagrams)
    print("\n\n".join(report(prog.diagram(n)) for n in names))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``simplify`` on the CLI's subparsers."""
    c = sub.add_parser("simplify", help="apply the diagram algebra; print factors and costs")
    c.add_argument("file")
    c.add_argument("--diagram", "-d")
    c.set_defaults(func=cmd_simplify)

"""A plan as text a reviewer reads: strategy, costs and einsum order of every node and path.

Per node: the strategy, the costs it was chosen from, the grouping and F-move hoisting; per
path: its einsum and the pairwise order opt_einsum picked.

The gallery keeps this text for every example (``kernels/NAME.DIAGRAM.plan.txt``), so a change
of plan shows up in review as a diff. The numbers are the cost model's, never timings.

>>> import fusiondsl
>>> from fusiondsl.passes.expand import expand
>>> from fusiondsl.plan.planner import make_plan
>>> text = "diagram tp(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) weights uvw }"
>>> d = fusiondsl.loads(text).diagram()
>>> print(plan_text(make_plan(expand(d))).splitlines()[4])
node 0: z = fuse(x, y) weights uvw  [per-path; weights 0:4 internal]
"""

from __future__ import annotations

from fusiondsl.ir.diagram import FuseNode, Operand
from fusiondsl.ir.paths import Path
from fusiondsl.plan.contraction import Contraction
from fusiondsl.plan.cost import Cost, fmt
from fusiondsl.plan.planner import Plan


def plan_text(plan: Plan, source: str | None = None) -> str:
    """Every node of a tree diagram's plan, in node order (``source``: the spec's name)."""
    d = plan.paths.diagram
    lines = [f"# plan of {d.name!r}" + (f" from {source}" if source else ""),
             f"# {plan.summary()}",
             f"# weights: {plan.internal_numel} internal, {plan.external_numel} external "
             "(per call)",
             ""]
    for k, node in enumerate(d.nodes):
        lines += _node(plan, k, node)
    return "\n".join(lines).rstrip() + "\n"


def _node(plan: Plan, k: int, node: object) -> list[str]:
    d = plan.paths.diagram
    name = d.operand_name(Operand("node", k))
    strategy = plan.node_strategy[k] if plan.node_strategy else "-"
    where = "external" if plan.paths.external(k) else "internal"
    numel = plan.paths.node_weight_numel[k]
    start = plan.weight_offsets[k]
    tags = [strategy] if strategy != "-" else []
    if numel:
        tags.append(f"weights {start}:{start + numel} {where}")
    if plan.hoisted and plan.hoisted[k]:
        tags.append("hoisted: per-edge prefixes summed over j, then the centre once per node")
    lines = [f"node {k}: {name} = {d.node_text(node)}  [{'; '.join(tags) or node.op}]"]
    if not isinstance(node, FuseNode):
        blocks = plan.node_linears[k]
        if blocks:
            lines.append(f"  {len(blocks)} linear blocks: " + ", ".join(
                f"{b.mul_in}x{b.ir} → {b.mul_out}x{b.ir}" for b in blocks))
        return [*lines, ""]
    if plan.node_costs and plan.node_costs[k]:
        lines.append("  cost model at batch " + f"{plan.batch}: " + "; ".join(
            _cost(name_, c, plan.batch) for name_, c in sorted(plan.node_costs[k].items())))
    lines += _choices(plan, k)
    for p, c in zip(plan.node_paths[k], plan.node_contractions[k]):
        lines += _path(p, c)
    return [*lines, ""]


def _cost(strategy: str, cost: Cost, batch: int) -> str:
    at = cost.at(batch)
    return (f"{strategy} {fmt(at['flops'])} FLOPs from nonzeros, {fmt(at['dense_flops'])} "
            f"dense, {fmt(at['bytes'])}B moved")


def _choices(plan: Plan, k: int) -> list[str]:
    """The grouping and F-move hoisting the planner chose for node ``k``."""
    out = []
    g = plan.node_grouped[k] if plan.node_grouped else None
    if g is not None:
        sizes = ", ".join(str(grp.num_paths) for grp in g.groups)
        out.append(f"  grouped: {len(g.groups)} output groups of {sizes} paths "
                   f"(one GEMM each, channels {g.mul})")
    fm = plan.fmoves[k] if plan.fmoves else None
    if fm is not None:
        absorbed = f", absorbs node {fm.inner}" if fm.inner is not None else ""
        out.append(f"  F-move: {len(fm.prefixes)} per-edge prefixes, {len(fm.couplings)} "
                   f"per-node couplings, {len(fm.finals)} terms{absorbed}")
    for other in plan.fmoves or ():
        if other is not None and other.inner == k:
            out.append(f"  absorbed by the F-move of node {other.node}: not computed per edge")
    return out


def _path(p: Path, c: Contraction) -> list[str]:
    order = " ; ".join(step.equation for step in c.steps)
    return [f"  path {p.index}: {p.describe()} ({p.mode}, {'×'.join(map(str, p.muls))} → "
            f"{p.out_mul}) ×{p.coefficient:.6g}",
            f"    {c.equation}  order: {order}  ({fmt(c.flops)} dense FLOPs at planning batch)"]

"""The kernel sets of a plan's fuse nodes: one per node, or two for a hoisted neighbour sum.

A plain fuse node is one multilinear map, one :class:`NodeInfo` (its kernels are written by
:mod:`fusiondsl.backends.triton.kernels`). A neighbour sum the plan hoists (see
:mod:`~fusiondsl.plan.hoist` and :mod:`~fusiondsl.plan.hoist_fmove`) is two multilinear maps with
torch
steps between them: the *prefix*, the weightless per-edge couplings without the centre ``h[i]``
(gated and summed over neighbours in torch), and the *final* couplings with ``h[i]``, once per
node, with the weights (for an F-move, the mixed weights). Each is an ordinary fuse node to the
kernel writer: paths, operand layouts, a result layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fusiondsl.backends.kernel_paths import NodeInfo
from fusiondsl.backends.pysource import pyname
from fusiondsl.core.irreps import Irreps, MulIr
from fusiondsl.ir.diagram import Diagram, FuseNode, Operand
from fusiondsl.ir.paths import Path
from fusiondsl.plan.hoist import final_path, prefix_path
from fusiondsl.plan.hoist_fmove import FMoveHoist
from fusiondsl.plan.planner import Plan


def coupled_args(node: FuseNode) -> tuple[Operand, ...]:
    """A node's operands in the order its paths couple them (centre last in a free sum)."""
    return node.coupled_args


def node_name(d: Diagram, k: int) -> str:
    """The Python name of node ``k``'s result (the output's name for the last node)."""
    return pyname(d.operand_name(Operand("node", k)))


def plain_info(plan: Plan, k: int) -> NodeInfo:
    """Node ``k`` as one kernel set: its paths on its operands, as written."""
    d, paths = plan.paths.diagram, plan.paths
    node = d.nodes[k]
    assert isinstance(node, FuseNode)
    node_paths = plan.node_paths[k]
    return NodeInfo(
        name=node_name(d, k),
        group=d.group,
        paths=tuple(node_paths),
        operands=tuple(d.operand_irreps(a) for a in coupled_args(node)),
        out=d.irreps_out if k == len(d.nodes) - 1 else node.irreps,
        weighted=any(p.weight_shape is not None for p in node_paths),
        external=paths.external(k),
        weight_numel=paths.node_weight_numel[k],
    )


@dataclass(frozen=True)
class HoistedSum:
    """A neighbour sum split at its centre read (see the module docstring).

    Attributes:
        prefix: per edge, the weightless couplings without the centre (one entry per prefix).
        prefix_args: the prefix's operands (read at ``i``/``j`` or on the bond).
        gated: the prefix's layout after the gates (a 1-channel prefix takes the gate's).
        final: per node, the couplings with the centre; its operands are ``(centre, prefix)``
            after an F-move, ``(prefix, centre)`` otherwise.
        centre: the centre operand, read as a node value.
        fmove: the F-move (its 6j mixing of the weights), or ``None`` for centre-last order.
    """

    prefix: NodeInfo
    prefix_args: tuple[Operand, ...]
    gated: Irreps
    final: NodeInfo
    centre: Operand
    fmove: FMoveHoist | None = None

    @property
    def centre_first(self) -> bool:
        """Whether the centre is the first operand of the final couplings (F-move order)."""
        return self.fmove is not None


def _gate_mul(d: Diagram, node: FuseNode) -> int:
    return max((d.operand_irreps(g)[0].mul for g in node.gates), default=1)


def _prefix_info(plan: Plan, k: int, name: str, args: tuple[Operand, ...],
                 prefixes: list[Path]) -> tuple[NodeInfo, Irreps]:
    """The prefix kernel set (result entry ``n`` is prefix ``n``) and its gated layout."""
    d = plan.paths.diagram
    node = d.nodes[k]
    assert isinstance(node, FuseNode)
    out = Irreps(tuple(MulIr(p.out_mul, p.out) for p in prefixes))
    gate = _gate_mul(d, node)
    gated = Irreps(tuple(MulIr(max(m.mul, gate), m.ir) for m in out))  # a 1-channel side broadcasts
    info = NodeInfo(f"{name}_pre", d.group, tuple(prefixes),
                    tuple(d.operand_irreps(a) for a in args), out, False, False, 0)
    return info, gated


def centre_last(plan: Plan, k: int) -> HoistedSum:
    """``Σ_j (x_j ⊗ y → k) ⊗ h_i``: the prefix before ``h[i]`` per edge, ``h[i]`` per node."""
    d = plan.paths.diagram
    node = d.nodes[k]
    assert isinstance(node, FuseNode)
    args, name = coupled_args(node), node_name(d, k)
    numbered: dict[tuple, Path] = {}
    for p in plan.node_paths[k]:
        key = (p.inputs[:-1], p.irs[:-1], p.labels)
        if key not in numbered:
            numbered[key] = dataclasses.replace(prefix_path(p), out_entry=len(numbered))
    prefix, gated = _prefix_info(plan, k, name, args[:-1], list(numbered.values()))
    finals = []
    for p in plan.node_paths[k]:
        pre = numbered[(p.inputs[:-1], p.irs[:-1], p.labels)]
        fin = final_path(p, gated[pre.out_entry].mul)
        finals.append(dataclasses.replace(fin, inputs=(pre.out_entry, p.inputs[-1])))
    base = plain_info(plan, k)
    final = dataclasses.replace(base, paths=tuple(finals),
                                operands=(gated, d.operand_irreps(args[-1])))
    centre = Operand(args[-1].kind, args[-1].index)
    return HoistedSum(prefix, args[:-1], gated, final, centre)


def _final_term(fm: FMoveHoist, r: int, mode: str) -> Path:
    """Final term ``r`` of an F-move as a path: its coupling, scaled by mixed weight row ``r``."""
    f = fm.finals[r]
    c = fm.couplings[f.coupling]
    shape = fm.left[0].weight_shape
    if shape is None:  # weightless: the mixing is a number
        return dataclasses.replace(c, index=r, out_entry=f.out_entry, mode="none",
                                   coefficient=sum(fm.mix[r]))
    numel = fm.left[0].weight_numel
    return dataclasses.replace(c, index=r, out_entry=f.out_entry, mode=mode, weight_shape=shape,
                               weight_offset=r * numel, coefficient=1.0)


def fmove(plan: Plan, k: int, fm: FMoveHoist) -> HoistedSum:
    """``Σ_k' M[k, k'] h_i ⊗ (Σ_j b ⊗ c → k')``: prefixes per edge, ``h[i]`` per node.

    Final term ``r`` is scaled by row ``r`` of the mixed weights (``M`` times the weights).
    """
    d = plan.paths.diagram
    node = d.nodes[k]
    assert isinstance(node, FuseNode)
    name = node_name(d, k)
    prefix, gated = _prefix_info(plan, k, name, fm.operands[1:], list(fm.prefixes))
    terms = tuple(_final_term(fm, r, node.mode) for r in range(len(fm.finals)))
    shape = fm.left[0].weight_shape
    numel = fm.left[0].weight_numel if shape is not None else 0
    centre = Operand(fm.operands[0].kind, fm.operands[0].index)
    final = NodeInfo(name, d.group, terms, (d.operand_irreps(centre), gated),
                     d.irreps_out if k == len(d.nodes) - 1 else node.irreps,
                     shape is not None, False, numel * len(fm.finals))
    return HoistedSum(prefix, fm.operands[1:], gated, final, centre, fm)


def absorbed_by(plan: Plan, k: int) -> int | None:
    """The node whose F-move absorbs node ``k`` (then ``k`` is not computed), or ``None``."""
    for fm in plan.fmoves:
        if fm is not None and fm.inner == k:
            return fm.node
    return None


def hoisted_sum(plan: Plan, k: int) -> HoistedSum | None:
    """Node ``k``'s hoisted form, or ``None`` when the plan evaluates it as written."""
    if not plan.hoisted or not plan.hoisted[k] or absorbed_by(plan, k) is not None:
        return None
    fm = plan.fmoves[k] if plan.fmoves else None
    return fmove(plan, k, fm) if fm is not None else centre_last(plan, k)


def kernel_sets(plan: Plan, k: int) -> list[NodeInfo]:
    """The kernel sets node ``k`` needs, in the order its forward uses them."""
    node = plan.paths.diagram.nodes[k]
    if not isinstance(node, FuseNode) or absorbed_by(plan, k) is not None:
        return []
    h = hoisted_sum(plan, k)
    return [plain_info(plan, k)] if h is None else [h.prefix, h.final]


def neighbourhood_notes(plan: Plan) -> list[str]:
    """Header lines: what runs in torch, and how each neighbour sum is evaluated."""
    d = plan.paths.diagram
    lines = ["Neighbour sums: the gathers h[i], h[j] (index_select), gates (a channel-wise",
             "multiply) and the sums over j (index_add) are torch ops, as are cat and linear;",
             "the couplings run in the kernels, per edge for the terms summed over j."]
    for k, node in enumerate(d.nodes):
        if not isinstance(node, FuseNode) or not node.aggregate:
            continue
        fm = plan.fmoves[k] if plan.fmoves else None
        if fm is not None:
            how = "hoisted by an F-move (h[i] couples once per node, with 6j-mixed weights)"
        elif plan.hoisted and plan.hoisted[k]:
            how = "hoisted (h[i] couples once per node, after the sum)"
        else:
            how = "as written, per edge"
        lines.append(f"{node_name(d, k)}: {how}.")
    return lines

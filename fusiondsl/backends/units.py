"""The kernel sets of a planned diagram's fuse nodes, read from its kernel IR.

The C and Triton kernel writers see one fuse node at a time as a :class:`NodeInfo`: paths,
operand layouts, a result layout. Those come from the kernel IR
(:func:`fusiondsl.kernel.kernel_ir`), the description every backend reads: a plain fuse node
is one multilinear map, one :class:`NodeInfo`. A neighbour sum the plan hoists (see
:mod:`~fusiondsl.plan.hoist` and :mod:`~fusiondsl.plan.hoist_fmove`) is two multilinear maps
with torch steps between them: the *prefix*, the weightless per-edge couplings without the
centre ``h[i]`` (gated and summed over neighbours in torch), and the *final* couplings with
``h[i]``, once per node, with the weights (for an F-move, the mixed weights): the IR's
:class:`~fusiondsl.kernel.ir.Hoist`. The torch steps around the kernels (gathers, gates, sums,
the F-move's weight mixing) are written from the plan (:mod:`fusiondsl.backends.forward`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fusiondsl.backends.kernel_paths import NodeInfo
from fusiondsl.backends.pysource import pyname
from fusiondsl.core.irreps import Irrep, Irreps, MulIr
from fusiondsl.ir.diagram import Diagram, FuseNode, Operand
from fusiondsl.ir.paths import Path
from fusiondsl.kernel.ir import FuseKernel, KernelIR, KernelPath, Segment
from fusiondsl.plan.hoist_fmove import FMoveHoist
from fusiondsl.plan.planner import Plan


def coupled_args(node: FuseNode) -> tuple[Operand, ...]:
    """A node's operands in the order its paths couple them (centre last in a free sum)."""
    return node.coupled_args


def node_name(d: Diagram, k: int) -> str:
    """The Python name of node ``k``'s result (the output's name for the last node)."""
    return pyname(d.operand_name(Operand("node", k)))


def _name(ir: KernelIR, k: int) -> str:
    return pyname(ir.out_name if k == len(ir.nodes) - 1 else ir.nodes[k].name)


def _irreps(group: str, segments: tuple[Segment, ...]) -> Irreps:
    return Irreps(tuple(MulIr(s.mul, Irrep.parse(s.ir, group)) for s in segments))  # type: ignore[arg-type]


def _path(kp: KernelPath, k: int, group: str, operands: tuple[tuple[Segment, ...], ...],
          out: tuple[Segment, ...], weight_base: int = 0, **changes: object) -> Path:
    """A kernel path as the writers' :class:`Path`.

    Multiplicities come from the segments it reads, its weight block is relative to its
    node's, its exact factor is rounded once to float64.
    """
    ir = lambda text: Irrep.parse(text, group)  # type: ignore[arg-type]  # noqa: E731
    w = kp.weights
    fields: dict[str, object] = dict(
        index=kp.index, node=k, inputs=kp.inputs, irs=tuple(map(ir, kp.irs)),
        muls=tuple(seg[e].mul for seg, e in zip(operands, kp.inputs)),  # a centre-last prefix
        # keeps its path's entry of the centre in ``inputs``, read by the final
        labels=tuple(map(ir, kp.labels)), out=ir(kp.out_ir), out_entry=kp.out,
        out_mul=out[kp.out].mul, mode=kp.mode, weight_shape=None if w is None else w.shape,
        weight_offset=0 if w is None else w.start - weight_base,
        coefficient=float(kp.normalisation))
    fields.update(changes)
    return Path(**fields)  # type: ignore[arg-type]


def _weight_base(kern: FuseKernel) -> int:
    """Where the node's weights start in their vector (its first weighted path's block)."""
    return min((p.weights.start for p in kern.paths if p.weights is not None), default=0)


def plain_info(ir: KernelIR, kern: FuseKernel) -> NodeInfo:
    """A fuse node as one kernel set: its paths on its operands, as written."""
    ops = tuple(op.segments for op in kern.operands)
    base = _weight_base(kern)
    return NodeInfo(
        name=_name(ir, kern.node),
        group=ir.group,  # type: ignore[arg-type]
        paths=tuple(_path(p, kern.node, ir.group, ops, kern.out, base) for p in kern.paths),
        operands=tuple(_irreps(ir.group, s) for s in ops),
        out=_irreps(ir.group, kern.out),
        weighted=any(p.weights is not None for p in kern.paths),
        external=kern.external,
        weight_numel=kern.weight_numel,
    )


def _prefix_info(ir: KernelIR, kern: FuseKernel) -> NodeInfo:
    """The prefix kernel set of a hoisted sum (result entry ``n`` is prefix ``n``), ungated."""
    h, k, group = kern.hoist, kern.node, ir.group
    assert h is not None
    ops = tuple(op.segments for op in h.edge_operands)
    # A prefix is as wide as its widest operand; the gates may widen its sum (``h.sums``).
    out = tuple(Segment(0, max(seg[e].mul for seg, e in zip(ops, p.inputs)), s.dim, s.ir)
                for p, s in zip(h.prefixes, h.sums))
    first_use = {}  # centre last: a prefix is numbered as the first path that reads it
    for f in h.finals:
        first_use.setdefault(f.inputs[0], f.index)
    paths = tuple(_path(p, k, group, ops, out, mode="none",
                        index=p.index if h.centre_first else first_use.get(p.index, p.index))
                  for p in h.prefixes)
    return NodeInfo(f"{_name(ir, k)}_pre", group, paths,  # type: ignore[arg-type]
                    tuple(_irreps(group, s) for s in ops), _irreps(group, out), False, False, 0)


def _final_info(ir: KernelIR, kern: FuseKernel) -> NodeInfo:
    """The per-node kernel set of a hoisted sum: the couplings with the centre ``h[i]``."""
    h, k, group = kern.hoist, kern.node, ir.group
    assert h is not None
    ops = (h.centre.segments, h.sums) if h.centre_first else (h.sums, h.centre.segments)
    operands = tuple(_irreps(group, s) for s in ops)
    if not h.centre_first:  # centre last: the node's own weights and factors
        base = _weight_base(kern)
        paths = tuple(_path(p, k, group, ops, kern.out, base) for p in h.finals)
        return NodeInfo(_name(ir, k), group, paths, operands,  # type: ignore[arg-type]
                        _irreps(group, kern.out), any(p.weights is not None for p in h.finals),
                        kern.external, kern.weight_numel)
    # An F-move: final term r is scaled by row r of the mixed weights (each a node path's
    # block, so all of one shape) or, weightless, by the number Σ mix[r].
    shape = next((p.weights.shape for p in kern.paths if p.weights is not None), None)
    numel = math.prod(shape) if shape is not None else 0
    paths = []
    for r, (p, row) in enumerate(zip(h.finals, h.mix)):
        if shape is None:
            total = sum((value for _, value in row[1:]), row[0][1]) if row else None
            paths.append(_path(p, k, group, ops, kern.out, mode="none",
                               coefficient=float(total) if total is not None else 0.0))
        else:
            paths.append(_path(p, k, group, ops, kern.out, mode=kern.paths[0].mode,
                               weight_shape=shape, weight_offset=r * numel, coefficient=1.0))
    return NodeInfo(_name(ir, k), group, tuple(paths), operands,  # type: ignore[arg-type]
                    _irreps(group, kern.out), shape is not None, False, numel * len(h.finals))


def kernel_sets(ir: KernelIR, k: int) -> list[NodeInfo]:
    """The kernel sets node ``k`` needs, in the order its forward uses them.

    None for a cat, a linear or an inner fuse an F-move absorbs; one for a fuse node as
    written; prefix and final for a hoisted neighbour sum.
    """
    kern = ir.nodes[k]
    if not isinstance(kern, FuseKernel) or kern.absorbed:
        return []
    if kern.hoist is None:
        return [plain_info(ir, kern)]
    return [_prefix_info(ir, kern), _final_info(ir, kern)]


@dataclass(frozen=True)
class HoistedSum:
    """A neighbour sum split at its centre read (see the module docstring).

    Attributes:
        prefix: per edge, the weightless couplings without the centre (one entry per prefix).
        prefix_args: the prefix's operands (read at ``i``/``j`` or on the bond).
        final: per node, the couplings with the centre; its operands are ``(centre, prefix)``
            after an F-move, ``(prefix, centre)`` otherwise.
        centre: the centre operand, read as a node value.
        fmove: the F-move (its 6j mixing of the weights), or ``None`` for centre-last order.
    """

    prefix: NodeInfo
    prefix_args: tuple[Operand, ...]
    final: NodeInfo
    centre: Operand
    fmove: FMoveHoist | None = None

    @property
    def centre_first(self) -> bool:
        """Whether the centre is the first operand of the final couplings (F-move order)."""
        return self.fmove is not None


def absorbed_by(plan: Plan, k: int) -> int | None:
    """The node whose F-move absorbs node ``k`` (then ``k`` is not computed), or ``None``."""
    for fm in plan.fmoves:
        if fm is not None and fm.inner == k:
            return fm.node
    return None


def hoisted_sum(plan: Plan, sets: list[NodeInfo], k: int) -> HoistedSum | None:
    """Node ``k``'s hoisted form, or ``None`` when the plan evaluates it as written.

    ``sets`` are its kernel sets (:func:`kernel_sets`): prefix and final.
    """
    if not plan.hoisted or not plan.hoisted[k] or absorbed_by(plan, k) is not None:
        return None
    node = plan.paths.diagram.nodes[k]
    assert isinstance(node, FuseNode) and len(sets) == 2
    fm = plan.fmoves[k] if plan.fmoves else None
    if fm is not None:
        centre = Operand(fm.operands[0].kind, fm.operands[0].index)
        return HoistedSum(sets[0], fm.operands[1:], sets[1], centre, fm)
    args = coupled_args(node)
    return HoistedSum(sets[0], args[:-1], sets[1], Operand(args[-1].kind, args[-1].index))


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

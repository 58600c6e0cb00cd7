"""Kernel IR of a hoisted neighbour sum: per-edge prefixes, per-node finals, F-move mixing.

The planner's :mod:`fusiondsl.plan.hoist` (centre last) and :mod:`fusiondsl.plan.hoist_fmove` (6j
recoupling) decide what leaves the edge loop; this module writes that decision down as
kernel paths, with the F-move's mixing weights recomputed exactly.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from fusiondsl.core.irreps import Irrep
from fusiondsl.ir.diagram import FuseNode
from fusiondsl.ir.paths import Path
from fusiondsl.kernel.exact import Exact, check_close
from fusiondsl.kernel.ir import Hoist, KernelPath, Segment
from fusiondsl.passes.rewrite_fmove import wigner_6j_parts
from fusiondsl.plan.hoist import final_path, prefix_path
from fusiondsl.plan.planner import Plan

if TYPE_CHECKING:
    from fusiondsl.kernel.build import Builder
    from fusiondsl.plan.hoist_fmove import FMoveHoist

ONE = Exact.sqrt(1)


def absorbed(plan: Plan, k: int) -> bool:
    """Whether node ``k`` is the inner fuse an F-move flattens into its reader."""
    return any(fm is not None and fm.inner == k for fm in plan.fmoves)


def hoist(b: Builder, k: int, node: FuseNode) -> Hoist | None:
    """The hoisting of node ``k`` as the plan chose it, or ``None``."""
    plan = b.plan
    if not plan.hoisted or not plan.hoisted[k] or absorbed(plan, k):
        return None
    fm = plan.fmoves[k] if plan.fmoves else None
    return _fmove(b, k, node, fm) if fm is not None else _centre_last(b, k, node)


def _gate_mul(b: Builder, node: FuseNode) -> int:
    return max((b.diagram.operand_irreps(g)[0].mul for g in node.gates), default=0)


def _sums(prefixes: list[Path], gate: int) -> tuple[Segment, ...]:
    out, offset = [], 0
    for pre in prefixes:
        mul = max(pre.out_mul, gate)
        out.append(Segment(offset, mul, pre.out.dim, str(pre.out)))
        offset += mul * pre.out.dim
    return tuple(out)


def _centre_last(b: Builder, k: int, node: FuseNode) -> Hoist:
    """Prefix = the path without its last coupling; final = that coupling with the centre."""
    args = node.coupled_args
    gate = _gate_mul(b, node)
    numbers: dict[tuple, int] = {}
    prefixes: list[Path] = []
    finals: list[KernelPath] = []
    for p in b.plan.node_paths[k]:
        key = (p.inputs[:-1], p.irs[:-1], p.labels)
        if key not in numbers:
            numbers[key] = len(prefixes)
            prefixes.append(prefix_path(p))
        n = numbers[key]
        fin = final_path(p, max(gate, prefixes[n].out_mul))
        finals.append(b.path(_with_inputs(fin, (n, p.inputs[-1])), b.norms[p.index],
                             b.weights(k, p)))
    pre_paths = tuple(b.path(_with_entry(pre, n), ONE, None, n) for n, pre in enumerate(prefixes))
    return Hoist("centre-last", b.operand(args[-1]), tuple(b.operand(a) for a in args[:-1]),
                 pre_paths, _sums(prefixes, gate), False, tuple(finals), (), None)


def _with_inputs(p: Path, inputs: tuple[int, ...]) -> Path:
    return dataclasses.replace(p, inputs=inputs)


def _with_entry(p: Path, n: int) -> Path:
    return dataclasses.replace(p, out_entry=n)


def _recoupling(a: Irrep, bb: Irrep, c: Irrep, out: Irrep, k: Irrep, kp: Irrep) -> Exact:
    """``M[k, k'] = (-1)^(a+b+c+J) (2k'+1) {a b k; c J k'}`` exactly."""
    total, delta = wigner_6j_parts(a.j2, bb.j2, k.j2, c.j2, out.j2, kp.j2)
    sign = -1 if (a.j2 + bb.j2 + c.j2 + out.j2) // 2 % 2 else 1
    return Exact.sqrt(delta) * Exact.of([(1, total * sign * (kp.j2 + 1))])


def _left_norm(b: Builder, fm: FMoveHoist, p: Path) -> Exact:
    """The exact coefficient of a left path (inner × outer in the nested form)."""
    if fm.inner is None:
        return b.norms[p.index]
    outer = b.plan.paths.paths[p.index]
    inner = next(q for q in b.plan.paths.paths
                 if q.node == fm.inner and q.out_entry == outer.inputs[0])
    return b.norms[inner.index] * b.norms[outer.index]


def _mix_row(b: Builder, fm: FMoveHoist, r: int, kp: Irrep) -> tuple[tuple[int, Exact], ...]:
    row = []
    for col, value in enumerate(fm.mix[r]):
        if value == 0.0:
            continue
        p = fm.left[col]
        exact = _left_norm(b, fm, p) * _recoupling(*p.irs, p.out, p.labels[0], kp)

        check_close(f"F-move weight ({r}, {col}) of node {fm.node}", exact, value)
        row.append((p.index, exact))
    return tuple(row)


def _fmove(b: Builder, k: int, node: FuseNode, fm: FMoveHoist) -> Hoist:
    """Prefix ``b ⊗ c → k'`` per edge; final ``a ⊗ k' → J`` per node with mixed weights."""
    shape = fm.left[0].weight_shape
    letters = None if shape is None else "u" if shape else ""
    finals, mix = [], []
    for r, final in enumerate(fm.finals):
        c = fm.couplings[final.coupling]
        kp = c.irs[1]
        path = b.path(_with_entry(c, final.out_entry), ONE, None, r)
        finals.append(_weighted(path, letters))
        mix.append(_mix_row(b, fm, r, kp))
    prefixes = tuple(b.path(pre, ONE, None) for pre in fm.prefixes)
    a, bb, cc = fm.operands
    return Hoist("f-move", b.operand(a), (b.operand(bb), b.operand(cc)), prefixes,
                 _sums(list(fm.prefixes), _gate_mul(b, node)), True, tuple(finals),
                 tuple(mix), fm.inner)


def _weighted(path: KernelPath, letters: str | None) -> KernelPath:
    return dataclasses.replace(path, weight_channels=letters)

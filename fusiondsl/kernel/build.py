"""Build the kernel IR of a tree diagram or neighbourhood block from the planner's output.

One builder per node kind (:data:`NODE_BUILDERS`); every float the plan carries (path
normalisations, F-move mixing) is recomputed exactly here and checked against the plan's
float, so a drift between the two is an :class:`~fusiondsl.core.diagnostics.InternalError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from fusiondsl.core.coupling import MODE_RULES
from fusiondsl.core.irreps import Irrep, Irreps
from fusiondsl.ir.diagram import CatNode, Diagram, FuseNode, LinearNode
from fusiondsl.ir.diagram import Operand as IrOperand
from fusiondsl.ir.paths import Path, Paths
from fusiondsl.kernel.build_hoist import absorbed, hoist
from fusiondsl.kernel.exact import Exact, Table, check_close, su2_fuse_table, w3j_table
from fusiondsl.kernel.ir import (
    CatKernel,
    FuseKernel,
    KernelIR,
    KernelPath,
    Leg,
    LinearBlock,
    LinearKernel,
    NodeKernel,
    Operand,
    Segment,
    WeightSlice,
)
from fusiondsl.plan.contraction import _channels
from fusiondsl.plan.planner import Plan


class KernelIRError(ValueError):
    """A diagram construct the kernel IR cannot describe yet (one line, naming it)."""


def segments(irreps: Irreps) -> tuple[Segment, ...]:
    """The segments of a flat tensor of ``irreps`` (e3nn's mul_ir layout)."""
    return tuple(Segment(start, m.mul, m.ir.dim, str(m.ir))
                 for (start, _), m in zip(irreps.slices, irreps))


def _alpha(p: Path, norm: str) -> Fraction:
    """e3nn's irrep normalisation of a path, exactly (see ``expand._alpha_irrep``)."""
    alpha, left = Fraction(1), p.irs[0]
    for ir, k in zip(p.irs[1:], (*p.labels, p.out)):
        alpha *= {"component": k.dim, "norm": left.dim * ir.dim, "none": 1}[norm]
        left = k
    return alpha


def exact_normalisations(paths: Paths) -> dict[int, Exact]:
    """Every path's normalisation factor ``sqrt(alpha)``, exactly, by path index."""
    out: dict[int, Exact] = {}
    for k in range(len(paths.diagram.nodes)):
        mine = [p for p in paths.paths if p.node == k]
        elements = {p.index: MODE_RULES[p.mode](p.muls, p.out_mul).num_elements for p in mine}
        totals: dict[int, int] = {}
        counts: dict[int, int] = {}
        for p in mine:
            totals[p.out_entry] = totals.get(p.out_entry, 0) + elements[p.index]
            counts[p.out_entry] = counts.get(p.out_entry, 0) + 1
        for p in mine:
            x = {"element": totals[p.out_entry], "path": elements[p.index] * counts[p.out_entry],
                 "none": 1}[paths.path_normalization]
            alpha = _alpha(p, paths.irrep_normalization)
            out[p.index] = Exact.sqrt(alpha / x if x > 0 else alpha)
            check_close(f"the normalisation of path {p.index}", out[p.index], p.coefficient)
    return out


@dataclass
class Builder:
    """What the kernel IR of one plan collects: its tables and exact factors."""

    plan: Plan
    tables: dict[str, Table] = field(default_factory=dict)
    norms: dict[int, Exact] = field(default_factory=dict)

    @property
    def diagram(self) -> Diagram:
        """The planned diagram."""
        return self.plan.paths.diagram  # type: ignore[return-value]

    def table(self, a: Irrep, b: Irrep, c: Irrep) -> str:
        """The name of the coupling table of one step ``a ⊗ b → c`` (registered once)."""
        if self.diagram.group == "SU2":
            t = su2_fuse_table(a.j2, b.j2, c.j2)
        else:
            t = w3j_table(a.l, b.l, c.l)
        self.tables.setdefault(t.name, t)
        return t.name

    def operand(self, op: IrOperand) -> Operand:
        """An operand: its source, name, gather and segments."""
        d = self.diagram
        name = d.operand_name(IrOperand(op.kind, op.index))
        return Operand(op.kind, op.index, name, op.at or "", segments(d.operand_irreps(op)))

    def weights(self, k: int, p: Path) -> WeightSlice | None:
        """Where a path's weights are in the internal or external vector."""
        if p.weight_shape is None:
            return None
        vector = "external" if self.plan.paths.external(k) else "internal"
        return WeightSlice(vector, self.plan.weight_offsets[k] + p.weight_offset, p.weight_shape)

    def path(self, p: Path, norm: Exact, weights: WeightSlice | None,
             index: int | None = None) -> KernelPath:
        """A kernel path from a plan path (its chain, letters, weights and exact factor)."""
        chans, out_ch, wsub = _channels(p)
        steps, left, tables = zip(p.irs[1:], (*p.labels, p.out)), p.irs[0], []
        for ir, k in steps:
            tables.append(self.table(left, ir, k))
            left = k
        return KernelPath(p.index if index is None else index, p.inputs,
                          tuple(map(str, p.irs)), tuple(map(str, p.labels)), p.out_entry,
                          str(p.out), p.mode, tuple(chans), out_ch,
                          wsub if weights is not None else None, weights, tuple(tables), norm)


def _fuse(b: Builder, k: int, node: FuseNode) -> FuseKernel:

    plan = b.plan
    paths = tuple(b.path(p, b.norms[p.index], b.weights(k, p)) for p in plan.node_paths[k])
    g = plan.node_grouped[k] if plan.node_grouped else None
    groups = tuple(tuple(p.index for p in grp.paths) for grp in g.groups) if g else ()
    return FuseKernel(
        node.name, k, node.domain, tuple(b.operand(a) for a in node.coupled_args),
        segments(node.irreps),
        tuple(b.operand(gt) for gt in node.gates), node.aggregate, node.external,
        plan.paths.node_weight_numel[k], paths, node.coupling_order,
        plan.node_strategy[k] if plan.node_strategy else "per-path", groups,
        hoist(b, k, node), absorbed(plan, k))


def _cat(b: Builder, k: int, node: CatNode) -> CatKernel:
    return CatKernel(node.name, k, node.domain, tuple(b.operand(a) for a in node.args),
                     segments(node.irreps))


def _linear(b: Builder, k: int, node: LinearNode) -> LinearKernel:
    blocks = []
    for blk in b.plan.node_linears[k]:
        fan = round(1 / blk.coefficient ** 2)  # e3nn's 1/sqrt(fan-in): an integer fan-in
        norm = Exact.sqrt(Fraction(1, fan))
        check_close(f"the normalisation of a block of {node.name!r}", norm, blk.coefficient)
        start = b.plan.weight_offsets[k] + blk.weight_offset
        blocks.append(LinearBlock(blk.in_entry, blk.out_entry, str(blk.ir), blk.mul_in,
                                  blk.mul_out, WeightSlice("internal", start,
                                                           (blk.mul_in, blk.mul_out)), norm))
    return LinearKernel(node.name, k, node.domain, b.operand(node.args[0]),
                        segments(node.irreps), tuple(blocks))


NODE_BUILDERS: dict[type, Callable[[Builder, int, object], NodeKernel]] = {
    FuseNode: _fuse,  # type: ignore[dict-item]
    CatNode: _cat,  # type: ignore[dict-item]
    LinearNode: _linear,  # type: ignore[dict-item]
}


def kernel_ir(plan: Plan) -> KernelIR:
    """The kernel IR of a planned tree diagram or neighbourhood block.

    Raises:
        KernelIRError: for a node kind it cannot describe (named in the message).
    """
    d = plan.paths.diagram
    if not isinstance(d, Diagram):
        raise KernelIRError(f"kernel_ir takes a planned tree diagram; {d.name!r} is graph form "
                            "(use fusiondsl.kernel.build_kernel_ir)")
    b = Builder(plan, norms=exact_normalisations(plan.paths))
    nodes = []
    for k, node in enumerate(d.nodes):
        make = NODE_BUILDERS.get(type(node))
        if make is None:
            raise KernelIRError(f"the kernel IR cannot describe {type(node).__name__} nodes yet "
                                f"(node {node.name!r} of diagram {d.name!r})")
        nodes.append(make(b, k, node))
    legs = tuple(Leg(leg.name, leg.domain, segments(leg.irreps)) for leg in d.legs)
    return KernelIR(d.name, d.group, legs, tuple(nodes), d.out_name, d.is_neighbourhood,
                    plan.internal_numel, plan.external_numel, plan.paths.irrep_normalization,
                    plan.paths.path_normalization,
                    tuple(sorted(b.tables.values(), key=lambda t: t.name)))


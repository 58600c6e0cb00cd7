"""Hoisting by an F-move: a fixed order that couples the centre ``h[i]`` first.

In ``sum_j fuse(h[i], x, y)`` (or its nested form ``sum_j fuse(fuse(h[i], x) -> k, y)``) every
path ``((a ⊗ b → k) ⊗ c → J)`` involves ``h[i]`` from its first coupling, so nothing can leave
the edge sum as written. The F-move of :mod:`fusiondsl.passes.rewrite_fmove` re-expresses it in the
other tree, ``L_k = Σ_k' M[k, k'] R_k'`` with ``R_k' = (a ⊗ (b ⊗ c → k') → J)``; by
linearity (channel-wise modes, weights not per edge, gates channel-wise scalars)::
    Σ_j g ⊙ w_p ((h_i ⊗ x_j → k) ⊗ y_ij → J)
        = Σ_k' M[k, k'] w_p (h_i ⊗ (Σ_j g ⊙ (x_j ⊗ y_ij → k')) → J)

Per edge only the couplings ``b ⊗ c → k'`` are computed and summed (the *prefixes*); per node,
each *final* coupling ``a ⊗ k' → J`` is scaled by a mixed weight
``W_r = Σ_p coefficient_p M_p[k, k'] w_p``, computed in the forward pass from the same
parameters, so weights and their count are those of the unhoisted layer.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from fusiondsl.core.irreps import Group, Irrep
from fusiondsl.ir.diagram import FuseNode, Operand
from fusiondsl.ir.paths import Path, Paths
from fusiondsl.passes.rewrite_fmove import fmove_matrix_float
from fusiondsl.plan.cost import path_flops, path_nnz
from fusiondsl.plan.hoist import HOISTABLE_MODES

# Neighbours per node the choice assumes: per-node work is shared by this many edges.
# Molecular graphs with a 5 Å cutoff have about 10-30; 8 keeps the choice conservative.
PLANNING_DEGREE = 8


@dataclass(frozen=True)
class FinalCoupling:
    """One term of the result: a per-node coupling, scaled by its mixed weight, into an entry.

    Attributes:
        coupling: the number of its per-node coupling ``a ⊗ k' → J`` (in ``couplings``).
        out_entry: the result entry it adds into.
        sources: the global numbers of the paths whose weights it mixes.
    """

    coupling: int
    out_entry: int
    sources: tuple[int, ...]


@dataclass(frozen=True)
class FMoveHoist:
    """How one neighbour sum is hoisted by an F-move (plain data the lowering reads).

    Attributes:
        node: the summed fuse node.
        inner: in the nested form, the inner ``fuse(h[i], x)`` node it absorbs (not computed).
        operands: ``(a, b, c)``: the centre read, then the two operands coupled per edge.
        left: the paths ``((a ⊗ b → k) ⊗ c → J)`` in the node's path (and weight) order; in
            the nested form, flattened (coefficient = inner × outer coefficient).
        prefixes: the per-edge couplings ``b ⊗ c → k'`` as weightless paths.
        couplings: the per-node couplings ``a ⊗ k' → J`` as weightless paths (``inputs``:
            the centre's entry and the prefix number); one may feed several output entries.
        finals: the terms of the result, one per (coupling, output entry).
        mix: ``[finals][left]``: ``coefficient_p · M_p[k, k']``, the 6j mixing of the weights.
    """

    node: int
    inner: int | None
    operands: tuple[Operand, Operand, Operand]
    left: tuple[Path, ...]
    prefixes: tuple[Path, ...]
    couplings: tuple[Path, ...]
    finals: tuple[FinalCoupling, ...]
    mix: tuple[tuple[float, ...], ...]


def _single(paths: Paths, k: int) -> tuple[tuple[Operand, ...], None, tuple[Path, ...]] | None:
    """``sum_j fuse(h[i], b, c)``: one ordered node coupling the centre first."""
    node = paths.diagram.nodes[k]
    if not isinstance(node, FuseNode) or not node.ordered or len(node.args) != 3:
        return None
    a, b, c = node.args
    if a.at != "i" or "i" in (b.at, c.at):
        return None
    return node.args, None, tuple(p for p in paths.paths if p.node == k)


def _used_once(paths: Paths, inner: int, k: int) -> bool:
    """Whether node ``inner`` is read by node ``k`` alone (and is not the output)."""
    d = paths.diagram
    reads = [m for m, n in enumerate(d.nodes) for op in (*n.args, *getattr(n, "gates", ()))
             if op == Operand("node", inner)]
    return reads == [k] and inner != len(d.nodes) - 1


def _nested(paths: Paths, k: int) -> tuple[tuple[Operand, ...], int, tuple[Path, ...]] | None:
    """``sum_j fuse(fuse(h[i], b) -> …, c)``: the inner weightless fuse is flattened into paths."""
    d = paths.diagram
    node = d.nodes[k]
    if not isinstance(node, FuseNode) or len(node.args) != 2 or node.args[0].kind != "node":
        return None
    m = node.args[0].index
    inner = d.nodes[m]
    if (not isinstance(inner, FuseNode) or inner.aggregate or inner.mode != "none"
            or inner.gates or len(inner.args) != 2 or not _used_once(paths, m, k)):
        return None
    (a, b), c = inner.args, node.args[1]
    if a.at != "i" or "i" in (b.at, c.at):
        return None
    by_entry = {p.out_entry: p for p in paths.paths if p.node == m}
    left = []
    for p in (p for p in paths.paths if p.node == k):
        q = by_entry[p.inputs[0]]
        left.append(dataclasses.replace(
            p, inputs=(*q.inputs, p.inputs[1]), irs=(*q.irs, p.irs[1]),
            muls=(*q.muls, p.muls[1]), labels=(q.out,), coefficient=q.coefficient * p.coefficient))
    return (a, b, c), m, tuple(left)


@functools.lru_cache(maxsize=4096)
def _fmove(group: Group, irs: tuple[Irrep, ...], out: Irrep) -> tuple:
    a, b, c = irs
    return fmove_matrix_float(group, a, b, c, out)


def _uniform_weights(left: Sequence[Path]) -> bool:
    """Whether the paths' weights are equal blocks laid out in path order (``[P, u]``)."""
    if len({p.weight_shape for p in left}) != 1:
        return False
    return all(p.weight_offset == i * p.weight_numel for i, p in enumerate(left))


def _prefix_path(k: int, n: int, p: Path, kp: Irrep) -> Path:
    """The per-edge coupling ``b ⊗ c → k'`` of left path ``p`` (weightless, channel-wise)."""
    return Path(n, k, p.inputs[1:], p.irs[1:], p.muls[1:], (), kp, n, max(p.muls[1:]), "none",
                None, 0, 1.0)


def _coupling_path(k: int, n: int, p: Path, pre: Path, mul: int) -> Path:
    """The per-node coupling ``a ⊗ k' → J`` (centre first, weightless: mixed weights scale it)."""
    return Path(n, k, (p.inputs[0], pre.out_entry), (p.irs[0], pre.out), (p.muls[0], mul), (),
                p.out, n, max(p.muls[0], mul), "none", None, 0, 1.0)


@dataclass
class _Builder:
    """Prefixes, couplings and finals found so far (each numbered in order of first use)."""

    node: int
    gate: int
    prefixes: dict[tuple, Path] = dataclasses.field(default_factory=dict)
    couplings: dict[tuple, Path] = dataclasses.field(default_factory=dict)
    finals: dict[tuple[int, int], int] = dataclasses.field(default_factory=dict)
    mix: dict[tuple[int, int], float] = dataclasses.field(default_factory=dict)

    def add(self, col: int, p: Path, kp: Irrep, value: float) -> None:
        """Left path ``col`` contributes ``value`` (its coefficient × M[k, k']) via ``k'``."""
        pre = self.prefixes.setdefault(
            (p.inputs[1:], kp), _prefix_path(self.node, len(self.prefixes), p, kp))
        mul = max(self.gate, pre.out_mul)
        c = self.couplings.setdefault(
            (p.inputs[0], pre.out_entry, p.out),
            _coupling_path(self.node, len(self.couplings), p, pre, mul))
        r = self.finals.setdefault((c.out_entry, p.out_entry), len(self.finals))
        self.mix[r, col] = self.mix.get((r, col), 0.0) + value


def recouple_node(paths: Paths, k: int) -> FMoveHoist | None:
    """The F-move hoisting of node ``k``, or ``None`` where it does not apply."""
    d = paths.diagram
    node = d.nodes[k]
    if not isinstance(node, FuseNode) or not node.aggregate or node.external:
        return None
    found = _single(paths, k) or _nested(paths, k)
    if node.mode not in HOISTABLE_MODES or found is None or not _uniform_weights(found[2]):
        return None
    operands, inner, left = found
    b = _Builder(k, max((d.operand_irreps(g)[0].mul for g in node.gates), default=0))
    for col, p in enumerate(left):
        ks, kps, m = _fmove(d.group, p.irs, p.out)
        for kp, value in zip(kps, m[ks.index(p.labels[0])]):
            if value != 0.0:
                b.add(col, p, kp, p.coefficient * value)
    mix = tuple(tuple(b.mix.get((r, c), 0.0) for c in range(len(left)))
                for r in range(len(b.finals)))
    finals = tuple(FinalCoupling(c, e, tuple(p.index for p, w in zip(left, mix[r]) if w))
                   for (c, e), r in b.finals.items())
    return FMoveHoist(k, inner, (operands[0], operands[1], operands[2]), left,
                      tuple(b.prefixes.values()), tuple(b.couplings.values()), finals, mix)


def fmove_report(paths: Paths, fm: FMoveHoist) -> dict[str, float]:
    """FLOPs per edge and per node of an F-move hoisting, before and after (sparse counts)."""
    group = paths.diagram.group

    def flops(p: Path) -> float:
        return float(path_flops(p, list(p.muls), p.out_mul, path_nnz(group, p), batch=1))

    before = [p for p in paths.paths if p.node in (fm.node, fm.inner)]
    scale = sum(2 * fm.couplings[f.coupling].out_mul * fm.couplings[f.coupling].out.dim
                for f in fm.finals)  # times the mixed weight, added into the entry
    weights = fm.left[0].weight_shape
    mixing = 2 * len(fm.finals) * len(fm.left) * (weights[0] if weights else 1)
    return {"unhoisted_per_edge": sum(flops(p) for p in before),
            "hoisted_per_edge": sum(flops(p) for p in fm.prefixes),
            "hoisted_per_node": sum(flops(c) for c in fm.couplings) + scale,
            "mixing": float(mixing if weights is not None else 0), "paths": len(before),
            "prefixes": len(fm.prefixes), "couplings": len(fm.couplings),
            "finals": len(fm.finals)}


def cheaper(report: dict[str, float], degree: int | None = None) -> bool:
    """Whether the F-move saves FLOPs per edge, and overall at ``degree`` neighbours per node.

    ``degree`` defaults to :data:`PLANNING_DEGREE`. Unlike the centre-last hoisting, an F-move
    can add work: one path ``(a ⊗ b → k) ⊗ c`` becomes up to ``min(2b+1, 2c+1)`` couplings
    with ``k'`` (with ``k = 0`` the left tree is already the cheap one), so the cost model
    decides.
    """
    edge, node = report["hoisted_per_edge"], report["hoisted_per_node"]
    before = report["unhoisted_per_edge"]
    return edge < before and edge + node / (degree or PLANNING_DEGREE) < before


def fmove_plans(paths: Paths, chosen: Sequence[str]) -> tuple[FMoveHoist | None, ...]:
    """Per node, its F-move hoisting where it applies and the cost model finds it cheaper."""
    out: list[FMoveHoist | None] = []
    for k in range(len(paths.diagram.nodes)):
        fm = recouple_node(paths, k) if chosen[k] == "per-path" else None
        out.append(fm if fm is not None and cheaper(fmove_report(paths, fm)) else None)
    return tuple(out)

"""Hoisting: in Σ_j fuse(…, h[i]), couple the centre-only factor once per node, after the sum.

By linearity, Σ_j g_ij ⊙ ((x_ij ⊗ …) ⊗ h_i) = (Σ_j g_ij ⊙ (x_ij ⊗ …)) ⊗ h_i when the channel
index is shared (channel-wise modes, weights not per edge): the prefix of each path, which
does not involve h[i], is computed per edge and summed over neighbours; the last coupling with
h[i] happens once per node. ``fuse{…}`` lets the compiler put h[i] last; a fixed order that
already ends with h[i] hoists as written.
"""

from __future__ import annotations

import dataclasses

from fusiondsl.ir.diagram import FuseNode
from fusiondsl.ir.paths import Path, Paths
from fusiondsl.plan.cost import batch_symbol, path_flops, path_nnz

HOISTABLE_MODES = ("none", "uuu", "path")


def coupling_order(node: FuseNode) -> tuple[int, ...]:
    """The coupling order of a node's operands (:attr:`FuseNode.coupling_order`)."""
    return node.coupling_order


def hoistable(paths: Paths, k: int) -> bool:
    """Whether node k's last coupling (with a centre-only operand) can leave the edge sum."""
    node = paths.diagram.nodes[k]
    if not isinstance(node, FuseNode) or not node.aggregate or len(node.args) < 3:
        return False
    if node.mode not in HOISTABLE_MODES or node.external:
        return False
    order = coupling_order(node)
    last = node.args[order[-1]]
    return last.at == "i" and all(node.args[i].at != "i" for i in order[:-1])


def prefix_path(p: Path) -> Path:
    """The part of a path before its last coupling, as a weightless channel-wise path."""
    mul = max(p.muls[:-1])
    return dataclasses.replace(p, irs=p.irs[:-1], muls=p.muls[:-1], labels=p.labels[:-1],
                               out=p.labels[-1], out_mul=mul, mode="none", weight_shape=None,
                               coefficient=1.0)


def final_path(p: Path, prefix_mul: int) -> Path:
    """The last coupling of a path: (summed prefix) ⊗ centre operand → output, with weights."""
    return dataclasses.replace(p, irs=(p.labels[-1], p.irs[-1]), muls=(prefix_mul, p.muls[-1]),
                               labels=())


def hoist_report(paths: Paths, k: int) -> dict[str, float]:
    """FLOPs per edge and per node of a neighbour sum, unhoisted and hoisted (sparse counts)."""
    group = paths.diagram.group
    mine = [p for p in paths.paths if p.node == k]

    def flops(p: Path) -> float:
        muls = [int(m) for m in p.muls]
        return float(path_flops(p, muls, p.out_mul, path_nnz(group, p)).subs(batch_symbol(), 1))

    prefixes = {(p.inputs[:-1], p.irs[:-1], p.labels): p for p in mine}
    gate = max((paths.diagram.operand_irreps(g)[0].mul for g in paths.diagram.nodes[k].gates),
               default=1)
    per_edge = sum(flops(prefix_path(p)) for p in prefixes.values())
    per_node = sum(flops(final_path(p, max(gate, max(p.muls[:-1])))) for p in mine)
    return {"unhoisted_per_edge": sum(flops(p) for p in mine), "hoisted_per_edge": per_edge,
            "hoisted_per_node": per_node, "paths": len(mine), "prefixes": len(prefixes)}

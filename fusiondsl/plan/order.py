"""Coupling order for ``fuse{…}``: every binary tree over the operands, costed, the cheapest.

With all intermediate labels kept, every binary coupling tree of n operands spans the same
space (BACKGROUND.md, F-moves), so the compiler may pick any. A tree is costed per sample and
channel from the nonzeros of its coupling tensors: coupling two sub-results costs
``Σ_(a, b, c) 2 · nnz(C_abc) · mul`` over their entries, and the result keeps one entry per path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from fusiondsl.core.coupling import nnz
from fusiondsl.core.irreps import Group, Irreps, MulIr
from fusiondsl.ir.diagram import Diagram, FuseNode

Tree = Any  # an int (operand position) or a pair of trees


def trees(leaves: tuple[int, ...]) -> Iterator[Tree]:
    """Every binary tree with these leaves in any order, each shape and order once."""
    if len(leaves) == 1:
        yield leaves[0]
        return
    first, rest = leaves[0], leaves[1:]
    for r in range(len(rest)):
        for others in itertools.combinations(rest, r):
            left = (first, *others)
            right = tuple(x for x in rest if x not in others)
            for a in trees(left):
                for b in trees(right):
                    yield (a, b)


def show(tree: Tree, names: list[str]) -> str:
    """``((a ⊗ b) ⊗ c)``."""
    if isinstance(tree, int):
        return names[tree]
    return f"({show(tree[0], names)} ⊗ {show(tree[1], names)})"


def couple_cost(group: Group, x: Irreps, y: Irreps) -> tuple[float, Irreps]:
    """FLOPs per sample of coupling two channel-wise results, and the result's entries."""
    flops, out = 0.0, []
    for a in x:
        for b in y:
            mul = max(a.mul, b.mul)
            for c in a.ir * b.ir:
                flops += 2 * nnz(group, a.ir, b.ir, c) * mul
                out.append(MulIr(mul, c))
    return flops, Irreps(tuple(out))


def tree_cost(group: Group, tree: Tree, operands: list[Irreps]) -> tuple[float, Irreps]:
    """Total FLOPs per sample of a tree, and the irreps it produces (all labels kept)."""
    if isinstance(tree, int):
        return 0.0, operands[tree]
    fa, xa = tree_cost(group, tree[0], operands)
    fb, xb = tree_cost(group, tree[1], operands)
    fc, xc = couple_cost(group, xa, xb)
    return fa + fb + fc, xc


def ranked_trees(d: Diagram, k: int, limit: int = 2000) -> list[tuple[float, Tree]]:
    """Trees of node k's operands, cheapest first (at most ``limit`` considered)."""
    node = d.nodes[k]
    operands = [d.operand_irreps(a) for a in node.args]
    ranked = []
    for tree in itertools.islice(trees(tuple(range(len(operands)))), limit):
        ranked.append((tree_cost(d.group, tree, operands)[0], tree))
    return sorted(ranked, key=lambda item: item[0])


def order_report(d: Diagram) -> list[dict[str, Any]]:
    """For every ``fuse{…}`` node with three or more operands: the chosen tree and runner-up."""
    out = []
    for k, node in enumerate(d.nodes):
        if not isinstance(node, FuseNode) or node.ordered or len(node.args) < 3:
            continue
        names = [d.operand_name(a) for a in node.args]
        ranked = ranked_trees(d, k)
        best, second = ranked[0], ranked[1] if len(ranked) > 1 else ranked[0]
        out.append({"node": node.name, "chosen": show(best[1], names),
                    "chosen_flops": best[0], "runner_up": show(second[1], names),
                    "runner_up_flops": second[0], "considered": len(ranked)})
    return out

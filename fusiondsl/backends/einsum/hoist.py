"""Rendering of a hoisted neighbour sum (see :mod:`fusiondsl.plan.hoist`) as torch code.

Per edge: each distinct path prefix (everything but the coupling with the centre h[i]) is
contracted, gated and summed into its centre node. Per node: the prefix sums couple with
h[i] and the weights, path by path. A sum hoisted by an F-move is rendered by
:mod:`fusiondsl.backends.einsum.fmove` with the same prefix emitter; the lowering picks one.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from fusiondsl.backends.pysource import path_comment
from fusiondsl.ir.diagram import FuseNode, Operand
from fusiondsl.plan.contraction import path_contraction, share_orders
from fusiondsl.plan.hoist import final_path, prefix_path

if TYPE_CHECKING:
    from fusiondsl.backends.einsum.lower import Block, EinsumLowering
    from fusiondsl.ir.paths import Path


def _prefix_key(p: Path) -> tuple:
    return (p.inputs[:-1], p.irs[:-1], p.labels)


def hoisted(low: EinsumLowering, k: int, node: FuseNode) -> None:
    """Emit one hoisted node: prefix sums over neighbours, then the centre couplings."""
    em = low.em
    args = low.coupled_args(node)
    paths = low.plan.node_paths[k]
    names = [low.d.operand_name(a) for a in args]
    em.comment(f"hoisted: coupling order {' ⊗ '.join(names)}; the prefix before "
               f"{names[-1]} is summed over neighbours, {names[-1]} couples once per node")
    prefixes: dict[tuple, tuple[str, int]] = {}
    for p in paths:
        key = _prefix_key(p)
        if key not in prefixes:
            pre = prefix_path(p)
            em.comment(f"prefix {len(prefixes)}: {pre.describe()} (per edge, summed over j)")
            prefixes[key] = emit_prefix(low, k, node, args[:-1], pre, len(prefixes))
    low.accumulate(k, node, _finals(low, k, node, args, paths, prefixes))


def emit_prefix(low: EinsumLowering, k: int, node: FuseNode, ops: tuple[Operand, ...],
                pre: Path, n: int) -> tuple[str, int]:
    """One weightless per-edge coupling of ``ops``, gated and summed over neighbours.

    Returns:
        The name of its per-node sum and its number of channels.
    """
    em = low.em
    c = path_contraction(pre, False)
    views = []
    for o in c.operands:
        if o.role.startswith("x"):
            i = int(o.role[1:])
            view = low.entry(ops[i], pre.inputs[i])
            views.append(view if len(o.subscripts) == 3 else f"{view}[:, 0]")
        else:
            views.append(f"self.{low.couplings_of(pre)[int(o.role[2:])].name}")
    result = low.contract(c, views)
    mul = pre.out_mul
    for gate in node.gates:
        em.line(f"{result} = {result} * {low.entry(gate, 0)}")
        mul = max(mul, low.d.operand_irreps(gate)[0].mul)  # a 1-channel gate broadcasts
    name = f"{low.target(k, 0)[:-2]}_pre{n}"
    em.line(f"{name} = {result}.new_zeros((num_nodes,) + {result}.shape[1:])"
            f".index_add(0, receivers, {result})")
    return name, mul


def _finals(low: EinsumLowering, k: int, node: FuseNode, args: tuple, paths: tuple[Path, ...],
            prefixes: dict[tuple, tuple[str, int]]) -> list[Block]:
    """Per node, each path's last coupling: its prefix sum ⊗ the centre h[i], with weights.

    The couplings share pairwise orders as the planner's do (``share_orders``), so that paths
    with one schedule become one loop (:meth:`EinsumLowering.accumulate`).
    """
    from fusiondsl.backends.einsum.lower import Block  # lower imports this module

    centre = Operand(args[-1].kind, args[-1].index)  # the node tensor, not gathered
    fins = [final_path(p, prefixes[_prefix_key(p)][1]) for p in paths]
    orders = share_orders([path_contraction(f, low.paths.external(k)) for f in fins])
    blocks = []
    for p, fin, c in zip(paths, fins, orders):
        name = prefixes[_prefix_key(p)][0]

        def inputs(i: int, name: str = name, p: Path = p) -> str:
            return name if i == 0 else low.entry(centre, p.inputs[-1])

        render = functools.partial(low.body, k=k, node=node, p=fin, c=c, inputs=inputs,
                                   gates=False)  # the gates are in the prefix sums
        blocks.append(Block(p, path_comment(p) + " — per node", render))
    return blocks

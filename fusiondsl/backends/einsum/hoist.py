"""Rendering of a hoisted neighbour sum (see :mod:`fusiondsl.plan.hoist`) as torch code.

Per edge: each distinct path prefix (everything but the coupling with the centre h[i]) is
contracted, gated and summed into its centre node. Per node: the prefix sums couple with
h[i] and the weights, path by path. A sum hoisted by an F-move is rendered by
:mod:`fusiondsl.backends.einsum.fmove` with the same prefix emitter; the lowering picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusiondsl.backends.pysource import path_comment
from fusiondsl.ir.diagram import FuseNode, Operand
from fusiondsl.plan.contraction import SCALED_AFTER, path_contraction
from fusiondsl.plan.hoist import final_path, prefix_path

if TYPE_CHECKING:
    from fusiondsl.backends.einsum.lower import EinsumLowering
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
    first: set[int] = set()
    for p in paths:
        _emit_final(low, k, node, args, p, prefixes[_prefix_key(p)], first)


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


def _emit_final(low: EinsumLowering, k: int, node: FuseNode, args: tuple, p: Path,
                prefix: tuple[str, int], first: set[int]) -> None:

    em = low.em
    name, mul = prefix
    fin = final_path(p, mul)
    em.comment(path_comment(p) + " — per node")
    c = path_contraction(fin, low.paths.external(k))
    views = []
    for o in c.operands:
        if o.role == "x0":
            views.append(name if len(o.subscripts) == 3 else f"{name}[:, 0]")
        elif o.role == "x1":
            centre = Operand(args[-1].kind, args[-1].index)  # the node tensor, not gathered
            view = low.entry(centre, p.inputs[-1])
            views.append(view if len(o.subscripts) == 3 else f"{view}[:, 0]")
        elif o.role.startswith("cg"):
            views.append(f"self.{low.couplings_of(fin)[0].name}")
        else:
            views.append(low.weight_slice(k, p.weight_offset, p.weight_shape or ()))
    result = low.contract(c, views)
    if p.mode in SCALED_AFTER and p.weight_shape is not None:  # not an operand of c
        em.line(f"{result} = {result} * {low.scale(k, p)}")
    target = low.target(k, p.out_entry)
    coeff = f"{p.coefficient!r} * {result}"
    em.line(f"{target} = {target} + {coeff}" if p.out_entry in first else f"{target} = {coeff}")
    first.add(p.out_entry)

"""Shape handling in a generated forward: batch flattening, views, neighbour sums, output.

Trees flatten any leading batch shape; neighbourhood blocks read ``edge_index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusiondsl.ir.diagram import FuseNode, Operand

if TYPE_CHECKING:
    from fusiondsl.backends.einsum.lower import EinsumLowering


def _external_check(low: EinsumLowering) -> None:
    n = low.plan.external_numel
    em = low.em
    if not n:
        return
    em.line("if weight is None:")
    with em.indent():
        em.line(f'raise TypeError("this layer takes external weights: pass weight [..., {n}]")')


def prologue(low: EinsumLowering) -> None:
    """Flatten batch dimensions (trees) or read the graph (neighbourhood blocks); views."""
    em, d = low.em, low.d
    _external_check(low)
    args = low.signature()
    if d.is_neighbourhood:
        em.line("receivers, senders = edge_index[0], edge_index[1]")
        em.line(f"num_nodes = {args[0]}.shape[0]")
    else:
        shapes = [f"{a}.shape[:-1]" for a in args]
        if low.plan.external_numel:
            shapes.append("weight.shape[:-1]")
        em.line(f"batch = torch.broadcast_shapes({', '.join(shapes)})")
        for a, leg in zip(args, d.legs):
            em.line(f"{a} = {a}.expand(batch + ({leg.irreps.dim},)).reshape(-1, {leg.irreps.dim})")
        if low.plan.external_numel:
            n = low.plan.external_numel
            em.line(f"weight = weight.expand(batch + ({n},)).reshape(-1, {n})")
    em.comment("views of each input entry as [n, mul, 2l+1] (e3nn's mul_ir layout)")
    for a, leg in zip(args, d.legs):
        for i, ((start, stop), m) in enumerate(zip(leg.irreps.slices, leg.irreps)):
            em.line(f"{a}_{i} = {a}[:, {start}:{stop}].reshape(-1, {m.mul}, {m.ir.dim})"
                    f"  # {m}")


def scatter(low: EinsumLowering, k: int, node: FuseNode) -> None:
    """Sum each per-edge entry of an aggregating node over the neighbours of its centre."""
    em = low.em
    em.comment("sum over neighbours: add each edge's term into its centre (receiver)")
    for e in range(len(node.irreps)):
        t = low.target(k, e)
        em.line(f"{t} = {t}.new_zeros((num_nodes,) + {t}.shape[1:]).index_add(0, receivers, {t})")


def epilogue(low: EinsumLowering) -> None:
    """Concatenate the output entries back into e3nn's flat layout."""
    em, d = low.em, low.d
    last = len(d.nodes) - 1
    parts = [f"{low.target(last, e)}.reshape({low.target(last, e)}.shape[0], -1)"
             for e in range(len(d.irreps_out))]
    em.line()
    em.line(f"result = torch.cat([{', '.join(parts)}], dim=-1)")
    if d.is_neighbourhood:
        em.line("return result")
    else:
        em.line(f"return result.reshape(batch + ({d.irreps_out.dim},))")


__all__ = ["Operand", "epilogue", "prologue", "scatter"]

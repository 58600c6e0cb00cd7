"""Rendering of the grouped strategy (see :mod:`fusiondsl.plan.grouped`) as torch code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.backends.pysource import path_comment
from fusiondsl.core.coupling import Coupling
from fusiondsl.ir.diagram import FuseNode
from fusiondsl.plan.grouped import GroupedNode, OutputGroup

if TYPE_CHECKING:
    from fusiondsl.backends.einsum.lower import EinsumLowering


def _comment(p: object) -> str:
    return path_comment(p)  # type: ignore[arg-type]


def grouped(low: EinsumLowering, k: int, node: FuseNode, g: GroupedNode) -> None:
    """Emit one node: operands side by side, then per output entry two contractions."""
    em = low.em
    base = low.target(k, 0)[:-2]
    x_entries = [low.entry(node.args[0], i) for i in range(len(low.d.operand_irreps(node.args[0])))]
    y_entries = [low.entry(node.args[1], i) for i in range(len(low.d.operand_irreps(node.args[1])))]
    d1, d2 = g.dims
    em.comment(f"grouped: operand 1 as [z, {g.mul}, {d1}], operand 2 as [z, {d2}]")
    em.line(f"{base}_x = torch.cat([{', '.join(x_entries)}], dim=-1)")
    em.line(f"{base}_y = torch.cat([{', '.join(y_entries)}], dim=-1).reshape(-1, {d2})")
    for grp in g.groups:
        _group(low, k, node, g, grp, base)


def _group(low: EinsumLowering, k: int, node: FuseNode, g: GroupedNode, grp: OutputGroup,
           base: str) -> None:
    em = low.em
    d1, d2 = g.dims
    kp, u = grp.dim * grp.num_paths, g.mul
    out = grp.paths[0].out
    em.comment(f"output {out} (entry {grp.out_entry}): {grp.num_paths} paths")
    for p in grp.paths:
        em.comment(_comment(p))
    name = f"g_{base.lstrip('_')}_{grp.out_entry}"
    values = grp.coupling.transpose(0, 1, 2, 3).reshape(d2, d1 * kp)
    low.st.couplings.setdefault(name, Coupling(
        name, np.ascontiguousarray(values),
        f"{base}: output entry {grp.out_entry} ({out}), [{d2}, ({d1}, {grp.dim}, "
        f"{grp.num_paths})] stacked couplings"))
    em.line(f"n = ({base}_y @ self.{name}).view(-1, {d1}, {kp})  # [z, i, (k, path)]")
    em.line(f"t = torch.bmm({base}_x, n).view(-1, {u}, {grp.dim}, {grp.num_paths})"
            "  # [z, u, k, path]")
    target = low.target(k, grp.out_entry)
    em.line(f"{target} = {_reduce(low, k, node, grp, u)}")
    for gate in node.gates:
        em.line(f"{target} = {target} * {low.entry(gate, 0)}")


def _slice(low: EinsumLowering, k: int, start: int, stop: int, scalar: bool = True) -> str:
    """Weights [start, stop) of node k; one weight as a scalar only when ``scalar``."""
    begin = low.plan.weight_offsets[k] + start
    end = low.plan.weight_offsets[k] + stop
    one = end - begin == 1 and scalar
    if low.paths.external(k):
        return f"weight[:, {begin}]" if one else f"weight[:, {begin}:{end}]"
    return f"self.weight[{begin}]" if one else f"self.weight[{begin}:{end}]"


def _reduce(low: EinsumLowering, k: int, node: FuseNode, grp: OutputGroup, u: int) -> str:
    """The sum over paths, with the node's weights."""
    ext = low.paths.external(k)
    if node.mode == "none":
        return "t.sum(-1)  # fixed coefficients: the paths add up"
    if node.mode == "uvw":
        w = grp.paths[0].out_mul
        blocks = [_slice(low, k, p.weight_offset, p.weight_offset + p.weight_numel)
                  for p in grp.paths]
        if ext:
            cat = ", ".join(f"{b}.reshape(-1, {u}, {w})" for b in blocks)
            return (f"torch.bmm(t.permute(0, 2, 3, 1).reshape(-1, {grp.dim}, "
                    f"{grp.num_paths * u}), torch.cat([{cat}], dim=1)).transpose(1, 2)")
        cat = ", ".join(f"{b}.view({u}, {w})" for b in blocks)
        return (f"(t.permute(0, 2, 3, 1).reshape(-1, {grp.num_paths * u}) @ "
                f"torch.cat([{cat}], dim=0)).view(-1, {grp.dim}, {w}).transpose(1, 2)")
    size = 1 if node.mode == "path" else u
    # uuu keeps its channel axis even with one channel (u = 1), as the matmul below expects
    stacked = ", ".join(_slice(low, k, p.weight_offset, p.weight_offset + size,
                               scalar=node.mode == "path") for p in grp.paths)
    if node.mode == "path":
        shape = "[:, None, :, None]" if ext else "[:, None]"
        return f"torch.matmul(t, torch.stack([{stacked}], dim=-1){shape}).view(-1, {u}, {grp.dim})"
    return (f"torch.matmul(t, torch.stack([{stacked}], dim=-1).unsqueeze(-1))"
            f".view(-1, {u}, {grp.dim})")

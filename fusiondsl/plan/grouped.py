"""The grouped strategy: all paths into one output entry as two GEMM-shaped contractions.

For a binary fuse whose second operand has multiplicity 1 (spherical harmonics, bond
features) and whose first operand has one multiplicity U throughout, every path into output
entry ``o`` is evaluated at once:
    n[z, i, (k, p)] = y[z, :] @ G_o           couplings contracted with the operand 2 vector
    t[z, u, k, p]   = bmm(x_all[z, u, :], n)  x_all: every entry of operand 1 side by side
    out_o[z, u, k]  = t @ w[u, p]             (uvu, uuu, path, none) or a GEMM over (p, u) (uvw)

``G_o[j, i, k, p]`` holds path p's normalised coupling tensor (zero outside its entries).
This trades the sparsity of the coupling tensors (more FLOPs) for a few large operations
(far less memory traffic and dispatch), which wins on CPUs where memory is the bottleneck.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fusiondsl.core.coupling import fuse_coupling
from fusiondsl.ir.diagram import FuseNode
from fusiondsl.ir.paths import Path, Paths

GROUPED_MODES = ("uvw", "uvu", "uuu", "path", "none")


@dataclass(frozen=True)
class OutputGroup:
    """Every path of one node into one output entry, with their stacked coupling tensor.

    Attributes:
        out_entry: the result entry.
        paths: the paths, in path order (the ``p`` index of the coupling tensor).
        dim: 2l+1 of the output label (``k``).
        coupling: ``[D2, D1, k, P]`` float64, coefficients folded in.
    """

    out_entry: int
    paths: tuple[Path, ...]
    dim: int
    coupling: np.ndarray = field(compare=False, repr=False)

    @property
    def num_paths(self) -> int:
        """P, the number of paths in the group."""
        return len(self.paths)


@dataclass(frozen=True)
class GroupedNode:
    """The grouped plan of one fuse node."""

    node: int
    mul: int
    dims: tuple[int, int]
    groups: tuple[OutputGroup, ...]


def grouped_eligible(paths: Paths, k: int) -> bool:
    """Whether node ``k`` fits the grouped strategy (binary, operand 2 of multiplicity 1)."""
    d = paths.diagram
    node = d.nodes[k]
    if not isinstance(node, FuseNode) or len(node.args) != 2 or node.mode not in GROUPED_MODES:
        return False
    x1, x2 = (d.operand_irreps(a) for a in node.args)
    weighted = all((p.weight_shape is None) == (node.mode == "none")
                   for p in paths.paths if p.node == k)
    return weighted and all(m.mul == 1 for m in x2) and len({m.mul for m in x1}) == 1


def _offsets(irreps: object) -> list[int]:
    out = [0]
    for m in irreps:  # type: ignore[attr-defined]
        out.append(out[-1] + m.ir.dim)
    return out


def grouped_node(paths: Paths, k: int) -> GroupedNode:
    """Stack the coupling tensors of node ``k``'s paths by output entry."""
    d = paths.diagram
    node = d.nodes[k]
    x1, x2 = (d.operand_irreps(a) for a in node.args)
    off1, off2 = _offsets(x1), _offsets(x2)
    mine = [p for p in paths.paths if p.node == k]
    groups = []
    for entry in sorted({p.out_entry for p in mine}):
        ps = tuple(p for p in mine if p.out_entry == entry)
        dim = ps[0].out.dim
        g = np.zeros((off2[-1], off1[-1], dim, len(ps)))
        for n, p in enumerate(ps):
            c = fuse_coupling(d.group, p.irs[0], p.irs[1], p.out).values * p.coefficient
            a, b = p.inputs
            g[off2[b]:off2[b + 1], off1[a]:off1[a + 1], :, n] = c.transpose(1, 0, 2)
        groups.append(OutputGroup(entry, ps, dim, g))
    return GroupedNode(k, x1[0].mul, (off1[-1], off2[-1]), tuple(groups))

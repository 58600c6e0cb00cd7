"""Path expansion: an irreps-level coupling becomes its set of concrete labelled paths.

Each fuse node's paths come from the coupling rules (:func:`fusiondsl.core.coupling.expand_fuse`),
in the node's coupling order, with dependent paths of symmetric powers pruned
(:mod:`fusiondsl.passes.symmetric`); this pass numbers them, normalises them as e3nn does and
gives each its weight slice (:class:`fusiondsl.ir.paths.Paths`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import TYPE_CHECKING

from fusiondsl.core.coupling import expand_fuse
from fusiondsl.core.irreps import Irrep
from fusiondsl.ir.paths import IrrepNormalization, LinearBlock, Path, PathNormalization, Paths
from fusiondsl.passes.symmetric import prune_node

if TYPE_CHECKING:
    from fusiondsl.ir.diagram import Diagram


def _alpha_irrep(irs: Sequence[Irrep], labels: Sequence[Irrep], norm: str) -> float:
    """e3nn's irrep normalisation, step by step along the coupling chain."""
    if norm == "none":
        return 1.0
    alpha, left = 1.0, irs[0]
    for ir, k in zip(irs[1:], labels):
        alpha *= k.dim if norm == "component" else left.dim * ir.dim
        left = k
    return alpha


def root(x: Fraction) -> float:
    """``sqrt(x)`` rounded once to float64: the value the kernel IR's exact factor rounds to.

    ``math.sqrt(a / b)`` rounds twice, and is then an ulp off for 3% of the paths.
    """
    with localcontext() as ctx:
        ctx.prec = 50
        return float((Decimal(x.numerator) / Decimal(x.denominator)).sqrt())


def _node_paths(d: Diagram, k: int, norm: tuple[str, str], start: int) -> list[Path]:
    node = d.nodes[k]
    node = dataclasses.replace(node, args=node.coupled_args)
    layout = d.irreps_out if k == len(d.nodes) - 1 else None
    local, _ = expand_fuse([d.operand_irreps(a) for a in node.args], node.mode, node.keep, layout)
    if layout is not None:  # an intermediate's layout has one entry per path: keep them all
        # repeated operands: independent paths only
        local = prune_node(d, node, local)
    totals: dict[int, int] = {}
    counts: dict[int, int] = {}
    for lp in local:
        totals[lp.out_entry] = totals.get(lp.out_entry, 0) + lp.channels.num_elements
        counts[lp.out_entry] = counts.get(lp.out_entry, 0) + 1
    out, offset = [], 0
    for i, lp in enumerate(local):
        alpha = _alpha_irrep(lp.irs, (*lp.labels, lp.out), norm[0])
        x = {"element": totals[lp.out_entry],
             "path": lp.channels.num_elements * counts[lp.out_entry], "none": 1}[norm[1]]
        ratio = Fraction(round(alpha), x) if x > 0 else Fraction(round(alpha))
        shape = lp.channels.weight_shape
        out.append(Path(start + i, k, lp.inputs, lp.irs, lp.muls, lp.labels, lp.out,
                        lp.out_entry, lp.channels.out_mul, node.mode, shape, offset,
                        root(ratio)))
        offset += math.prod(shape) if shape is not None else 0
    return out


def _linear_blocks(d: Diagram, k: int, path_norm: str) -> list[LinearBlock]:
    node = d.nodes[k]
    source = d.operand_irreps(node.args[0])
    blocks, offset = [], 0
    for o, out in enumerate(node.irreps):
        ins = [(i, m) for i, m in enumerate(source) if m.ir == out.ir]
        fan_in = sum(m.mul for _, m in ins)
        for i, m in ins:
            x = {"element": fan_in, "path": m.mul * len(ins), "none": 1}[path_norm]
            norm = root(Fraction(1, x))
            blocks.append(LinearBlock(k, i, o, out.ir, m.mul, out.mul, offset, norm))
            offset += m.mul * out.mul
    return blocks


def expand(
    d: Diagram,
    irrep_normalization: IrrepNormalization = "component",
    path_normalization: PathNormalization = "element",
) -> Paths:
    """Expand every fuse and linear node of a checked diagram into paths and blocks."""
    paths: list[Path] = []
    linears: list[LinearBlock] = []
    numel: list[int] = []
    for k, node in enumerate(d.nodes):
        if node.op == "fuse":
            new = _node_paths(d, k, (irrep_normalization, path_normalization), len(paths))
            paths += new
            numel.append(sum(p.weight_numel for p in new))
        elif node.op == "linear":
            blocks = _linear_blocks(d, k, path_normalization)
            linears += blocks
            numel.append(sum(b.weight_numel for b in blocks))
        else:
            numel.append(0)
    return Paths(d, tuple(paths), tuple(linears), tuple(numel),
                 irrep_normalization, path_normalization)

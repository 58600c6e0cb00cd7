"""Rendering of a neighbour sum hoisted by an F-move (see :mod:`fusiondsl.plan.hoist_fmove`).

First the mixed weights (one small matrix product per forward: the 6j matrix times the
node's weight block), then per edge each prefix ``b ⊗ c → k'`` gated and summed over
neighbours, then per node each final coupling ``h[i] ⊗ k' → J`` scaled by its mixed weight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.backends.einsum.hoist import emit_prefix
from fusiondsl.core.coupling import Coupling
from fusiondsl.ir.diagram import FuseNode, Operand
from fusiondsl.plan.contraction import path_contraction

if TYPE_CHECKING:
    from fusiondsl.backends.einsum.lower import EinsumLowering
    from fusiondsl.plan.hoist_fmove import FMoveHoist


def absorbed(low: EinsumLowering, k: int) -> bool:
    """Whether node ``k`` is the inner fuse of an F-move (then say so, and emit nothing)."""
    for fm in low.plan.fmoves:
        if fm is not None and fm.inner == k:
            outer = low.d.operand_name(Operand("node", fm.node))
            low.em.comment(f"not computed per edge: {outer} below recouples it by an F-move")
            return True
    return False


def fmove_hoisted(low: EinsumLowering, k: int, node: FuseNode, fm: FMoveHoist) -> None:
    """Emit one neighbour sum hoisted by an F-move: mixed weights, prefixes, finals."""
    em = low.em
    a, b, c = (low.d.operand_name(op) for op in fm.operands)
    em.comment(f"hoisted by an F-move: ({a} ⊗ {b} → k) ⊗ {c} → J = Σ_k' M[k, k'] "
               f"{a} ⊗ ({b} ⊗ {c} → k') → J,")
    em.comment("M[k, k'] = (-1)^(a+b+c+J) (2k'+1) {a b k; c J k'} (the 6j recoupling matrix); "
               f"{b} ⊗ {c} → k' is summed over neighbours, {a} couples once per node")
    weights = _emit_mix(low, k, fm)
    prefixes = []
    for n, pre in enumerate(fm.prefixes):
        em.comment(f"prefix {n}: {pre.describe()} (per edge, summed over j)")
        prefixes.append(emit_prefix(low, k, node, fm.operands[1:], pre, n)[0])
    first: set[int] = set()
    for n, coupling in enumerate(fm.couplings):
        result = _emit_coupling(low, fm, n, prefixes[coupling.inputs[1]])
        for r, final in enumerate(fm.finals):
            if final.coupling == n:
                _emit_final(low, k, fm, r, result, weights, first)


def _emit_mix(low: EinsumLowering, k: int, fm: FMoveHoist) -> str | None:
    """``m_w = self.fmove_m @ weights``: row r holds the weights of weighted term r."""
    shape = fm.left[0].weight_shape
    if shape is None:
        return None  # no weights: each final coupling gets a constant (see _emit_final)
    base = low.target(k, 0)[:-2]
    name = f"fmove_{base}"
    num_finals, num_paths = len(fm.finals), len(fm.left)
    low.st.couplings.setdefault(name, Coupling(
        name, np.array(fm.mix, dtype=np.float64),
        f"F-move of {base}: {num_finals} weighted terms x {num_paths} paths, "
        "coefficient × 6j matrix M[k, k']"))
    w = low.weight_slice(k, fm.left[0].weight_offset, (num_paths, *shape))
    low.em.comment(f"mixed weights: {base}_w[r] = Σ_p {name}[r, p] · (weights of path p), "
                   "in the forward so that the parameters stay those of the unhoisted layer")
    low.em.line(f"{base}_w = self.{name} @ {w}")
    return f"{base}_w"


def _emit_coupling(low: EinsumLowering, fm: FMoveHoist, n: int, prefix: str) -> str:
    """One per-node coupling ``h[i] ⊗ (prefix) → J``, centre first; returns its variable."""
    p, centre = fm.couplings[n], fm.operands[0]
    pre = fm.prefixes[p.inputs[1]]
    into = ", ".join(f"{low.target(fm.node, f.out_entry)} (path{'s' if len(f.sources) > 1 else ''}"
                     f" {', '.join(map(str, f.sources))})" for f in fm.finals if f.coupling == n)
    low.em.comment(f"coupling {n}: {p.irs[0]} ⊗ (prefix {p.inputs[1]}: {pre.describe()}) → "
                   f"{p.out} (per node), into {into}")
    c = path_contraction(p, False)
    views = []
    for o in c.operands:
        if o.role.startswith("cg"):
            views.append(f"self.{low.couplings_of(p)[0].name}")
            continue
        view = prefix if o.role == "x1" else low.entry(Operand(centre.kind, centre.index),
                                                       p.inputs[0])  # not gathered
        views.append(view if len(o.subscripts) == 3 else f"{view}[:, 0]")
    return low.contract(c, views)


def _emit_final(low: EinsumLowering, k: int, fm: FMoveHoist, r: int, result: str,
                weights: str | None, first: set[int]) -> None:
    """Add one coupling, times the mixed weight of final term ``r``, into its output entry."""
    if weights is None:
        expr = f"{sum(fm.mix[r])!r} * {result}"
    elif fm.left[0].weight_shape:
        expr = f"{result} * {weights}[{r}, :, None]"
    else:
        expr = f"{result} * {weights}[{r}]"
    entry = fm.finals[r].out_entry
    target = low.target(k, entry)
    low.em.line(f"{target} = {target} + {expr}" if entry in first else f"{target} = {expr}")
    first.add(entry)

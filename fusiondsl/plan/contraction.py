"""Contraction plans: how each path's einsum is evaluated, as plain data the lowerings read.

A :class:`Contraction` is one einsum over named operands (input entries, coupling tensors,
weights) with a pairwise order chosen by opt_einsum (``optimal`` for small problems, ``dp``
beyond: ``auto`` and ``greedy`` cost 2.5–10× more on fusion trees, see BACKGROUND.md). FLOPs
are counted dense here; the sparse cost model refines them.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import opt_einsum

from fusiondsl.ir.paths import Path

# Representative batch size used to choose contraction orders (orders rarely depend on it).
PLANNING_BATCH = 1024
BATCH, CHANNELS = "z", "uvw"
# Channel-wise weights only scale the result: applying them after the contraction keeps the
# coupling a GEMM with (batch, channel) as rows, as e3nn does, instead of a per-channel bmm.
SCALED_AFTER = ("uuu", "path")
_LABELS = [c for c in string.ascii_lowercase if c not in BATCH + CHANNELS]
# A node's paths with one einsum (the same subscripts; only sizes differ) share a few pairwise
# orders instead of one each, as long as their dense FLOPs stay within this fraction of every
# path taking its own optimum. fusion4's 327 paths then run 9 orders (+1.7%) instead of 70,
# so generated code has a handful of schedules per node instead of one per path.
SHARED_ORDER_SLACK = 0.02


@dataclass(frozen=True)
class Operand:
    """One einsum operand: a role (``x0``, ``cg1``, ``w``), its subscripts and shape."""

    role: str
    subscripts: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class PairStep:
    """One pairwise contraction: operand positions (in the running list) and its einsum."""

    positions: tuple[int, ...]
    equation: str


@dataclass(frozen=True)
class Contraction:
    """An einsum over operands with the pairwise order to evaluate it."""

    operands: tuple[Operand, ...]
    output: str
    steps: tuple[PairStep, ...]
    flops: int

    @property
    def equation(self) -> str:
        """The whole einsum, e.g. ``zui,zvj,ijk,uvw->zwk``."""
        return ",".join(o.subscripts for o in self.operands) + "->" + self.output


def order(operands: Sequence[Operand], output: str) -> Contraction:
    """Choose the pairwise order of one einsum with opt_einsum (never ``auto``)."""
    eq = ",".join(o.subscripts for o in operands) + "->" + output
    steps, flops = _order(eq, tuple(o.shape for o in operands))
    return Contraction(tuple(operands), output, steps, flops)


@functools.lru_cache(maxsize=4096)
def _order(eq: str, shapes: tuple[tuple[int, ...], ...]) -> tuple[tuple[PairStep, ...], int]:
    """Memoised: paths of one diagram share a handful of equation shapes."""
    if len(shapes) == 1:
        return (PairStep((0,), eq),), 0
    strategy = "optimal" if len(shapes) <= 5 else "dp"
    _, info = opt_einsum.contract_path(eq, *shapes, shapes=True, optimize=strategy)
    steps = tuple(PairStep(tuple(c[0]), c[2]) for c in info.contraction_list)
    return steps, int(info.opt_cost)


def order_flops(c: Contraction, steps: Sequence[PairStep]) -> int:
    """Dense FLOPs of ``c`` evaluated in the pairwise order ``steps`` (opt_einsum's count)."""
    sizes = {}
    for o in c.operands:
        sizes.update(zip(o.subscripts, o.shape))
    return sum(factor * math.prod(sizes[x] for x in letters)
               for letters, factor in _step_terms(tuple(steps)))


@functools.lru_cache(maxsize=4096)
def _step_terms(steps: tuple[PairStep, ...]) -> tuple[tuple[str, int], ...]:
    """Per step: the letters it spans and opt_einsum's operation factor (see ``flop_count``)."""
    terms = []
    for step in steps:
        inputs, output = step.equation.split("->")
        letters = "".join(sorted(set(inputs) - {","}))
        inner = bool(set(letters) - set(output))
        terms.append((letters, max(1, len(step.positions) - 1) + inner))
    return tuple(terms)


def share_orders(cs: Sequence[Contraction],
                 slack: float = SHARED_ORDER_SLACK) -> tuple[Contraction, ...]:
    """The same contractions, where those with one einsum share as few pairwise orders as can.

    Greedy, per einsum: start from the order that is cheapest over all of them, add the order
    that saves most until the total is within ``slack`` of every one's own optimum; each then
    takes the cheapest order chosen. With ``slack=0`` every contraction keeps a cheapest order.
    """
    out = list(cs)
    einsums: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for n, c in enumerate(cs):
        einsums.setdefault((c.equation, tuple(o.role for o in c.operands)), []).append(n)
    for members in einsums.values():
        orders = list(dict.fromkeys(cs[n].steps for n in members))
        if len(orders) == 1:
            continue
        rows: dict[tuple[tuple[int, ...], ...], list[int]] = {}  # paths of equal sizes share one
        for n in members:
            shapes = tuple(o.shape for o in cs[n].operands)
            if shapes not in rows:
                rows[shapes] = [order_flops(cs[n], steps) for steps in orders]
        cost = [rows[tuple(o.shape for o in cs[n].operands)] for n in members]
        bound = sum(cs[n].flops for n in members) * (1 + slack)
        best: list[int | None] = [None] * len(members)  # per member: cheapest order chosen
        chosen: list[int] = []
        while len(chosen) < len(orders) and (
                not chosen or sum(row[b] for row, b in zip(cost, best)) > bound):
            totals = {o: sum(row[o] if b is None else min(row[o], row[b])
                             for row, b in zip(cost, best))
                      for o in range(len(orders)) if o not in chosen}
            o = min(totals, key=totals.__getitem__)
            chosen.append(o)
            best = [o if b is None or row[o] < row[b] else b for row, b in zip(cost, best)]
        for n, row, b in zip(members, cost, best):
            c = cs[n]
            out[n] = Contraction(c.operands, c.output, orders[b], row[b])
    return tuple(out)


def path_contraction(p: Path, external: bool) -> Contraction:
    """The einsum of one path: inputs ``[z, mul, dim]``, its coupling chain, its weights.

    A channel-wise operand of multiplicity 1 broadcasts: it enters as ``[z, dim]``.
    ``external`` weights carry the batch index (one weight vector per sample).
    """
    n = len(p.irs)
    m, k = _LABELS[:n], _LABELS[n : 2 * n - 1]
    chans, out_ch, wsub = _channels(p)
    ops = [
        Operand(f"x{i}", BATCH + chans[i] + m[i],
                (PLANNING_BATCH, *((p.muls[i],) if chans[i] else ()), p.irs[i].dim))
        for i in range(n)
    ]
    dims = [ir.dim for ir in (*p.labels, p.out)]
    left, left_dim = m[0], p.irs[0].dim
    for step in range(n - 1):
        ops.append(Operand(f"cg{step}", left + m[step + 1] + k[step],
                           (left_dim, p.irs[step + 1].dim, dims[step])))
        left, left_dim = k[step], dims[step]
    if wsub is not None and p.mode not in SCALED_AFTER:
        wshape = tuple(p.weight_shape or ())
        if external:
            wsub, wshape = BATCH + wsub, (PLANNING_BATCH, *wshape)
        ops.append(Operand("w", wsub, wshape))
    return order(ops, BATCH + out_ch + k[n - 2])


def _channels(p: Path) -> tuple[list[str], str, str | None]:
    """Channel subscripts per operand, for the output, and for the weights (mode rules)."""
    if p.mode in ("uvw", "uvu", "uvv", "uuw", "uvuv"):
        if p.weight_shape is None:  # e3nn's weightless binary modes sum the missing index
            return {"uvu": (["u", "v"], "u", None), "uvv": (["u", "v"], "v", None),
                    "uuw": (["u", "u"], "", None), "uvuv": (["u", "v"], "uv", None)}[p.mode]
        return {
            "uvw": (["u", "v"], "w", "uvw"),
            "uvu": (["u", "v"], "u", "uv"),
            "uvv": (["u", "v"], "v", "uv"),
            "uuw": (["u", "u"], "w", "uw"),
            "uvuv": (["u", "v"], "uv", "uv"),
        }[p.mode]
    chans = ["u" if mul == p.out_mul else "" for mul in p.muls]
    wsub = {"uuu": "u", "path": "", "none": None}[p.mode] if p.weight_shape is not None else None
    return chans, "u", wsub

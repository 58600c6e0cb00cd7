"""Contraction plans: how each path's einsum is evaluated, as plain data the lowerings read.

A :class:`Contraction` is one einsum over named operands (input entries, coupling tensors,
weights) with a pairwise order chosen by opt_einsum (``optimal`` for small problems, ``dp``
beyond: ``auto`` and ``greedy`` cost 2.5–10× more on fusion trees, see BACKGROUND.md). FLOPs
are counted dense here; the sparse cost model refines them.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import opt_einsum

from fusiondsl.passes.expand import LinearBlock, Path, Paths

if TYPE_CHECKING:
    from fusiondsl.plan.cost import Cost
    from fusiondsl.plan.grouped import GroupedNode
    from fusiondsl.plan.hoist_fmove import FMoveHoist

# Representative batch size used to choose contraction orders (orders rarely depend on it).
PLANNING_BATCH = 1024
BATCH, CHANNELS = "z", "uvw"
# Channel-wise weights only scale the result: applying them after the contraction keeps the
# coupling a GEMM with (batch, channel) as rows, as e3nn does, instead of a per-channel bmm.
SCALED_AFTER = ("uuu", "path")
_LABELS = [c for c in string.ascii_lowercase if c not in BATCH + CHANNELS]


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


Strategy = Literal["auto", "autotune", "per-path", "grouped"]
DEFAULT_BATCH = 4096


@dataclass(frozen=True)
class Plan:
    """How to evaluate a diagram: per node, a strategy, its contractions, its weights.

    Attributes:
        paths: the expanded diagram.
        node_paths, node_contractions: per node, its paths and one contraction each
            (the per-path strategy; kept for every node, for reports and fallbacks).
        node_linears: per node, its linear blocks (empty for fuse/cat nodes).
        weight_offsets: per node, start of its weights in the internal or external vector.
        internal_numel, external_numel: sizes of the two weight vectors.
        node_strategy: per node, ``per-path`` or ``grouped`` (``-`` for cat/linear).
        node_grouped: per node, its grouped plan when that strategy was chosen.
        node_costs: per node, the cost of every candidate strategy (cost model).
        batch: the batch size the choice was made for.
        hoisted: per node, whether its neighbour sum is hoisted (centre last or F-move; the
            inner node an F-move absorbs is marked too).
        fmoves: per node, its F-move hoisting (see :mod:`fusiondsl.plan.hoist_fmove`) or ``None``.
    """

    paths: Paths
    node_paths: tuple[tuple[Path, ...], ...]
    node_contractions: tuple[tuple[Contraction, ...], ...]
    node_linears: tuple[tuple[LinearBlock, ...], ...]
    weight_offsets: tuple[int, ...]
    internal_numel: int
    external_numel: int
    node_strategy: tuple[str, ...] = ()
    node_grouped: tuple[GroupedNode | None, ...] = ()
    node_costs: tuple[dict[str, Cost], ...] = field(default=(), compare=False)
    batch: int = DEFAULT_BATCH
    hoisted: tuple[bool, ...] = ()
    fmoves: tuple[FMoveHoist | None, ...] = ()

    @property
    def strategy(self) -> str:
        """The strategies used, e.g. ``grouped`` or ``per-path+grouped``."""
        used = sorted({s for s in self.node_strategy if s != "-"})
        return "+".join(used) or "per-path"

    def summary(self) -> str:
        """One line for headers and reports."""
        costs = [c[s] for c, s in zip(self.node_costs, self.node_strategy) if s in c]
        if not costs:
            return self.strategy
        total = sum(costs[1:], costs[0]).at(self.batch)
        from fusiondsl.plan.cost import fmt

        return (f"{self.strategy} (cost model, batch {self.batch}): {fmt(total['flops'])} "
                f"FLOPs from nonzeros, {fmt(total['bytes'])}B moved, "
                f"peak intermediate {fmt(total['peak'])}B")


def _choose(costs: dict[str, Cost], strategy: Strategy, batch: int) -> str:
    if strategy != "auto":
        return strategy if strategy in costs else "per-path"
    return min(costs, key=lambda name: costs[name].at(batch)["seconds"])


def make_plan(
    paths: Paths, strategy: Strategy = "auto", batch: int = DEFAULT_BATCH, hoist: bool = True
) -> Plan:
    """Plan every node: candidate strategies costed by the model, the cheapest chosen.

    Args:
        paths: the expanded diagram.
        strategy: ``auto`` (cost model), or force ``per-path`` / ``grouped`` where eligible.
        batch: batch size the cost model ranks the strategies at.
        hoist: allow neighbour sums to be hoisted (see :mod:`fusiondsl.plan.hoist`).
    """
    from fusiondsl.plan.cost import grouped_cost, per_path_cost
    from fusiondsl.plan.grouped import grouped_eligible, grouped_node

    d = paths.diagram
    node_paths = tuple(tuple(p for p in paths.paths if p.node == k) for k in range(len(d.nodes)))
    node_linears = tuple(
        tuple(b for b in paths.linears if b.node == k) for k in range(len(d.nodes))
    )
    contractions = tuple(
        tuple(path_contraction(p, paths.external(k)) for p in ps)
        for k, ps in enumerate(node_paths)
    )
    offsets, sizes = [], {True: 0, False: 0}
    for k, numel in enumerate(paths.node_weight_numel):
        ext = paths.external(k)
        offsets.append(sizes[ext])
        sizes[ext] += numel
    chosen, grouped, costs = [], [], []
    for k, node in enumerate(d.nodes):
        if node.op != "fuse":
            chosen.append("-")
            grouped.append(None)
            costs.append({})
            continue
        options = {"per-path": per_path_cost(paths, k, contractions[k])}
        g = grouped_node(paths, k) if grouped_eligible(paths, k) else None
        if g is not None:
            options["grouped"] = grouped_cost(paths, g)
        pick = _choose(options, strategy, batch)
        chosen.append(pick)
        grouped.append(g if pick == "grouped" else None)
        costs.append(options)
    from fusiondsl.plan.hoist import hoistable
    from fusiondsl.plan.hoist_fmove import fmove_plans

    fmoves = fmove_plans(paths, chosen) if hoist else (None,) * len(d.nodes)
    moved = {k for f in fmoves if f is not None for k in (f.node, f.inner)}
    hoisted = tuple(k in moved or (hoist and chosen[k] == "per-path" and hoistable(paths, k))
                    for k in range(len(d.nodes)))
    return Plan(paths, node_paths, contractions, node_linears, tuple(offsets), sizes[False],
                sizes[True], tuple(chosen), tuple(grouped), tuple(costs), batch, hoisted, fmoves)

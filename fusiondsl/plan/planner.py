"""The planner: per fuse node, the cheapest strategy by the cost model, and the hoisting.

:func:`make_plan` reads the paths of a diagram and returns a :class:`Plan`: per node, one
:class:`~fusiondsl.plan.contraction.Contraction` per path, the strategy the cost model picks
(``per-path`` or ``grouped``), and whether its neighbour sum is hoisted (centre last or F-move).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fusiondsl.ir.paths import LinearBlock, Path, Paths
from fusiondsl.plan.contraction import Contraction, path_contraction, share_orders
from fusiondsl.plan.cost import Cost, fmt, grouped_cost, per_path_cost
from fusiondsl.plan.grouped import GroupedNode, grouped_eligible, grouped_node
from fusiondsl.plan.hoist import hoistable
from fusiondsl.plan.hoist_fmove import FMoveHoist, fmove_plans

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
    d = paths.diagram
    node_paths = tuple(tuple(p for p in paths.paths if p.node == k) for k in range(len(d.nodes)))
    node_linears = tuple(
        tuple(b for b in paths.linears if b.node == k) for k in range(len(d.nodes))
    )
    contractions = tuple(
        share_orders([path_contraction(p, paths.external(k)) for p in ps])
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
    fmoves = fmove_plans(paths, chosen) if hoist else (None,) * len(d.nodes)
    moved = {k for f in fmoves if f is not None for k in (f.node, f.inner)}
    hoisted = tuple(k in moved or (hoist and chosen[k] == "per-path" and hoistable(paths, k))
                    for k in range(len(d.nodes)))
    return Plan(paths, node_paths, contractions, node_linears, tuple(offsets), sizes[False],
                sizes[True], tuple(chosen), tuple(grouped), tuple(costs), batch, hoisted, fmoves)

"""Shared pairwise orders (planner): a node's paths with the same einsum share a few orders.

``share_orders`` keeps the node within ``SHARED_ORDER_SLACK`` of every path's own optimum.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.program import load
from fusiondsl.passes.expand import expand
from fusiondsl.plan.contraction import (
    SHARED_ORDER_SLACK,
    order_flops,
    path_contraction,
    share_orders,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fd"))


def _trees(path: Path) -> list[Diagram]:
    return [d for d in load(str(path)).diagrams.values() if isinstance(d, Diagram)]


def _node_contractions(d: Diagram) -> list[list]:
    paths = expand(d)
    return [[path_contraction(p, paths.external(k)) for p in paths.paths if p.node == k]
            for k in range(len(d.nodes))]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_shared_orders_stay_within_the_slack(path: Path) -> None:
    for d in _trees(path):
        for cs in _node_contractions(d):
            if not cs:
                continue
            # our count of an order's FLOPs is opt_einsum's, for the order it chose
            assert [order_flops(c, c.steps) for c in cs] == [c.flops for c in cs]
            own = sum(c.flops for c in cs)
            exact = share_orders(cs, 0.0)
            assert [c.flops for c in exact] == [c.flops for c in cs]
            shared = share_orders(cs)
            assert own <= sum(c.flops for c in shared) <= own * (1 + SHARED_ORDER_SLACK)
            for c, s in zip(cs, shared):
                assert (s.operands, s.output) == (c.operands, c.output)
                assert s.flops == order_flops(c, s.steps)
            assert len({c.steps for c in shared}) <= len({c.steps for c in cs})


def test_fusion4_runs_few_orders() -> None:
    (d,) = _trees(ROOT / "examples" / "fusion4.fd")
    (cs,) = _node_contractions(d)
    assert len({c.steps for c in cs}) == 70
    assert len({c.steps for c in share_orders(cs)}) <= 10

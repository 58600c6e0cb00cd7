"""Shared pairwise orders (planner) and one loop per shared schedule (einsum lowering).

A node's paths with the same einsum share a few pairwise orders (``share_orders``, within
``SHARED_ORDER_SLACK`` of every path's own optimum), and the einsum module writes a schedule
that several paths share once, as a loop over a table of them. Both must change nothing but
the text: every example and a few hundred random programs give the same values and first
derivatives (float64) as the module written one block per path with each path's own order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import fusiondsl
from fusiondsl.backends.einsum import hoist, lower
from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn import layer_cache
from fusiondsl.nn.program import load
from fusiondsl.passes.expand import expand
from fusiondsl.plan import planner
from fusiondsl.plan.contraction import (
    SHARED_ORDER_SLACK,
    order_flops,
    path_contraction,
    share_orders,
)

sys.path.insert(0, str(Path(__file__).parent))
from specgen import random_program
from test_random_specs import compile64, derivatives, inputs, max_error

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fd"))
SEEDS = range(200)
LOOP = "one loop over their table"


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


def _plain(mp: pytest.MonkeyPatch) -> None:
    """One block per path, each path in its own cheapest order: what the loops replace."""
    mp.setattr(lower, "LOOP_MIN_PATHS", 10**9)
    mp.setattr(planner, "share_orders", lambda cs: share_orders(cs, 0.0))
    mp.setattr(hoist, "share_orders", lambda cs: share_orders(cs, 0.0))  # hoisted finals
    mp.setattr(layer_cache, "load", lambda k, backend: None)  # the key hashes code, not patches
    mp.setattr(layer_cache, "store", lambda *args, **kwargs: None)


def _same(prog: fusiondsl.Program, name: str) -> bool:
    """Whether the looped module equals the plain one; returns whether it has a loop."""
    layer = compile64(prog, name)
    with pytest.MonkeyPatch.context() as mp:
        _plain(mp)
        plain = compile64(prog, name)
    assert LOOP not in plain.source
    plain.load_state_dict(layer.state_dict())
    xs = inputs(layer)
    err = max_error(derivatives(plain, xs), derivatives(layer, xs))
    assert err < 1e-12, f"{name}: loops differ from one block per path by {err:.2e}"
    return LOOP in layer.source


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_equal_one_block_per_path(path: Path) -> None:
    prog = fusiondsl.load(str(path))
    for d in _trees(path):
        _same(prog, d.name)


def test_random_programs_equal_one_block_per_path() -> None:
    looped = 0
    for seed in SEEDS:
        text, name, features = random_program(seed)
        if "form:graph" in features:
            continue
        try:
            prog = fusiondsl.loads(text)
        except fusiondsl.FusionError:
            continue  # refused constructs are test_random_specs' business
        looped += _same(prog, name)
    assert looped >= 50, f"only {looped} of {len(SEEDS)} programs had a loop: test is too weak"

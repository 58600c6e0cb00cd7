"""Neighbour sums: hoisting equals the plain sum, and graphs relabel with their outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.nn.testing import equivariance_error, random_inputs
from fusiondsl.passes.expand import expand
from fusiondsl.plan.hoist import coupling_order, hoist_report, hoistable

ROOT = Path(__file__).resolve().parent.parent
BLOCK = """
let X = 3x(0e + 1o + 2e)
diagram block(h: X, y: edge sh(2), g: edge 3x0e) -> o: X {
    m = sum_j fuse{h[i], h[j], y} * g -> 0e + 1o + 2e
    o = linear(cat(h, m))
}
"""


def _pair(text: str = BLOCK) -> tuple[torch.nn.Module, torch.nn.Module]:
    prog = fusiondsl.loads(text)
    plain = prog.compile(backend="einsum", hoist=False)
    hoisted = prog.compile(backend="einsum", hoist=True)
    hoisted.load_state_dict(plain.state_dict())
    return plain.double(), hoisted.double()


def test_hoisted_plan_equals_plain_sum() -> None:
    plain, hoisted = _pair()
    assert hoisted.plan.hoisted[0] and not plain.plan.hoisted[0]
    assert "summed over neighbours" in hoisted.source
    xs = random_inputs(plain, num_nodes=9, degree=4, seed=2)
    torch.testing.assert_close(hoisted(*xs), plain(*xs), atol=1e-12, rtol=1e-10)
    assert equivariance_error(hoisted, seed=3) < 1e-10


@pytest.mark.parametrize(("old", "new"), [
    ("-> 0e + 1o + 2e\n", "-> 0e + 1o + 2e weights uuu\n"),  # weights scale the per-node part
    ("g: edge 3x0e", "g: edge 1x0e"),  # a 1-channel gate keeps the prefix's 3 channels
])
def test_hoisted_weights_and_one_channel_gates(old: str, new: str) -> None:
    assert old in BLOCK
    plain, hoisted = _pair(BLOCK.replace(old, new))
    assert hoisted.plan.hoisted[0]
    xs = random_inputs(plain, num_nodes=6, degree=3, seed=7)
    torch.testing.assert_close(hoisted(*xs), plain(*xs), atol=1e-12, rtol=1e-10)


def test_hoisted_gradients_and_second_derivatives() -> None:
    small = BLOCK.replace("3x(0e + 1o + 2e)", "2x(0e + 1o)").replace("sh(2)", "sh(1)")
    _, hoisted = _pair(small.replace("3x0e", "2x0e").replace("-> 0e + 1o + 2e", "-> 0e + 1o"))
    xs = random_inputs(hoisted, num_nodes=3, degree=2, seed=4)
    xs = [x.requires_grad_() if x.is_floating_point() else x for x in xs]
    assert torch.autograd.gradcheck(hoisted, xs)
    assert torch.autograd.gradgradcheck(hoisted, xs)


def test_relabelling_nodes_permutes_outputs() -> None:
    _, layer = _pair()
    h, y, g, edge_index = random_inputs(layer, num_nodes=7, degree=3, seed=5)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    inverse = torch.argsort(perm)  # node n is called inverse[n] after relabelling
    out = layer(h, y, g, edge_index)
    moved = layer(h[perm], y, g, inverse[edge_index])
    torch.testing.assert_close(moved, out[perm], atol=1e-12, rtol=1e-10)


def test_centre_goes_last_only_in_free_neighbour_sums() -> None:
    d = fusiondsl.loads(BLOCK).diagram()
    assert coupling_order(d.nodes[0]) == (1, 2, 0)
    fixed = BLOCK.replace("fuse{h[i], h[j], y}", "fuse(h[i], h[j], y)")
    d2 = fusiondsl.loads(fixed).diagram()
    assert coupling_order(d2.nodes[0]) == (0, 1, 2) and not hoistable(expand(d2), 0)


def test_cost_report_shows_per_edge_and_per_node_costs() -> None:
    d = fusiondsl.load(ROOT / "examples" / "fusion_block.fd").diagram()
    r = hoist_report(expand(d), 0)
    assert r["hoisted_per_edge"] < r["unhoisted_per_edge"] and r["prefixes"] < r["paths"]
    assert r["hoisted_per_node"] > 0

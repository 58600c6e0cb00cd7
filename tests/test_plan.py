"""The planner: every strategy computes the same numbers; the cost model on hand-computed cases."""

from __future__ import annotations

import pytest
import sympy
import torch

import fusiondsl
from fusiondsl.cli.report import cost_report
from fusiondsl.nn.testing import random_inputs
from fusiondsl.passes.expand import expand
from fusiondsl.plan.cost import B, grouped_cost, per_path_cost
from fusiondsl.plan.grouped import grouped_eligible, grouped_node
from fusiondsl.plan.order import ranked_trees, trees
from fusiondsl.plan.planner import make_plan

SPECS = {
    "uvw": "diagram d(x: 3x0e + 3x1o + 3x2e, y: 0e + 1o + 2e) -> z: 2x0e + 4x1o + 2x2e "
           "{ z = fuse(x, y) weights uvw }",
    "uvu_external": "diagram d(x: 3x(0e + 1o + 2e), y: sh(3)) -> z: 3x(0e + 1o + 2e + 3o) "
                    "{ z = fuse(x, y) weights uvu external }",
    "uuu": "diagram d(x: 2x(0e + 1o), y: 0e + 1o) -> z: 2x(0e + 1o + 1e) "
           "{ z = fuse(x, y) weights uuu }",
    "path_external": "diagram d(x: 2x(0e + 1o), y: 0e + 1o) -> z: 2x(0e + 1o) "
                     "{ z = fuse(x, y) weights path external }",
    "none": "diagram d(x: 2x(1o + 2e), y: 1o) -> z: 2x(1o + 2e + 3o) { z = fuse(x, y) }",
    "uvw_external": "diagram d(x: 2x(0e + 1o), y: 1o) -> z: 3x(0e + 1o + 1e) "
                    "{ z = fuse(x, y) weights uvw external }",
}


pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_strategy_gives_the_same_numbers(name: str) -> None:
    prog = fusiondsl.loads(SPECS[name])
    per_path = prog.compile(backend="einsum", strategy="per-path")
    grouped = prog.compile(backend="einsum", strategy="grouped")
    assert grouped.plan.strategy == "grouped" and per_path.plan.strategy == "per-path"
    grouped.load_state_dict(per_path.state_dict())
    xs = [x.requires_grad_() if x.is_floating_point() else x
          for x in random_inputs(per_path, batch=4, seed=11)]
    a, b = per_path(*xs), grouped(*xs)
    torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    ga = torch.autograd.grad(a.pow(2).sum(), xs)
    gb = torch.autograd.grad(b.pow(2).sum(), xs)
    for x, y in zip(ga, gb):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-10)
    assert torch.autograd.gradgradcheck(grouped, [x.detach().requires_grad_() for x in xs])


def test_grouped_is_refused_where_it_does_not_apply() -> None:
    text = "diagram d(x: 2x1o, y: 2x1o) -> z: 2x0e { z = fuse(x, y) weights uuu }"
    paths = expand(fusiondsl.loads(text).diagram())
    assert not grouped_eligible(paths, 0)
    assert make_plan(paths, "grouped").strategy == "per-path"


def test_per_path_cost_by_hand() -> None:
    """1o ⊗ 1o → 0e, uvu: wigner_3j(1, 1, 0) has 3 nonzeros, so per sample
    2·u·v·3 (couplings) + 2·u·v·1 (weights) = 8·u·v FLOPs."""
    d = fusiondsl.loads("diagram d(x: 4x1o, y: 1o) -> z: 4x0e { z = fuse(x, y) weights uvu }")
    plan = make_plan(expand(d.diagram()))
    cost = per_path_cost(plan.paths, 0, plan.node_contractions[0])
    mul_x, mul_y = sympy.symbols("mul_x mul_y", positive=True, integer=True)
    assert sympy.simplify(cost.flops - 8 * B * mul_x * mul_y) == 0
    assert cost.at(10)["flops"] == 8 * 10 * 4 * 1


def test_grouped_cost_by_hand() -> None:
    """x: u×(0e + 1o) (D1 = 4), y: 1o (D2 = 3), output 1o from 0e ⊗ 1o and 1o ⊗ 1o... no:
    1o ⊗ 1o gives 0e/1e/2e, so output 1o has one path (0e ⊗ 1o → 1o), k·P = 3."""
    d = fusiondsl.loads("diagram d(x: 2x(0e + 1o), y: 1o) -> z: 2x1o "
                        "{ z = fuse(x, y) weights uuu }").diagram()
    paths = expand(d)
    g = grouped_node(paths, 0)
    assert g.dims == (4, 3) and [grp.num_paths for grp in g.groups] == [1]
    cost = grouped_cost(paths, g).at(1)
    dense = 2 * 3 * 4 * 3 + 2 * 2 * 4 * 3 + 2 * 2 * 3  # y@G, bmm, weights
    assert cost["dense_flops"] == dense
    assert cost["flops"] == 2 * 2 * 3 + 2 * 2 * 3  # nnz(w3j(0,1,1)) = 3, then weights


def test_cost_model_picks_grouped_for_the_benchmark_layers() -> None:
    text = ("diagram c(h: 32x(0e + 1o + 2e), y: sh(3)) -> m: 32x(0e + 1o + 2e + 3o) "
            "{ m = fuse(h, y) weights uvu external }")
    plan = make_plan(expand(fusiondsl.loads(text).diagram()), batch=10000)
    assert plan.node_strategy == ("grouped",)
    assert set(plan.node_costs[0]) == {"per-path", "grouped"}


def test_binary_trees_are_enumerated_once() -> None:
    # (2n - 3)!! distinct trees over n labelled leaves
    assert [sum(1 for _ in trees(tuple(range(n)))) for n in (2, 3, 4, 5)] == [1, 3, 15, 105]


def test_tree_costs_rank_cheap_orders_first() -> None:
    text = ("diagram d(a: 4x(0e + 1o + 2e), b: 4x0e, c: 4x(0e + 1o + 2e)) -> o: 4x(0e + 1o) "
            "{ o = fuse{a, b, c} weights uuu }")
    d = fusiondsl.loads(text).diagram()
    ranked = ranked_trees(d, 0)
    costs = [c for c, _ in ranked]
    assert costs == sorted(costs) and costs[0] < costs[-1]


def test_cost_report_text_and_json() -> None:
    text = "\n".join(SPECS[n].replace("diagram d", f"diagram {n}") for n in ("uvw", "none"))
    prog = fusiondsl.loads(text)
    report = cost_report(prog, 1000)
    assert "* " in report and "per-path" in report and "grouped" in report
    import json

    data = json.loads(cost_report(prog, 1000, as_json=True))
    assert {r["diagram"] for r in data} == {"uvw", "none"}
    assert all(sum(row["chosen"] for row in r["plans"]) == 1 for r in data)

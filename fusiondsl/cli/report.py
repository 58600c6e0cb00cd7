"""``fusiondsl cost``: what each diagram costs under every candidate plan, side by side.

For every fuse node: the strategies the planner considered (per-path, grouped), their FLOPs
counted from nonzeros, dense FLOPs actually executed, bytes moved, peak intermediate memory,
the symbolic FLOP formula in the batch size ``B`` and the channel multiplicities, and the
roofline time estimate; the chosen one is marked ``*``. For ``fuse{…}`` nodes, the coupling
orders considered, with the choice and its runner-up. For neighbour sums, the hoisting (centre
last, or by an F-move for a fixed order that couples the centre first): FLOPs per edge before
and after, and per node after.
"""

from __future__ import annotations

import json
from typing import Any

from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.program import Program
from fusiondsl.passes.expand import expand
from fusiondsl.plan.cost import fmt
from fusiondsl.plan.hoist import hoist_report, hoistable
from fusiondsl.plan.hoist_fmove import fmove_report, recouple_node
from fusiondsl.plan.order import order_report
from fusiondsl.plan.planner import Plan, make_plan


def plan_rows(plan: Plan, batch: int) -> list[dict[str, Any]]:
    """One row per (node, strategy): numbers at ``batch`` and the symbolic FLOP formula."""
    rows = []
    d = plan.paths.diagram
    for k, costs in enumerate(plan.node_costs):
        for name, cost in costs.items():
            row = {"node": d.nodes[k].name, "strategy": name,
                   "chosen": plan.node_strategy[k] == name, **cost.at(batch),
                   "flops_formula": str(cost.flops), "bytes_formula": str(cost.bytes)}
            rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> list[str]:
    head = (f"  {'node':<10} {'strategy':<10} {'FLOPs':>8} {'dense':>8} {'bytes':>8} "
            f"{'peak':>8} {'ops':>5} {'est. ms':>8}  FLOPs formula")
    lines = [head]
    for r in rows:
        mark = "*" if r["chosen"] else " "
        lines.append(f"{mark} {r['node']:<10} {r['strategy']:<10} {fmt(r['flops']):>8} "
                     f"{fmt(r['dense_flops']):>8} {fmt(r['bytes']):>8} {fmt(r['peak']):>8} "
                     f"{int(r['ops']):>5} {r['seconds'] * 1e3:8.2f}  {r['flops_formula']}")
    return lines


def diagram_report(d: Diagram, batch: int) -> dict[str, Any]:
    """Everything ``fusiondsl cost`` says about one tree diagram, as data."""
    plan = make_plan(expand(d), "auto", batch)
    hoists = [{"node": d.nodes[k].name, **hoist_report(plan.paths, k)}
              for k in range(len(d.nodes)) if hoistable(plan.paths, k)]
    return {"diagram": d.name, "batch": batch, "paths": plan.paths.num_paths,
            "weights": plan.paths.weight_numel, "strategy": plan.strategy,
            "plans": plan_rows(plan, batch), "orders": order_report(d), "hoisting": hoists,
            "fmoves": fmove_rows(plan)}


def fmove_rows(plan: Plan) -> list[dict[str, Any]]:
    """The F-move hoisting of every eligible neighbour sum: costs, and whether it was chosen."""
    rows = []
    for k, node in enumerate(plan.paths.diagram.nodes):
        fm = recouple_node(plan.paths, k)
        if fm is not None:
            rows.append({"node": node.name, "chosen": bool(plan.fmoves and plan.fmoves[k]),
                         **fmove_report(plan.paths, fm)})
    return rows


def _fmove_lines(rows: list[dict[str, Any]]) -> list[str]:
    return [f"  hoisting {h['node']} by an F-move (6j recoupling), "
            f"{'chosen' if h['chosen'] else 'not chosen'}: per edge "
            f"{fmt(h['unhoisted_per_edge'])} FLOPs ({h['paths']} paths) before, "
            f"{fmt(h['hoisted_per_edge'])} ({h['prefixes']} prefixes summed over j) after, plus "
            f"{fmt(h['hoisted_per_node'])} per node ({h['couplings']} couplings with the centre, "
            f"{h['finals']} weighted terms) and {fmt(h['mixing'])} per call to mix the weights"
            for h in rows]


def cost_report(prog: Program, batch: int, as_json: bool = False) -> str:
    """The text (or JSON) report for every tree diagram of a program."""
    reports = [diagram_report(d, batch) for d in prog.diagrams.values()
               if isinstance(d, Diagram)]
    if as_json:
        return json.dumps(reports, indent=2)
    lines = []
    for r in reports:
        lines.append(f"{r['diagram']}: {r['paths']} paths, {r['weights']} weights, "
                     f"batch {batch} -> plan {r['strategy']}  (* = chosen)")
        lines += _table(r["plans"])
        for o in r["orders"]:
            lines.append(f"  coupling order of {o['node']}: chosen {o['chosen']} "
                         f"({fmt(o['chosen_flops'])} FLOPs/sample), runner-up {o['runner_up']} "
                         f"({fmt(o['runner_up_flops'])}), {o['considered']} trees considered")
        for h in r["hoisting"]:
            lines.append(f"  hoisting {h['node']}: per edge {fmt(h['unhoisted_per_edge'])} FLOPs "
                         f"({h['paths']} paths) before, {fmt(h['hoisted_per_edge'])} "
                         f"({h['prefixes']} prefixes summed over j) after, plus "
                         f"{fmt(h['hoisted_per_node'])} per node")
        lines += _fmove_lines(r["fmoves"])
        lines.append("")
    return "\n".join(lines)

"""Compile without sympy: plans ranked by numbers equal the old symbolic ranking, and a fresh
process compiling the examples never imports sympy (timings live in benchmarks/bench_compile.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sympy

import fusiondsl
from fusiondsl.ir.diagram import Diagram
from fusiondsl.passes.expand import expand
from fusiondsl.plan.cost import RATES, ROOFLINE, Cost, batch_symbol, operand_muls
from fusiondsl.plan.planner import make_plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.fd"))
BATCHES = (1, 64, 4096, 1 << 20)
KEYS = ("flops", "dense_flops", "bytes", "peak")


def symbolic_seconds(cost: Cost, values: dict[str, int]) -> Callable[[int], dict[str, float]]:
    """The old way: lambdify the sympy formulas, evaluate them at the numbers, add the roofline."""
    symbols = (batch_symbol(), *(sympy.Symbol(n, positive=True, integer=True) for n in values))
    fns = {k: sympy.lambdify(symbols, cost.formulas[k], [{"Max": max}, "math"]) for k in KEYS}

    def at(batch: int) -> dict[str, float]:
        out = {k: float(fn(batch, *values.values())) for k, fn in fns.items()}
        out["seconds"] = (out["dense_flops"] / RATES[cost.strategy]
                          + out["bytes"] / ROOFLINE["bytes_per_s"]
                          + cost.ops * ROOFLINE["seconds_per_op"])
        return out

    return at


def tree_diagrams() -> list[tuple[str, Diagram]]:
    return [(f"{path.stem}:{name}", d) for path in EXAMPLES
            for name, d in fusiondsl.load(path).diagrams.items() if isinstance(d, Diagram)]


TREES = tree_diagrams()


@pytest.mark.parametrize(("name", "d"), TREES, ids=[name for name, _ in TREES])
def test_numeric_costs_choose_the_plans_the_formulas_choose(name: str, d: Diagram) -> None:
    chosen = {batch: make_plan(expand(d), "auto", batch).node_strategy for batch in BATCHES}
    plan = make_plan(expand(d))
    for k, costs in enumerate(plan.node_costs):
        if not costs:  # cat and linear nodes have no strategies
            continue
        values = {o.name: o.muls[0] for o in operand_muls(plan.paths, k) if len(o.muls) == 1}
        formulas = {s: symbolic_seconds(c, values) for s, c in costs.items()}
        for batch in BATCHES:
            numeric = {s: c.at(batch) for s, c in costs.items()}
            symbolic = {s: at(batch) for s, at in formulas.items()}
            for s in costs:
                for key in (*KEYS, "seconds"):
                    assert numeric[s][key] == pytest.approx(symbolic[s][key], rel=1e-12), (s, key)
            pick = min(symbolic, key=lambda s: symbolic[s]["seconds"])
            assert chosen[batch][k] == pick, (name, batch, k)


CHILD = """
import sys
import fusiondsl
for path in sys.argv[1:]:
    prog = fusiondsl.load(path)
    for name in prog.names:
        prog.compile(name)
print(sorted(m for m in ("sympy", "mpmath") if m in sys.modules))
"""


def compile_in_fresh_process(cache: Path, paths: list[Path]) -> str:
    env = {**os.environ, "FUSIONDSL_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", CHILD, *map(str, paths)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_compiling_never_imports_sympy_cold_or_warm(tmp_path: Path) -> None:
    """Exact coefficients are Racah's formula over Fractions; the cost model ranks numbers."""
    assert compile_in_fresh_process(tmp_path, EXAMPLES) == "[]"  # cold: fills the cache
    assert any(tmp_path.rglob("*.npy"))
    warm = [ROOT / "examples" / "conv.fd", ROOT / "examples" / "fctp.fd"]
    assert compile_in_fresh_process(tmp_path, warm) == "[]"


def test_formulas_still_come_on_request() -> None:
    d = fusiondsl.loads("diagram d(x: 4x1o, y: 1o) -> z: 4x0e { z = fuse(x, y) weights uvu }")
    cost = make_plan(expand(d.diagram())).node_costs[0]["per-path"]
    assert str(cost.flops) == "8*B*mul_x*mul_y"
    assert cost.at(10)["flops"] == 320.0
    from fusiondsl.plan.cost import B

    assert B is batch_symbol()

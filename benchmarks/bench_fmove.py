"""F-move hoisting: neighbour sums with a fixed order that couples h[i] first, on the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fmove.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fmove.py --nodes 200 --repeats 3

Times (median of ``--repeats``, float32, one thread) forward and forward+backward of each case
compiled with ``hoist=True`` and ``hoist=False`` (same weights), checks that they agree, and
saves benchmarks/results/fmove.json. Cases: ``mofd_dense`` (examples/mofd.fd: nested
``fuse(fuse(h[i], h[j]) -> 0e + 1o + 2e, y)``, which the cost model hoists), ``ordered`` (one
ordered node ``fuse(h[i], h[j], y)``, 16 channels), and ``mofd forced`` (the sparse MoFD, one
internal label per sum, which the cost model does *not* hoist: forced here, to check that
choice). The machine may be shared: compare the ratios, not the times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
from datetime import date
from pathlib import Path
from unittest import mock

import torch

import fusiondsl
from fusiondsl.nn.testing import random_graph
from fusiondsl.nn.timing import make_pass, median_ms
from fusiondsl.plan import hoist_fmove

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
MOFD = (ROOT / "examples" / "mofd.fd").read_text()
ORDERED = """
let X = 16x(0e + 1o + 2e)
diagram ordered(h: X, y: edge sh(2), g: edge 16x0e) -> o: X {
    m = sum_j fuse(h[i], h[j], y) * g -> 0e + 1o + 2e weights uuu
    o = linear(cat(h, m))
}
"""
CASES = {"mofd_dense": (MOFD, "mofd_dense", False), "ordered": (ORDERED, "ordered", False),
         "mofd forced": (MOFD, "mofd", True)}
KINDS = ("forward", "forward+backward")


def pair(case: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """One case compiled with hoist=True and hoist=False, sharing one set of weights (float32)."""
    text, name, forced = CASES[case]
    prog = fusiondsl.loads(text)
    always = mock.patch.object(hoist_fmove, "cheaper", lambda report, degree=None: True)
    with always if forced else contextlib.nullcontext():
        hoisted = prog.compile(name, backend="einsum", hoist=True)
    plain = prog.compile(name, backend="einsum", hoist=False)
    if not any(hoisted.plan.fmoves):
        raise RuntimeError(f"{case}: no F-move hoisting was planned")
    hoisted.load_state_dict(plain.state_dict())
    return hoisted.float(), plain.float()


def graph_inputs(layer: torch.nn.Module, nodes: int, degree: int,
                 dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Leaf tensors (requires_grad) for the legs of a neighbourhood layer, then ``edge_index``."""
    gen = torch.Generator().manual_seed(0)
    edge_index = random_graph(nodes, degree, gen)
    rows = {"node": nodes, "edge": edge_index.shape[1]}
    xs = [torch.randn(rows[leg.domain], leg.irreps.dim, generator=gen, dtype=dtype)
          .requires_grad_() for leg in layer.diagram.legs]
    return [*xs, edge_index]


def measure(case: str, nodes: int, degree: int, repeats: int) -> dict:
    """Times of both layers, their float64 agreement and the cost model's FLOP counts."""
    hoisted, plain = pair(case)
    xs = graph_inputs(plain, nodes, degree)
    row: dict = {"case": case, "ms": {}}
    for kind in KINDS:
        row["ms"][kind] = {label: median_ms(make_pass(layer, xs, kind), repeats=repeats)
                           for label, layer in (("hoisted", hoisted), ("unhoisted", plain))}
    small = graph_inputs(plain, 50, 4, torch.float64)
    with torch.no_grad():
        a, b = hoisted.double()(*small), plain.double()(*small)
    row["max_abs_diff_float64"] = (a - b).abs().max().item()
    row["flops"] = [hoist_fmove.fmove_report(hoisted.plan.paths, fm)
                    for fm in hoisted.plan.fmoves if fm is not None]
    return row


def main() -> None:
    """Time, check and save."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--degree", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"{date.today()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, 1 thread, float32; {args.nodes} nodes x {args.degree} "
          f"neighbours; median of {args.repeats}; ratio = unhoisted / hoisted")
    print(f"| {'case':<12} | {'pass':<17} | {'hoisted ms':>10} | {'unhoisted ms':>12} | ratio |")
    print(f"|{'-' * 14}|{'-' * 19}|{'-' * 12}|{'-' * 14}|-------|")
    rows = []
    for case in CASES:
        row = measure(case, args.nodes, args.degree, args.repeats)
        rows.append(row)
        for kind, ms in row["ms"].items():
            print(f"| {case:<12} | {kind:<17} | {ms['hoisted']:10.1f} | {ms['unhoisted']:12.1f} "
                  f"| {ms['unhoisted'] / ms['hoisted']:5.2f} |")
    for row in rows:
        print(f"{row['case']}: hoisted vs unhoisted max |diff| {row['max_abs_diff_float64']:.2g} "
              "(float64)")
    OUT.mkdir(exist_ok=True)
    (OUT / "fmove.json").write_text(json.dumps({
        "date": str(date.today()), "torch": torch.__version__, "threads": 1,
        "dtype": "float32", "nodes": args.nodes, "degree": args.degree,
        "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"saved {OUT / 'fmove.json'}")


if __name__ == "__main__":
    main()

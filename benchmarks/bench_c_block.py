"""Neighbourhood blocks on the C backend vs the einsum backend, on a random graph (CPU).

    .venv/bin/python benchmarks/bench_c_block.py              # 1,000 nodes, 16 neighbours
    .venv/bin/python benchmarks/bench_c_block.py --nodes 200  # a quicker run

Times (median, float32) forward and forward+backward of ``examples/nequip.fd`` (internal
``uvu`` weights) and of MoFD's interaction (``mace_layer(8, 2, "8x(0e + 1o + 2e)",
fusion_labels=("0e", "1o", "2e"))``: per-edge external ``uvu`` weights, gated fusions hoisted
by F-moves, ``linear(cat(…))``), each compiled with ``backend="einsum"`` and ``backend="c"``
with the same weights; checks that they agree. The machine is shared: run it when nothing else
is busy, and compare ratios, not times.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fusiondsl
from fusiondsl.models.specs import mace_layer
from fusiondsl.nn.testing import random_graph
from fusiondsl.nn.timing import make_pass, median_ms

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "nequip": ((ROOT / "examples" / "nequip.fd").read_text(), "nequip"),
    "mofd:interaction": (mace_layer(8, 2, "8x(0e + 1o + 2e)", fusion_labels=("0e", "1o", "2e")),
                         "interaction"),
}


def pair(case: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The einsum and the C layer of one case, in float32, sharing one set of weights."""
    text, name = CASES[case]
    prog = fusiondsl.loads(text)
    ref, lay = prog.compile(name), prog.compile(name, backend="c")
    lay.load_state_dict(ref.state_dict())
    return ref.float(), lay.float()


def graph_inputs(layer: torch.nn.Module, nodes: int, degree: int) -> list[torch.Tensor]:
    """Leaf tensors for the legs (and external weights, one row per edge), then edge_index."""
    gen = torch.Generator().manual_seed(0)
    edge_index = random_graph(nodes, degree, gen)
    rows = {"node": nodes, "edge": edge_index.shape[1]}
    xs = [torch.randn(rows[leg.domain], leg.irreps.dim, generator=gen).requires_grad_()
          for leg in layer.diagram.legs]
    if layer.external_weight_numel:
        xs.append(torch.randn(rows["edge"], layer.external_weight_numel, generator=gen)
                  .requires_grad_())
        return [*xs[:-1], edge_index, xs[-1]]
    return [*xs, edge_index]


def main() -> None:
    """Print one markdown row per case, pass and thread count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--degree", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| case | threads | pass | einsum ms | c ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        ref, lay = pair(case)
        xs = graph_inputs(ref, args.nodes, args.degree)
        with torch.no_grad():
            want, got = ref(*xs), lay(*xs)
        assert (want - got).abs().max().item() <= 1e-4 * max(1.0, want.abs().max().item())
        for threads in args.threads:
            torch.set_num_threads(threads)
            for kind in ("forward", "forward+backward"):
                times = [median_ms(make_pass(layer, xs, kind), args.repeats)
                         for layer in (ref, lay)]
                print(f"| {case} | {threads} | {kind} | {times[0]:.1f} | {times[1]:.1f} | "
                      f"{times[0] / times[1]:.1f}x |", flush=True)


if __name__ == "__main__":
    main()

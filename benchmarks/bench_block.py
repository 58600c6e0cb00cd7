"""The neighbourhood fusion block (examples/fusion_block.fd) on a random graph, on the CPU.

    .venv/bin/python benchmarks/bench_block.py              # 1,000 nodes, 16 neighbours each
    .venv/bin/python benchmarks/bench_block.py --nodes 200  # a quicker run

Times (median of 5, float32, 2 threads) forward and forward+backward of the block compiled
with and without hoisting, and of the same block written by hand with e3nn (two
``o3.TensorProduct`` per edge, gate, ``index_add_`` over receivers, ``torch.cat``,
``o3.Linear``); measures peak memory (RSS growth of one forward+backward in a fresh process);
checks that the hoisted and unhoisted layers agree; saves benchmarks/results/block.json.
The machine is shared: run it when nothing else is busy, and compare ratios, not times.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch

import fusiondsl
from fusiondsl.nn.testing import random_graph
from fusiondsl.nn.timing import make_pass, median_ms

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results"
SPEC = ROOT / "examples" / "fusion_block.fd"
IMPLS = ("hoisted", "unhoisted", "e3nn")
KINDS = ("forward", "forward+backward")
Built = tuple[torch.nn.Module, list[torch.Tensor]]


def fusiondsl_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """The block compiled with hoist=True and hoist=False, sharing one set of weights."""
    prog = fusiondsl.load(SPEC)
    hoisted = prog.compile("fusion_block", backend="einsum", hoist=True)
    plain = prog.compile("fusion_block", backend="einsum", hoist=False)
    hoisted.load_state_dict(plain.state_dict())
    return hoisted, plain


def graph_inputs(layer: torch.nn.Module, nodes: int, degree: int, dtype: torch.dtype,
                 seed: int = 0) -> list[torch.Tensor]:
    """Leaf tensors (requires_grad) for the block's legs, then ``edge_index``."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = random_graph(nodes, degree, gen)
    rows = {"node": nodes, "edge": edge_index.shape[1]}
    xs = [torch.randn(rows[leg.domain], leg.irreps.dim, generator=gen, dtype=dtype)
          .requires_grad_() for leg in layer.diagram.legs]
    return [*xs, edge_index]


class E3nnBlock(torch.nn.Module):
    """The block by hand with e3nn: ((h[i] ⊗ h[j]) ⊗ y) * g per edge, summed, cat, Linear.

    The two tensor products carry the same paths as fusiondsl's ``fuse{h[i], h[j], y}`` in
    written order, channel-wise and without weights: 'uuu' for h[i] ⊗ h[j], then 'uvu' with
    v = 1 for ⊗ y (e3nn's 'uuu' needs equal multiplicities; y has one channel). One
    intermediate entry per first coupling, one result entry per path, as fusiondsl's ``m``.
    """

    def __init__(self, ours: torch.nn.Module) -> None:
        """Build the e3nn modules from the paths of the unhoisted fusiondsl layer."""
        super().__init__()
        from e3nn import o3

        d = ours.diagram
        h, y = (str(leg.irreps) for leg in d.legs[:2])
        hs = o3.Irreps(h)
        paths = [p for p in ours.plan.paths.paths if p.node == 0]
        mids: dict[tuple[int, int, str], int] = {}
        ins1, ins2 = [], []
        for p in paths:
            key = (p.inputs[0], p.inputs[1], str(p.labels[0]))
            if key not in mids:
                mids[key] = len(mids)
                ins1.append((key[0], key[1], mids[key], "uuu", False))
            ins2.append((mids[key], p.inputs[2], p.out_entry, "uvu", False))
        mul = hs[0].mul
        mid = o3.Irreps([(mul, o3.Irrep(label)) for (_, _, label) in mids])
        m_irreps = o3.Irreps(str(d.nodes[0].irreps))
        self.tp1 = o3.TensorProduct(hs, hs, mid, ins1)
        self.tp2 = o3.TensorProduct(mid, y, m_irreps, ins2)
        self.linear = o3.Linear(hs + m_irreps, o3.Irreps(str(ours.irreps_out)))
        channel = [c for m, ir in m_irreps for c in range(m) for _ in range(ir.dim)]
        self.register_buffer("gate_index", torch.tensor(channel))

    def forward(self, h: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
                edge_index: torch.Tensor) -> torch.Tensor:
        """Node features ``[N, dim]``; edge tensors ``[E, dim]``; ``edge_index`` (i, j)."""
        i, j = edge_index
        u = self.tp2(self.tp1(h.index_select(0, i), h.index_select(0, j)), y)
        u = u * g.index_select(1, self.gate_index)
        m = u.new_zeros(h.shape[0], u.shape[1]).index_add_(0, i, u)
        return self.linear(torch.cat([h, m], dim=1))


def build(impl: str, nodes: int, degree: int) -> Built:
    """One implementation in float32 with its inputs."""
    hoisted, plain = fusiondsl_pair()
    module = {"hoisted": hoisted, "unhoisted": plain}.get(impl) or E3nnBlock(plain)
    module = module.to(torch.float32)
    return module, graph_inputs(plain, nodes, degree, torch.float32)


def max_difference(nodes: int, degree: int) -> tuple[float, float]:
    """Largest absolute and relative difference of hoisted and unhoisted outputs (float32)."""
    hoisted, plain = fusiondsl_pair()
    xs = graph_inputs(plain, nodes, degree, torch.float32)
    with torch.no_grad():
        a, b = hoisted.float()(*xs), plain.float()(*xs)
    diff = (a - b).abs().max().item()
    return diff, diff / b.abs().max().item()


def peak_memory_mb(impl: str, nodes: int, degree: int) -> float | None:
    """Peak RSS growth of one forward+backward (float32), in a fresh process."""
    cmd = [sys.executable, __file__, "--memory", impl, "--nodes", str(nodes),
           "--degree", str(degree)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _status_kb(field: str) -> int:
    """A field of /proc/self/status (``VmRSS``, ``VmHWM``) in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _memory_child(impl: str, nodes: int, degree: int) -> None:
    """Print the peak RSS growth (MB) of one forward+backward above the RSS before it.

    Building the layers (compiling, e3nn's codegen) can peak higher than the pass itself, so
    the high-water mark is reset first (``/proc/self/clear_refs``, Linux); elsewhere this falls
    back to ``ru_maxrss`` growth, as bench_layers.py does.
    """
    torch.set_num_threads(2)
    module, xs = build(impl, nodes, degree)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kb("VmRSS")
        make_pass(module, xs, "forward+backward")()
        print((_status_kb("VmHWM") - before) / 1024)
    except (OSError, KeyError):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        make_pass(module, xs, "forward+backward")()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)


def _cell(ms: float, ours: float) -> str:
    return f"{ms:9.1f} ({ms / ours:4.2f}x)"


def main() -> None:
    """Time, measure, check and save."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--degree", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--memory", metavar="IMPL", choices=IMPLS)
    args = p.parse_args()
    if args.memory:
        _memory_child(args.memory, args.nodes, args.degree)
        return
    torch.set_num_threads(2)
    print(f"{date.today()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, float32; "
          f"{args.nodes} nodes x {args.degree} neighbours; ms, ratios = impl / hoisted")
    absolute, relative = max_difference(args.nodes, args.degree)
    print(f"hoisted vs unhoisted: max |diff| {absolute:.3g} (relative {relative:.3g})")
    rows = []
    for kind in KINDS:
        times = {}
        for impl in IMPLS:
            module, xs = build(impl, args.nodes, args.degree)
            times[impl] = median_ms(make_pass(module, xs, kind), repeats=args.repeats)
        rows.append({"pass": kind, "ms": times})
    memory = {impl: peak_memory_mb(impl, args.nodes, args.degree) for impl in IMPLS}
    head = f"| {'pass':<17} | " + " | ".join(f"{impl:>17}" for impl in IMPLS) + " |"
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        ours = r["ms"]["hoisted"]
        print(f"| {r['pass']:<17} | " + " | ".join(
            f"{_cell(r['ms'][impl], ours):>17}" for impl in IMPLS) + " |")
    ours = memory["hoisted"]
    print(f"| {'peak memory, MB':<17} | " + " | ".join(
        f"{'-':>17}" if memory[impl] is None else
        f"{_cell(memory[impl], ours) if ours else f'{memory[impl]:.1f}':>17}"
        for impl in IMPLS) + " |")
    OUT.mkdir(exist_ok=True)
    (OUT / "block.json").write_text(json.dumps({
        "date": str(date.today()), "torch": torch.__version__, "threads": 2,
        "dtype": "float32", "nodes": args.nodes, "degree": args.degree,
        "repeats": args.repeats, "rows": rows, "memory_mb": memory,
        "hoisted_vs_unhoisted_max_abs": absolute, "hoisted_vs_unhoisted_max_rel": relative,
    }, indent=1))
    print(f"saved {OUT / 'block.json'}")


if __name__ == "__main__":
    main()

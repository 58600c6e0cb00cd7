"""Time each C kernel of a layer alone: forward (``out``), operand gradients (``xs``), weights.

    .venv/bin/python benchmarks/bench_c_kernels.py [LAYER ...] [--rows 10000] [--threads 1]
        [--repeats 15] [--rounds 3] [--dtype float32]

A LAYER is an example's diagram (``fctp``, ``so3``, ``product_basis``…: every tree in
``examples/`` the C backend lowers) or a benchmark layer of ``benchmarks/peers.py`` written
``bench:fctp``. Each kernel runs on random rows through the C runtime's own launchers (the
build flags of ``fusiondsl.backends.c.runtime``), and the line is the *minimum* over
``--repeats`` calls, per round: the kernels' own time, with little of the machine's noise.

For an A/B of two trees, run it with each on ``PYTHONPATH`` (and a fresh
``FUSIONDSL_CACHE_DIR`` each), alternating rounds; ``benchmarks/RESULTS.md`` (eighth session)
has a table made that way.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import SPECS

import fusiondsl
from fusiondsl.backends.c.runtime import NodeKernels, launch, launch_joint

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("fctp", "bench:fctp", "product_basis", "so3", "conv", "nequip", "single_path")


def compile_c(name: str) -> torch.nn.Module:
    """The C layer of an example diagram, or of a benchmark layer (``bench:NAME``)."""
    if name.startswith("bench:"):
        return fusiondsl.loads(SPECS[name[6:]]).compile(backend="c")
    for path in sorted((ROOT / "examples").glob("*.fd")):
        prog = fusiondsl.load(str(path))
        if name in prog.diagrams:
            return prog.compile(name, backend="c")
    raise SystemExit(f"no example diagram named {name!r}")


def node_kernels(layer: torch.nn.Module) -> list[NodeKernels]:
    """The fuse nodes' kernels, from the generated module's globals (the checked class
    subclasses the generated one)."""
    found = [v for cls in type(layer).__mro__ if "forward" in vars(cls)
             for v in vars(cls)["forward"].__globals__.values()]
    return list({id(k): k for k in found if isinstance(k, NodeKernels)}.values())


def random_roles(node: NodeKernels, rows: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A random tensor for every role: ``[rows, width]``, internal weights ``[count]``."""
    gen = torch.Generator().manual_seed(0)
    return {r: torch.randn((w,) if r == "w" and not node.external else (rows, w),
                           generator=gen, dtype=dtype)
            for r, w in zip(node.roles, node.widths)}


def best_ms(fn, repeats: int) -> float:
    """Minimum wall time of ``fn`` over ``repeats`` calls (after one warm-up), in ms."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def kernel_times(node: NodeKernels, rows: int, dtype: torch.dtype,
                 repeats: int) -> dict[str, float]:
    """Best ms of the forward, the operand gradients (one call) and the weight gradient."""
    t = random_roles(node, rows, dtype)

    def without(target: str) -> list[torch.Tensor | None]:
        return [None if r == target else t[r] for r in node.roles]

    times = {"out": best_ms(lambda: launch(node, "out", without("out")), repeats)}
    if node.joint:
        times["xs"] = best_ms(lambda: launch_joint(node, [t[r] for r in node.roles]), repeats)
    if "w" in node.roles:
        times["w"] = best_ms(lambda: launch(node, "w", without("w")), repeats)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layers", nargs="*", default=list(DEFAULT))
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    nodes = {name: node_kernels(compile_c(name)) for name in args.layers}
    print(f"rows {args.rows}, {args.threads} thread(s), {args.dtype}, best of {args.repeats} "
          "calls per round (ms)")
    for rnd in range(args.rounds):
        for name, kernels in nodes.items():
            for node in kernels:
                times = kernel_times(node, args.rows, dtype, args.repeats)
                cells = "  ".join(f"{role} {ms:8.3f}" for role, ms in times.items())
                print(f"round {rnd + 1}  {name:<14} {node.name:<4} {cells}")


if __name__ == "__main__":
    main()

"""Time each C kernel of a layer alone: forward (``out``), operand gradients (``xs``), weights.

    .venv/bin/python benchmarks/bench_c_kernels.py [LAYER ...] [--rows 10000] [--threads 1]
        [--repeats 15] [--rounds 3] [--dtype float32] [--against TREE]

A LAYER is an example's diagram (``fctp``, ``so3``, ``product_basis``…: every tree in
``examples/`` the C backend lowers) or a benchmark layer of ``benchmarks/peers.py`` written
``bench:fctp``. Each kernel runs on random rows through the C runtime's own launchers (the
build flags of ``fusiondsl.backends.c.runtime``), and the line is the *minimum* over
``--repeats`` calls, per round: the kernels' own time, with little of the machine's noise.

For an A/B of code generation or flags, ``--against TREE`` (another checkout, e.g. ``git
worktree add /tmp/old HEAD~1``) takes each layer's C source and build flags from that tree
too (in a subprocess) and times both in this process, call after call, so that the machine's
drift hits both alike: on this shared 2-core machine the same kernel's best-of-10 moved
between 4.0 and 7.4 ms from one process to the next, while interleaved pairs stayed within
a few percent (``benchmarks/RESULTS.md``, ninth session).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import SPECS

import fusiondsl
from fusiondsl.backends.c import runtime
from fusiondsl.backends.c.runtime import NodeKernels, launch, launch_joint

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("fctp", "bench:fctp", "product_basis", "so3", "conv", "nequip", "single_path")


def spec_of(name: str) -> tuple[str, str | None]:
    """``(spec text, diagram name)`` of an example diagram or a benchmark layer (``bench:``)."""
    if name.startswith("bench:"):
        return SPECS[name[6:]], None
    for path in sorted((ROOT / "examples").glob("*.fd")):
        text = path.read_text()
        if name in fusiondsl.loads(text).diagrams:
            return text, name
    raise SystemExit(f"no example diagram named {name!r}")


def compile_c(name: str) -> torch.nn.Module:
    """The C layer of an example diagram, or of a benchmark layer (``bench:NAME``)."""
    text, diagram = spec_of(name)
    prog = fusiondsl.loads(text)
    return prog.compile(diagram, backend="c") if diagram else prog.compile(backend="c")


# Run by ``--against`` under the other tree's fusiondsl: specs in (JSON on stdin), each
# layer's C source and that tree's build flags out (JSON on stdout).
OTHER_TREE = """
import json, sys
import fusiondsl
from fusiondsl.backends.c import runtime
out = {}
for name, (text, diagram) in json.load(sys.stdin).items():
    prog = fusiondsl.loads(text)
    layer = prog.compile(diagram, backend="c") if diagram else prog.compile(backend="c")
    out[name] = layer.source.split('C_SOURCE = r\"\"\"', 1)[1].split('\"\"\"', 1)[0]
json.dump({"sources": out, "flags": runtime.flags()}, sys.stdout)
"""


def other_tree(tree: Path, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """The C sources of ``names`` and the build flags, as the checkout ``tree`` makes them."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", OTHER_TREE], input=json.dumps(
        {n: spec_of(n) for n in names}), capture_output=True, text=True, env=env, check=False,
        cwd=tree)  # not this tree's folder: `python -c` puts the working directory first
    if done.returncode:
        raise SystemExit(f"--against {tree}: {done.stderr.strip().splitlines()[-1]}")
    found = json.loads(done.stdout)
    return found["sources"], found["flags"]


@contextlib.contextmanager
def build_flags(cflags: list[str]) -> Iterator[None]:
    """Builds (and their cache keys) with ``cflags`` instead of this tree's flags."""
    saved = runtime.flags
    runtime.flags = lambda: list(cflags)
    try:
        yield
    finally:
        runtime.flags = saved


def rebuilt(nodes: list[NodeKernels], source: str, cflags: list[str]) -> list[NodeKernels]:
    """The same nodes on the libraries of another source and flags (same functions)."""
    with build_flags(cflags):
        libraries = runtime.load_library(source)
    for node in nodes:
        missing = [f for f in node.functions.values() if not hasattr(libraries["float"], f)]
        if missing:
            raise SystemExit(f"--against: the other tree's kernels lack {', '.join(missing)}")
    return [dataclasses.replace(n, libraries=libraries, _cache={}) for n in nodes]


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


def calls(node: NodeKernels, t: dict[str, torch.Tensor]) -> dict[str, Callable[[], object]]:
    """The forward, the operand gradients (one call) and the weight gradient, on ``t``."""
    def without(target: str) -> list[torch.Tensor | None]:
        return [None if r == target else t[r] for r in node.roles]

    found: dict[str, Callable[[], object]] = {"out": lambda: launch(node, "out", without("out"))}
    if node.joint:
        found["xs"] = lambda: launch_joint(node, [t[r] for r in node.roles])
    if "w" in node.roles:
        found["w"] = lambda: launch(node, "w", without("w"))
    return found


def kernel_times(node: NodeKernels, rows: int, dtype: torch.dtype,
                 repeats: int) -> dict[str, float]:
    """Best ms of the forward, the operand gradients (one call) and the weight gradient."""
    t = random_roles(node, rows, dtype)
    return {role: best_ms(fn, repeats) for role, fn in calls(node, t).items()}


def paired_times(pair: tuple[NodeKernels, NodeKernels], rows: int, dtype: torch.dtype,
                 repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """:func:`kernel_times` of two builds of a node, interleaved call by call."""
    t = random_roles(pair[0], rows, dtype)
    fns = [calls(node, t) for node in pair]
    best: list[dict[str, float]] = [dict.fromkeys(fns[0], float("inf")) for _ in pair]
    for fn in (f for side in fns for f in side.values()):
        fn()  # warm-up
    for _ in range(repeats):
        for role in fns[0]:
            for side, b in zip(fns, best):
                start = time.perf_counter()
                side[role]()
                b[role] = min(b[role], (time.perf_counter() - start) * 1e3)
    return best[0], best[1]


def cells(times: dict[str, float]) -> str:
    return "  ".join(f"{role} {ms:8.3f}" for role, ms in times.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("layers", nargs="*", default=list(DEFAULT))
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--against", type=Path, metavar="TREE",
                    help="another checkout: time its kernels and this tree's, interleaved")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    nodes = {name: node_kernels(compile_c(name)) for name in args.layers}
    print(f"rows {args.rows}, {args.threads} thread(s), {args.dtype}, best of {args.repeats} "
          "calls per round (ms)")
    if args.against:
        sources, cflags = other_tree(args.against, args.layers)
        print(f"this tree: {' '.join(runtime.flags())}\nagainst:   {' '.join(cflags)}")
        others = {n: rebuilt(nodes[n], sources[n], cflags) for n in args.layers}
    for rnd in range(args.rounds):
        for name, kernels in nodes.items():
            for k, node in enumerate(kernels):
                if not args.against:
                    times = kernel_times(node, args.rows, dtype, args.repeats)
                    print(f"round {rnd + 1}  {name:<14} {node.name:<4} {cells(times)}")
                    continue
                theirs, ours = paired_times((others[name][k], node), args.rows, dtype,
                                            args.repeats)
                ratio = "  ".join(f"{r} {theirs[r] / ours[r]:5.2f}x" for r in ours)
                print(f"round {rnd + 1}  {name:<14} {node.name:<4} against {cells(theirs)}")
                print(f"round {rnd + 1}  {name:<14} {node.name:<4} this    {cells(ours)}  "
                      f"(faster by {ratio})")


if __name__ == "__main__":
    main()

"""The kernel IR is complete: its reference executor alone reproduces every compiled layer.

``fusiondsl.kernel.reference`` reads nothing but the kernel IR (after a JSON round trip, so
that the file format carries everything too); its output must equal the einsum layer's in
float64 to 1e-12 (relative to the largest value, at least 1) with the layer's weights, on every
example, with hoisting on and off and with each strategy, and on random programs from
``tests/specgen.py`` (trees, neighbourhood blocks, graphs, SU2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl import FusionError
from fusiondsl.ir.diagram import Diagram
from fusiondsl.kernel import KernelIR, build_kernel_ir, kernel_ir
from fusiondsl.kernel.reference import evaluate, evaluate_graph
from fusiondsl.nn.testing import random_inputs

sys.path.insert(0, str(Path(__file__).parent))
from specgen import random_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [(spec.stem, name) for spec in sorted((ROOT / "examples").glob("*.fd"))
            for name in fusiondsl.load(spec).names]
NUM_RANDOM = 150
TOL = 1e-12


def compile64(prog: fusiondsl.Program, name: str, **options: object) -> torch.nn.Module:
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        layer = prog.compile(name, backend="einsum", **options)
    finally:
        torch.set_default_dtype(old)
    return layer.to(torch.complex128) if layer.diagram.group == "SU2" else layer


def reference(layer: torch.nn.Module, xs: list[torch.Tensor]) -> torch.Tensor:
    """The layer's kernel IR, written to JSON and read back, evaluated on ``xs``."""
    built = build_kernel_ir(layer.diagram) if layer.plan is None else kernel_ir(layer.plan)
    ir = KernelIR.from_json(built.to_json())
    assert ir == built
    if isinstance(ir, KernelIR):
        return evaluate(ir, xs, getattr(layer, "weight", None))
    dtype = next(layer.buffers()).dtype  # a closed graph has no input to take it from
    return evaluate_graph(ir, xs, dtype)


def relative_error(want: torch.Tensor, got: torch.Tensor) -> float:
    assert want.shape == got.shape
    if not want.numel():
        return 0.0
    return (want - got).abs().max().item() / max(1.0, want.abs().max().item())


def check(layer: torch.nn.Module, seed: int = 0) -> None:
    xs = random_inputs(layer, seed=seed, num_nodes=5, degree=3)
    with torch.no_grad():
        want = layer(*xs)
        got = reference(layer, xs)
    assert relative_error(want, got) <= TOL


@pytest.mark.parametrize(("stem", "name"), EXAMPLES, ids=[f"{s}.{n}" for s, n in EXAMPLES])
def test_reference_equals_einsum_on_examples(stem: str, name: str) -> None:
    prog = fusiondsl.load(ROOT / "examples" / f"{stem}.fd")
    layer = compile64(prog, name)
    check(layer)
    d = prog.diagram(name)
    if isinstance(d, Diagram) and d.is_neighbourhood:  # the unhoisted plan too
        check(compile64(prog, name, hoist=False), seed=1)


@pytest.mark.parametrize("strategy", ["per-path", "grouped"])
@pytest.mark.parametrize("stem", ["fctp", "conv", "nequip"])
def test_reference_follows_each_strategy(stem: str, strategy: str) -> None:
    prog = fusiondsl.load(ROOT / "examples" / f"{stem}.fd")
    layer = compile64(prog, stem, strategy=strategy)
    node = kernel_ir(layer.plan).nodes[0]
    assert node.strategy == strategy  # type: ignore[union-attr]
    check(layer)


def test_fmove_hoisting_is_described_and_reproduced() -> None:
    """A fixed order coupling the centre first: the planner recouples it by an F-move."""
    prog = fusiondsl.loads("""diagram d(h: 3x0e + 3x1o + 3x2e, y: edge sh(2), g: edge 3x0e)
        -> o: 3x0e + 3x1o + 3x2e { o = sum_j fuse(h[i], h[j], y) * g weights uuu }""")
    layer = compile64(prog, "d")
    hoist = kernel_ir(layer.plan).nodes[0].hoist  # type: ignore[union-attr]
    assert hoist is not None and hoist.kind == "f-move" and all(hoist.mix)
    check(layer)
    check(compile64(prog, "d", hoist=False), seed=2)


def test_reference_in_float32_rounds_tables_once() -> None:
    layer = compile64(fusiondsl.load(ROOT / "examples" / "fctp.fd"), "fctp").float()
    xs = random_inputs(layer, dtype=torch.float32)
    with torch.no_grad():
        got = reference(layer, xs)
        want = layer(*xs)
    assert got.dtype == torch.float32
    assert relative_error(want, got) <= 1e-5


@pytest.mark.parametrize("seed", range(NUM_RANDOM))
def test_reference_equals_einsum_on_random_programs(seed: int) -> None:
    text, name, _ = random_program(seed)
    try:
        prog = fusiondsl.loads(text)
    except FusionError:
        pytest.skip("a construct the checker refuses (see test_random_specs.REFUSED)")
    check(compile64(prog, name), seed)


def test_reference_refuses_batched_shapes() -> None:
    layer = compile64(fusiondsl.load(ROOT / "examples" / "single_path.fd"), "single_path")
    xs = [x[None] for x in random_inputs(layer)]
    with pytest.raises(ValueError, match=r"takes \[rows, dim\] inputs"):
        reference(layer, xs)

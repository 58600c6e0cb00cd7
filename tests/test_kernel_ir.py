"""The kernel IR: built for every example, printed one line per path, exact, JSON round trip."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import fusiondsl
from fusiondsl.backends.units import kernel_sets
from fusiondsl.cli.main import main
from fusiondsl.core import cg
from fusiondsl.core.diagnostics import InternalError
from fusiondsl.ir.diagram import CatNode, Diagram
from fusiondsl.kernel import Exact, KernelIR, KernelIRError, build_kernel_ir, kernel_ir
from fusiondsl.kernel import build as kernel_build
from fusiondsl.kernel.ir import FuseKernel, GraphKernelIR
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import make_plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [(spec.stem, name) for spec in sorted((ROOT / "examples").glob("*.fd"))
            for name in fusiondsl.load(spec).names]


def example(stem: str, name: str | None = None) -> KernelIR | GraphKernelIR:
    return build_kernel_ir(fusiondsl.load(ROOT / "examples" / f"{stem}.fd").diagram(name or stem))


@pytest.mark.parametrize(("stem", "name"), EXAMPLES, ids=[f"{s}.{n}" for s, n in EXAMPLES])
def test_every_example_prints_and_round_trips(stem: str, name: str) -> None:
    ir = example(stem, name)
    text = ir.to_text()
    back = KernelIR.from_json(ir.to_json())
    assert back == ir and back.to_text() == text and back.to_json() == ir.to_json()
    if isinstance(ir, KernelIR):
        fuses = [n for n in ir.nodes if isinstance(n, FuseKernel)]
        lines = [line for line in text.splitlines() if line.lstrip().startswith("path ")]
        assert len(lines) == sum(len(n.paths) for n in fuses)
    assert all(f"table {t.name} " in text for t in ir.tables)


def test_path_line_names_segments_mode_weights_and_factor() -> None:
    text = example("fctp").to_text()
    assert ("path 6: 1o ⊗ 2e → 1o  uvw  x:1 y:2 → z:1  [u v → w | uvw]  w[1536:1792]  "
            "×0.216506 (1/8*sqrt(3))  w3j_1_2_1") in text


def _float_table(group: str, name: str) -> np.ndarray:
    kind, *spins = name.split("_")
    a = [int(s) for s in spins]
    if kind == "w3j":
        return cg.real_w3j(*a)
    if kind == "cg":
        return np.real(cg.su2_cg(*a)) / np.sqrt(a[2] + 1)
    if kind == "tj":
        return np.real(cg.su2_3j(*a))
    return np.real(cg.su2_metric(*a))


@pytest.mark.parametrize("stem", ["fusion4", "spins", "sixj", "cofd"])
def test_tables_are_the_compilers_coefficients(stem: str) -> None:
    """Every table equals the float64 coefficients the einsum backend embeds: bitwise for
    O3 (both rounded once from the exact surds), to an ulp for SU2."""
    prog = fusiondsl.load(ROOT / "examples" / f"{stem}.fd")
    for name in prog.names:
        ir = build_kernel_ir(prog.diagram(name))
        for t in ir.tables:
            want = _float_table(ir.group, t.name)
            if t.name.startswith("w3j"):
                np.testing.assert_array_equal(t.dense().numpy(), want)
            else:
                np.testing.assert_allclose(t.dense().numpy(), want, rtol=3e-16, atol=3e-16)


@pytest.mark.parametrize("stem", ["fctp", "cofd", "mofd", "fusion4"])
@pytest.mark.parametrize("norms", [("component", "element"), ("norm", "path")])
def test_the_plans_factors_are_the_exact_ones_rounded_once(stem: str,
                                                           norms: tuple[str, str]) -> None:
    """What the einsum backend multiplies by is float(exact factor), bitwise."""
    prog = fusiondsl.load(ROOT / "examples" / f"{stem}.fd")
    for name in prog.names:
        paths = expand(prog.diagram(name), *norms)  # type: ignore[arg-type]
        exact = kernel_build.exact_normalisations(paths)
        assert [p.coefficient for p in paths.paths] == [float(exact[p.index])
                                                         for p in paths.paths]


@pytest.mark.parametrize(("stem", "name"), EXAMPLES, ids=[f"{s}.{n}" for s, n in EXAMPLES])
def test_the_kernel_writers_read_only_the_kernel_ir(stem: str, name: str) -> None:
    """The C and Triton writers' kernel sets come from the IR alone (the same from its JSON),
    and for a node as written they are the plan's own paths, field for field."""
    d = fusiondsl.load(ROOT / "examples" / f"{stem}.fd").diagram(name)
    if not isinstance(d, Diagram) or d.group == "SU2":
        pytest.skip("the kernel backends lower O3/SO3 tree diagrams")
    plan = make_plan(expand(d), "auto", 1000, True)
    ir = kernel_ir(plan)
    back = KernelIR.from_json(ir.to_json())
    for k, node in enumerate(ir.nodes):
        sets = kernel_sets(ir, k)
        assert kernel_sets(back, k) == sets
        if isinstance(node, FuseKernel) and node.hoist is None and not node.absorbed:
            assert sets[0].paths == tuple(plan.node_paths[k])


def test_values_are_rounded_once_to_the_dtype() -> None:
    t = example("fusion4").table("w3j_2_2_2")  # type: ignore[union-attr]
    for dtype in (torch.float32, torch.float64):
        got = t.values(dtype)
        assert got.dtype == dtype
        for v, x in zip(got.tolist(), t.exact):
            exact = x.decimal()
            here = torch.tensor(v, dtype=dtype)
            for side in (-np.inf, np.inf):
                other = torch.nextafter(here, torch.tensor(side, dtype=dtype)).item()
                assert abs(Decimal(v) - exact) <= abs(Decimal(other) - exact)
    assert t.values(torch.complex128).dtype == torch.complex128


@pytest.mark.parametrize("text", ["0", "1", "-1/2", "sqrt(2)", "-sqrt(3)", "1/6*sqrt(6)",
                                  "-1/3*sqrt(2)+1/2*sqrt(6)", "2-1/30*sqrt(30)"])
def test_exact_prints_and_parses_back(text: str) -> None:
    x = Exact.parse(text)
    assert str(x) == text and Exact.parse(str(x)) == x


def test_exact_arithmetic() -> None:
    half = Exact.sqrt(Fraction(1, 2))
    assert half * half == Exact.parse("1/2")
    assert half + half == Exact.parse("sqrt(2)")
    assert str(Exact.sqrt(Fraction(1, 12))) == "1/6*sqrt(3)"
    assert float(Exact.parse("1/3*sqrt(3)")) == 3 ** -0.5
    with pytest.raises(ValueError, match="not an exact number"):
        Exact.parse("1/3*sqrt(x)")


def test_planner_choices_are_recorded() -> None:
    fctp = example("fctp")
    assert fctp.nodes[0].strategy == "grouped" and fctp.nodes[0].groups  # type: ignore[union-attr]
    cofd = example("cofd")
    hoist = cofd.nodes[0].hoist  # type: ignore[union-attr]
    assert hoist is not None and hoist.kind == "centre-last" and not hoist.centre_first
    assert cofd.nodes[0].coupling_order == (1, 2, 0)  # type: ignore[union-attr]
    unhoisted = build_kernel_ir(fusiondsl.load(ROOT / "examples" / "cofd.fd").diagram(),
                                hoist=False)
    assert unhoisted.nodes[0].hoist is None  # type: ignore[union-attr]


def test_a_plan_whose_float_drifts_from_the_exact_value_is_an_internal_error() -> None:
    d = fusiondsl.load(ROOT / "examples" / "single_path.fd").diagram()
    paths = expand(d)
    bad = dataclasses.replace(paths, paths=tuple(
        dataclasses.replace(p, coefficient=p.coefficient * (1 + 1e-9)) for p in paths.paths))
    with pytest.raises(InternalError, match="normalisation of path 0"):
        kernel_ir(make_plan(bad))


def test_a_node_kind_without_a_builder_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(kernel_build.NODE_BUILDERS, CatNode)
    with pytest.raises(KernelIRError, match=r"cannot describe CatNode nodes yet \(node '_c1'"):
        example("nequip")


def test_from_json_reads_only_kernel_ir_types() -> None:
    text = json.dumps({"format": "fusiondsl-kernel-ir/1", "kernel": {"type": "Popen"}})
    with pytest.raises(ValueError, match="not a kernel IR object"):
        KernelIR.from_json(text)
    with pytest.raises(ValueError, match="not a kernel IR file"):
        KernelIR.from_json("{}")


def test_cli_show_kernel_ir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(ROOT / "examples" / "conv.fd"), "--kernel-ir"]) == 0
    out = capsys.readouterr().out
    assert "# kernel IR of 'conv' (group O3): 1 node, 17 paths, 0 internal + 544 external" in out
    assert "path 4: 1o ⊗ 0e → 1o  uvu  h:1 y:0 → m:1  [u v → u | uv]  weight[128:160]" in out
    assert main(["show", str(ROOT / "examples" / "sixj.fd"), "--kernel-ir"]) == 0
    assert "contraction abc,ad,def," in capsys.readouterr().out

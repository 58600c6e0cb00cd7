"""F-move hoisting: a fixed order coupling h[i] first equals the plain neighbour sum."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import fusiondsl
from fusiondsl.cli.report import cost_report
from fusiondsl.core import nj
from fusiondsl.core.irreps import Irrep
from fusiondsl.nn.testing import equivariance_error, random_inputs
from fusiondsl.passes.expand import expand
from fusiondsl.passes.rewrite_fmove import fmove_matrix, fmove_matrix_float, wigner_6j_float
from fusiondsl.plan import hoist_fmove
from fusiondsl.plan.hoist_fmove import fmove_report, recouple_node

ROOT = Path(__file__).resolve().parent.parent
SINGLE = "m = sum_j fuse(h[i], h[j], y) * g -> {keep} weights {mode}"
NESTED = "m = sum_j fuse(fuse(h[i], h[j]) -> {inner}, y) * g -> {keep} weights {mode}"


def _block(group: str, h: str, y: str, fuse: str, gate: str = "2x0e") -> str:
    return (f"group {group}\nlet H = {h}\ndiagram b(h: H, y: edge {y}, g: edge {gate}) -> o: H "
            f"{{\n    {fuse}\n    o = linear(cat(h, m))\n}}\n")


CASES = {
    "O3-uuu": _block("O3", "2x(0e + 1o + 2e)", "sh(2)",
                     SINGLE.format(keep="0e + 1o + 2e", mode="uuu")),
    "O3-odd-path": _block("O3", "2x(0o + 1e + 1o)", "1o + 2o",
                          SINGLE.format(keep="0e + 1e + 1o + 2o", mode="path")),
    "O3-none": _block("O3", "2x(0e + 1o)", "sh(1)",
                      "m = sum_j fuse(h[i], h[j], y) * g -> 0e + 1o + 1e"),
    "SO3-uuu": _block("SO3", "2x(0 + 1 + 2)", "0 + 1 + 2", SINGLE.format(keep="1 + 2", mode="uuu"),
                      "2x0"),
    "SU2-uuu": _block("SU2", "2x(1/2 + 1)", "1/2 + 1", SINGLE.format(keep="1/2 + 3/2",
                                                                   mode="uuu"), "2x0"),
    "nested-1o": _block("O3", "2x(0e + 1o + 2e)", "sh(2)",
                        NESTED.format(inner="1o", keep="0e + 1o + 2e", mode="uuu")),
    "nested-dense-odd": _block("O3", "2x(1o + 2e)", "1o + 1e",
                               NESTED.format(inner="0e + 1e + 2o", keep="1o + 2e + 2o",
                                             mode="path")),
    "output": ("diagram b(h: 2x(0e + 1o), y: edge sh(1), g: edge 2x0e) -> o: 2x(0e + 1o) {\n"
               "    o = sum_j fuse(h[i], h[j], y) * g weights uuu\n}\n"),
}


@pytest.fixture
def always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hoist by an F-move wherever it applies, whatever the cost model says."""
    monkeypatch.setattr(hoist_fmove, "cheaper", lambda report, degree=None: True)


def _pair(text: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    prog = fusiondsl.loads(text)
    plain = prog.compile(backend="einsum", hoist=False)
    hoisted = prog.compile(backend="einsum", hoist=True)
    hoisted.load_state_dict(plain.state_dict())
    dtype = torch.complex128 if "group SU2" in text else torch.float64
    return plain.to(dtype), hoisted.to(dtype)


@pytest.mark.usefixtures("always")
@pytest.mark.parametrize("name", CASES)
def test_recoupled_layer_equals_the_plain_sum(name: str) -> None:
    plain, hoisted = _pair(CASES[name])
    k = next(k for k, n in enumerate(hoisted.diagram.nodes) if getattr(n, "aggregate", False))
    assert hoisted.plan.fmoves[k] is not None and not plain.plan.fmoves[k]
    assert hoisted.weight_numel == plain.weight_numel
    assert "hoisted by an F-move" in hoisted.source and "6j" in hoisted.source
    xs = random_inputs(plain, num_nodes=7, degree=3, seed=1)
    torch.testing.assert_close(hoisted(*xs), plain(*xs), atol=1e-12, rtol=0)
    assert equivariance_error(hoisted, seed=2) < 1e-10


SMALL = {
    "single": _block("O3", "1x(0e + 1o)", "sh(1)", SINGLE.format(keep="0e + 1o", mode="uuu"),
                     "1x0e"),
    "nested": _block("O3", "1x(1o + 2e)", "1o + 1e",
                     NESTED.format(inner="0e + 1e + 2o", keep="1o + 2e + 2o", mode="path"),
                     "1x0e"),
}


@pytest.mark.usefixtures("always")
@pytest.mark.parametrize("name", SMALL)
def test_recoupled_gradients_and_second_derivatives(name: str) -> None:
    _, hoisted = _pair(SMALL[name])
    assert any(hoisted.plan.fmoves)
    xs = random_inputs(hoisted, num_nodes=3, degree=2, seed=4)
    xs = [x.requires_grad_() if x.is_floating_point() else x for x in xs]
    assert torch.autograd.gradcheck(hoisted, xs)
    assert torch.autograd.gradgradcheck(hoisted, xs)


def test_the_cost_model_picks_the_dense_mofd_and_not_the_sparse_one() -> None:
    prog = fusiondsl.load(ROOT / "examples" / "mofd.fd")
    sparse = prog.compile("mofd", backend="einsum")
    dense = prog.compile("mofd_dense", backend="einsum")
    assert not any(sparse.plan.fmoves)  # an internal 0e makes the left tree the cheap one
    inner, outer = 0, 1
    fm = dense.plan.fmoves[outer]
    assert fm is not None and fm.inner == inner and dense.plan.hoisted[inner]
    report = fmove_report(dense.plan.paths, fm)
    assert report["hoisted_per_edge"] < report["unhoisted_per_edge"] / 2
    assert "not computed per edge: m below recouples it" in dense.source
    text = cost_report(prog, 1024)
    assert "hoisting m by an F-move (6j recoupling), chosen: per edge 8.59k FLOPs" in text
    assert "hoisting m0 by an F-move (6j recoupling), not chosen" in text


def test_only_a_centre_first_order_is_recoupled() -> None:
    swapped = CASES["O3-uuu"].replace("fuse(h[i], h[j], y)", "fuse(h[j], h[i], y)")
    assert recouple_node(expand(fusiondsl.loads(swapped).diagram()), 0) is None
    weighted = CASES["nested-1o"].replace("-> 1o, y)", "-> 1o weights uuu, y)")
    d = fusiondsl.loads(weighted).diagram()
    assert not any(recouple_node(expand(d), k) for k in range(len(d.nodes)))
    assert recouple_node(expand(fusiondsl.loads(CASES["O3-uuu"]).diagram()), 0) is not None


def test_float_6j_matches_sympy() -> None:
    rng = random.Random(0)
    for _ in range(300):
        j2s = [rng.randrange(0, 6) for _ in range(6)]
        try:
            want = float(nj.wigner_6j(*j2s))
        except ValueError:
            continue
        assert wigner_6j_float(*j2s) == pytest.approx(want, abs=1e-15)
    irs = [Irrep(2, -1), Irrep(4, 1), Irrep(2, -1), Irrep(2, 1)]  # 1o, 2e, 1o -> 1e
    ks, kps, exact = fmove_matrix("O3", *irs)  # type: ignore[arg-type]
    ks2, kps2, rows = fmove_matrix_float("O3", *irs)  # type: ignore[arg-type]
    assert (ks, kps) == (ks2, kps2) and len(ks) == 2
    assert np.abs(np.array(exact.tolist(), dtype=float) - np.array(rows)).max() < 1e-15

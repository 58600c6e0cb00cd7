"""Symmetric powers and F-moves: pruned counts equal character multiplicities; recoupled
trees give the same outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

import fusiondsl
from fusiondsl.core import cg
from fusiondsl.core.coupling import expand_fuse
from fusiondsl.core.irreps import Irrep, Irreps
from fusiondsl.nn.testing import equivariance_error, random_inputs
from fusiondsl.passes.expand import expand
from fusiondsl.passes.rewrite_fmove import fmove_matrix, recouple
from fusiondsl.passes.symmetric import prune_paths

pytestmark = pytest.mark.usefixtures("float64_default")


# ---- an independent count: multiplicity of L in Sym^n(A) by characters ------------------
def _chi(ir: Irrep, psi: np.ndarray, inversion: int) -> np.ndarray:
    """Character of an irrep on (rotation by psi) x (inversion**?); SU2/O3 alike."""
    ms = np.arange(-ir.j2, ir.j2 + 1, 2) / 2
    value = np.cos(np.outer(psi, ms)).sum(axis=1)
    return value * (ir.p if inversion < 0 and ir.p else 1)


def sym_multiplicity(irreps: Irreps, n: int, out: Irrep, group: str = "O3") -> int:
    """<chi_{Sym^n A}, chi_L> by Newton's identity h_m = (1/m) sum_k p_k h_{m-k}, p_k = chi(g^k).

    Haar measure on SU(2) classes: (1/2pi) sin^2(psi/2) dpsi over [0, 4pi) (a trigonometric
    polynomial: the midpoint rule is exact); O(3) averages the two cosets g and -g.
    """
    num = 256
    psi = (np.arange(num) + 0.5) * 4 * np.pi / num
    weight = np.sin(psi / 2) ** 2 * 2 / num
    total = 0.0
    signs = (1, -1) if group == "O3" else (1,)
    for s in signs:
        p = [None] + [sum(_chi(e.ir, k * psi, s**k) for e in irreps) for k in range(1, n + 1)]
        h = [np.ones_like(psi)]
        for m in range(1, n + 1):
            h.append(sum(p[k] * h[m - k] for k in range(1, m + 1)) / m)
        total += float((h[n] * _chi(out, psi, s) * weight).sum())
    value = total / len(signs)
    assert abs(value - round(value)) < 1e-9
    return round(value)


def _all_labels(group: str, top: int) -> Irreps:
    if group == "SU2":
        return Irreps.parse(" + ".join(str(Irrep(j2)) for j2 in range(top + 1)), "SU2")
    return Irreps.parse(" + ".join(f"{deg}{p}" for deg in range(top // 2 + 1) for p in "eo"))


CASES = [
    ("0e + 1o + 2e", 2, "O3"), ("0e + 1o + 2e", 3, "O3"), ("0e + 1o + 2e", 4, "O3"),
    ("1o + 1e + 2o", 3, "O3"), ("0e + 1o", 4, "O3"), ("1o", 2, "O3"), ("2e", 3, "O3"),
    ("0e + 1o + 2e + 3o", 3, "O3"), ("1o + 2e", 4, "O3"), ("0e + 0e + 1o", 3, "O3"),
    ("1/2", 2, "SU2"), ("1/2 + 1", 3, "SU2"), ("3/2", 4, "SU2"),
]


def _counts(text: str, n: int, group: str) -> tuple[int, Counter, Counter]:
    a = Irreps.parse(text, group)
    top = n * max(e.ir.j2 for e in a)
    reached = {p.out for p in expand_fuse([a] * n, "none", None, None)[0]}
    want = Counter({e.ir: sym_multiplicity(a, n, e.ir, group)
                    for e in _all_labels(group, top) if e.ir in reached})
    # a declared label with multiplicity 0 keeps one (zero) path: leave those out here
    layout = Irreps(tuple(e for e in _all_labels(group, top) if want[e.ir] > 0))
    local, _ = expand_fuse([a] * n, "uuu", None, layout)
    kept = prune_paths(local, [a] * n, ["A"] * n, group, "uuu")  # type: ignore[arg-type]
    return len(local), Counter(p.out for p in kept), want


@pytest.mark.parametrize(("text", "n", "group"), CASES, ids=[f"{t}^{n}" for t, n, _ in CASES])
def test_pruned_counts_equal_symmetric_power_multiplicities(text: str, n: int, group: str) -> None:
    total, got, want = _counts(text, n, group)
    assert +want == +got
    assert sum(got.values()) <= total


def test_antisymmetric_coupling_of_a_repeated_leg_is_a_zero_path() -> None:
    a = Irreps.parse("1o + 1e + 2e")
    layout = Irreps.parse("1e")
    local, _ = expand_fuse([a, a], "none", None, layout)
    kept = prune_paths(local, [a, a], ["A", "A"], "O3", "none")
    # x × x vanishes: 1o ⊗ 1o, 1e ⊗ 1e and 2e ⊗ 2e → 1e go; 1e ⊗ 2e and 2e ⊗ 1e stay (no weights)
    odd, even, two = Irrep(2, -1), Irrep(2, 1), Irrep(4, 1)
    assert {p.irs for p in local} - {p.irs for p in kept} == {(odd, odd), (even, even), (two, two)}
    assert {p.irs for p in kept} == {(even, two), (two, even)}


def test_distinct_legs_are_not_pruned() -> None:
    a = Irreps.parse("0e + 1o")
    local, _ = expand_fuse([a, a, a], "uuu", None, Irreps.parse("0e + 1o"))
    assert prune_paths(local, [a] * 3, ["A", "B", "C"], "O3", "uuu") == local


PRODUCT = """
diagram sym3(A: 4x(0e + 1o + 2e)) -> B: 4x(0e + 1o + 1e + 2e) { B = fuse(A, A, A) weights uuu }
diagram sym2p(A: 3x(1o + 2e)) -> B: 3x(0e + 2e + 2o) { B = fuse(A, A) weights path }
diagram mixed(A: 2x(0e + 1o), c: 2x1o) -> B: 2x(0e + 1o) { B = fuse(A, c, A) weights uuu }
"""


@pytest.mark.parametrize("name", ["sym3", "sym2p", "mixed"])
def test_pruned_layers_are_equivariant_with_fewer_weights(name: str) -> None:
    prog = fusiondsl.loads(PRODUCT)
    d = prog.diagrams[name]
    node = d.nodes[-1]
    local, _ = expand_fuse([d.operand_irreps(a) for a in node.args], node.mode, None,
                           d.irreps_out)
    before = sum(int(np.prod(p.channels.weight_shape)) for p in local)
    layer = prog.compile(name)
    assert layer.weight_numel == expand(d).weight_numel < before
    assert equivariance_error(layer, seed=3, trials=(False, True)) < 1e-10


def test_pruned_paths_span_the_same_functions() -> None:
    """A layer on every path equals the pruned one for some weights (least squares)."""
    a = Irreps.parse("0e + 1o + 2e")
    layout = Irreps.parse("0e + 1o + 2e")
    local, _ = expand_fuse([a] * 3, "uuu", None, layout)
    kept = prune_paths(local, [a] * 3, ["A"] * 3, "O3", "uuu")
    from fusiondsl.passes.symmetric import evaluate_chain

    x = np.random.default_rng(0).standard_normal((50, a.dim))
    offsets = np.cumsum([0] + [e.ir.dim for e in a])
    blocks = [x[:, offsets[i]:offsets[i + 1]] for i in range(len(a))]

    def values(paths, out):
        return np.array([evaluate_chain("O3", [blocks[i] for i in p.inputs], p.irs,
                                        (*p.labels, p.out)).ravel()
                         for p in paths if p.out == out]).T

    for e in layout:
        full, small = values(local, e.ir), values(kept, e.ir)
        coef, *_ = np.linalg.lstsq(small, full, rcond=None)
        assert np.abs(small @ coef - full).max() < 1e-9


# ---- F-moves -------------------------------------------------------------------------------
def _norm1(group: str, a: Irrep, b: Irrep, c: Irrep) -> np.ndarray:
    if group == "SU2":
        return np.real(cg.su2_cg(a.j2, b.j2, c.j2)) / np.sqrt(c.dim)
    return cg.real_w3j(a.l, b.l, c.l)


@pytest.mark.parametrize("group", ["SO3", "SU2"])
def test_fmove_matrix_is_orthogonal_after_normalising(group: str) -> None:
    step = 1 if group == "SU2" else 2
    for j2s in [(a, b, c, j) for a in range(0, 5, step) for b in range(0, 5, step)
                for c in range(0, 5, step) for j in range(0, 7, step)]:
        irs = [Irrep(j2) for j2 in j2s]
        if (sum(j2s) % 2) or not any(irs[3] in k * irs[2] for k in irs[0] * irs[1]):
            continue
        ks, kps, m = fmove_matrix(group, *irs)  # type: ignore[arg-type]
        u = np.array([[float(m[i, j]) * np.sqrt(ks[i].dim / kps[j].dim)
                       for j in range(len(kps))] for i in range(len(ks))])
        assert len(ks) == len(kps)
        assert np.allclose(u @ u.T, np.eye(len(ks)), atol=1e-12)


FMOVE = [
    ("O3", "diagram f(a: 0e + 1o + 2e, b: 1o + 2e, c: 1o + 2o) -> o: 0e + 1o + 2e + 2o "
           "{ o = fuse(a, b, c) }"),
    ("SU2", "group SU2\ndiagram f(a: 1/2 + 1, b: 1 + 3/2, c: 1/2) -> o: 1/2 + 1 + 3/2 "
            "{ o = fuse(a, b, c) }"),
]


@pytest.mark.parametrize(("group", "text"), FMOVE, ids=["O3", "SU2"])
def test_fmove_gives_the_same_outputs_as_the_left_tree(group: str, text: str) -> None:
    prog = fusiondsl.loads(text)
    layer = prog.compile("f")
    if group == "SU2":
        layer = layer.to(torch.complex128)
    xs = random_inputs(layer, batch=4, seed=7)
    want = layer(*xs).detach().numpy()
    paths = expand(prog.diagrams["f"]).paths
    rec = recouple(group, paths)  # type: ignore[arg-type]
    coeff = np.array([p.coefficient for p in paths])
    mix = coeff @ rec.matrix  # left output = sum_i coeff_i L_i = sum_j (coeff @ M)_j R_j
    xs_np = [x.numpy() for x in xs[:3]]
    d = prog.diagrams["f"]
    out = np.zeros_like(want)
    offs = [np.cumsum([0] + [e.dim for e in leg.irreps]) for leg in d.legs]
    out_offs = np.cumsum([0] + [e.dim for e in d.irreps_out])
    for w, r in zip(mix, rec.right):
        a, b, c = (xs_np[k][:, offs[k][i]:offs[k][i + 1]] for k, i in enumerate(r.inputs))
        inner = np.einsum("zb,zc,bck->zk", b, c, _norm1(group, r.irs[1], r.irs[2], r.label))
        val = np.einsum("za,zk,akj->zj", a, inner, _norm1(group, r.irs[0], r.label, r.out))
        out[:, out_offs[r.out_entry]:out_offs[r.out_entry + 1]] += w * val
    assert np.abs(out - want).max() < 1e-12
    assert len(rec.right) > 0


def test_a_label_with_multiplicity_zero_keeps_one_zero_path() -> None:
    a = Irreps.parse("0e + 1o")
    layout = Irreps.parse("0e + 1e")  # Sym^3(0e + 1o) has no 1e
    assert sym_multiplicity(a, 3, Irrep(2, 1)) == 0
    local, _ = expand_fuse([a] * 3, "uuu", None, layout)
    kept = [p for p in prune_paths(local, [a] * 3, ["A"] * 3, "O3", "uuu") if p.out_entry == 1]
    assert len(kept) == 1

"""Irreps algebra: property tests over random groups, labels and multiplicities."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusiondsl import FusionError, Irrep, Irreps
from fusiondsl.core.irreps import GROUPS, MulIr


@st.composite
def irreps_of(draw: st.DrawFn, group: str) -> Irrep:
    if group == "SU2":
        return Irrep(draw(st.integers(0, 12)), 0)
    j2 = 2 * draw(st.integers(0, 6))
    return Irrep(j2, draw(st.sampled_from([1, -1])) if group == "O3" else 0)


@st.composite
def group_and_irreps(draw: st.DrawFn, min_size: int = 1) -> tuple[str, Irreps]:
    group = draw(st.sampled_from(GROUPS))
    entries = draw(
        st.lists(st.tuples(st.integers(1, 64), irreps_of(group)), min_size=min_size, max_size=6)
    )
    return group, Irreps(tuple(MulIr(m, ir) for m, ir in entries))


@st.composite
def group_and_pair(draw: st.DrawFn) -> tuple[str, Irrep, Irrep]:
    group = draw(st.sampled_from(GROUPS))
    return group, draw(irreps_of(group)), draw(irreps_of(group))


@settings(max_examples=200, deadline=None)
@given(group_and_irreps())
def test_parse_print_round_trip(gx: tuple[str, Irreps]) -> None:
    group, x = gx
    assert Irreps.parse(str(x), group) == x


@settings(max_examples=100, deadline=None)
@given(group_and_irreps())
def test_parse_accepts_spaces_and_parentheses(gx: tuple[str, Irreps]) -> None:
    group, x = gx
    spaced = " + ".join(f"{e.mul} x{e.ir}".replace(" x", "x") for e in x)
    assert Irreps.parse(spaced, group) == x
    assert Irreps.parse(f"3x({x})", group) == x.scaled(3)


@settings(max_examples=200, deadline=None)
@given(group_and_pair())
def test_irrep_product_dimension(gab: tuple[str, Irrep, Irrep]) -> None:
    _, a, b = gab
    labels = a * b
    assert sum(ir.dim for ir in labels) == a.dim * b.dim
    assert all(ir.p == a.p * b.p for ir in labels)
    assert all(ir.couples(a, b) for ir in labels)
    assert [ir.j2 for ir in labels] == list(range(abs(a.j2 - b.j2), a.j2 + b.j2 + 1, 2))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_irreps_product_dimension(data: st.DataObject) -> None:
    group, x = data.draw(group_and_irreps())
    y = Irreps(tuple(data.draw(st.lists(
        st.tuples(st.integers(1, 8), irreps_of(group)).map(lambda t: MulIr(*t)),
        min_size=1, max_size=4))))
    assert (x * y).dim == x.dim * y.dim
    assert (x * y).num_irreps >= x.num_irreps * y.num_irreps


@settings(max_examples=150, deadline=None)
@given(group_and_irreps(min_size=0), st.lists(st.integers(0, 3), max_size=6))
def test_simplify_keeps_dim(gx: tuple[str, Irreps], zeros: list[int]) -> None:
    _, x = gx
    with_zeros = Irreps(x.entries + tuple(MulIr(0, Irrep(2 * k)) for k in zeros))
    s = with_zeros.simplify()
    assert s.dim == x.dim
    assert all(e.mul > 0 for e in s)
    assert all(a.ir != b.ir for a, b in zip(s.entries, s.entries[1:], strict=False))
    assert s.simplify() == s
    assert x.sort().dim == x.dim


@pytest.mark.parametrize("lmax", range(8))
def test_spherical_harmonics_content(lmax: int) -> None:
    sh = Irreps.parse(f"sh({lmax})")
    assert [(e.mul, e.ir.l, e.ir.p) for e in sh] == [(1, ell, (-1) ** ell) for ell in
                                                      range(lmax + 1)]
    assert sh.dim == (lmax + 1) ** 2
    assert Irreps.parse(f"sh({lmax})", "SO3") == Irreps.spherical_harmonics(lmax, "SO3")
    assert all(e.ir.p == 0 for e in Irreps.parse(f"sh({lmax})", "SO3"))


def test_sh_matches_the_design_sketch() -> None:
    assert Irreps.parse("sh(3)") == Irreps.parse("0e + 1o + 2e + 3o")


@pytest.mark.parametrize(
    ("text", "j", "dim"),
    [("1/2", Fraction(1, 2), 2), ("3/2", Fraction(3, 2), 4), ("5/2", Fraction(5, 2), 6),
     ("1", Fraction(1), 3), ("0", Fraction(0), 1)],
)
def test_su2_labels(text: str, j: Fraction, dim: int) -> None:
    ir = Irrep.parse(text, "SU2")
    assert ir.j == j and ir.dim == dim and ir.p == 0
    assert str(ir) == text
    assert ir.is_integer == (j.denominator == 1)


def test_su2_half_integer_products() -> None:
    half = Irrep.parse("1/2", "SU2")
    assert [str(ir) for ir in half * half] == ["0", "1"]
    assert [str(ir) for ir in half * Irrep.parse("1", "SU2")] == ["1/2", "3/2"]
    assert str(Irreps.parse("2x1/2 + 3/2", "SU2")) == "2x1/2+1x3/2"
    with pytest.raises(ValueError, match="half-integer"):
        _ = half.l


@pytest.mark.parametrize("text", ["0", "1", "2", "7"])
def test_so3_labels(text: str) -> None:
    ir = Irrep.parse(text, "SO3")
    assert ir.p == 0 and ir.l == int(text) and str(ir) == text
    assert ir.dim == 2 * int(text) + 1


def test_o3_labels_and_parity() -> None:
    assert Irrep.parse("1o") == Irrep(2, -1)
    assert Irrep.parse("2e") == Irrep(4, 1)
    assert [str(ir) for ir in Irrep.parse("1o") * Irrep.parse("1o")] == ["0e", "1e", "2e"]
    assert Irreps.parse("32x(0e + 1o)") == Irreps.parse("32x0e + 32x1o")


@pytest.mark.parametrize(
    ("text", "group", "message"),
    [
        ("1", "O3", "needs a parity"),
        ("1e", "SO3", "only exists in group O3"),
        ("1/2", "O3", "only allowed in group SU2"),
        ("3/4", "SU2", "not an integer or a half-integer"),
        ("2/2", "SU2", "write spin '2/2' as 1"),
        ("0x0e", "O3", "at least 1"),
        ("1q", "O3", "unknown parity"),
        ("H", "O3", "unknown irreps name"),
        ("1o +", "O3", "unexpected end of file"),
    ],
)
def test_parse_errors(text: str, group: str, message: str) -> None:
    with pytest.raises(FusionError, match=message) as info:
        Irreps.parse(text, group)  # type: ignore[arg-type]
    assert info.value.render().startswith("<irreps>:1:")


def test_irrep_parse_needs_one_label() -> None:
    with pytest.raises(ValueError, match="not a single irrep"):
        Irrep.parse("1o + 2e")
    with pytest.raises(ValueError, match="invalid irrep"):
        Irrep(-2)


def test_layout_helpers() -> None:
    x = Irreps.parse("2x0e + 3x1o + 1x0e")
    assert x.slices == ((0, 2), (2, 11), (11, 12))
    assert x.count(Irrep.parse("0e")) == 3
    assert x.labels == (Irrep.parse("0e"), Irrep.parse("1o"))
    assert str(x.sort()) == "2x0e+1x0e+3x1o"
    assert repr(x) == "Irreps('2x0e+3x1o+1x0e')"


def test_dims_agree_with_e3nn() -> None:
    o3 = pytest.importorskip("e3nn.o3")
    for text in ["16x0e + 8x1o + 4x2e", "3x1e + 2x3o", "1x0o"]:
        ours, theirs = Irreps.parse(text), o3.Irreps(text)
        assert ours.dim == theirs.dim
        assert str(ours) == str(theirs).replace(" ", "")

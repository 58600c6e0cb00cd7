"""Graph rewrites: every identity against contracting the unsimplified graph, and sympy."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import sympy
import torch
from sympy.physics.wigner import wigner_6j, wigner_9j

import fusiondsl
from fusiondsl.core.irreps import Irrep
from fusiondsl.ir.diagram import GraphDiagram, GraphEdge
from fusiondsl.nn.layers import build
from fusiondsl.passes.rewrite import evaluate_exact, simplify_graph

ROOT = Path(__file__).resolve().parent.parent

TETRA = [("j1", "j2", "j3"), ("j1", "j5", "j6"), ("j4", "j2", "j6"), ("j4", "j5", "j3")]
K33 = [("j1", "j2", "j3"), ("j4", "j5", "j6"), ("j7", "j8", "j9"),
       ("j1", "j4", "j7"), ("j2", "j5", "j8"), ("j3", "j6", "j9")]
THETA = [("a", "b", "c"), ("b", "a", "c")]
# open graphs: name -> (in legs, out legs, vertices); every other name is an internal edge
OPEN = {
    "triangle": (["x", "y"], ["o"], [("x", "a", "b"), ("y", "b", "c"), ("a", "c", "o")]),
    "bubble_in": (["x", "y"], ["o"], [("x", "a", "b"), ("a", "b", "t"), ("t", "y", "o")]),
    "bubble_out": (["x", "y"], ["o"], [("x", "y", "t"), ("t", "a", "b"), ("b", "o", "a")]),
    "bubble_mid": (["x", "y", "z"], ["o"],
                   [("x", "y", "s"), ("s", "a", "b"), ("a", "t", "b"), ("t", "z", "o")]),
    "zero_line": (["x", "y"], ["o"], [("x", "z", "p"), ("z", "q", "o"), ("p", "y", "q")]),
    "triangle_bubble": (["x", "y"], ["o"],
                        [("x", "a", "b"), ("y", "b", "c"), ("a", "c", "t"),
                         ("t", "p", "q"), ("q", "p", "o")]),
}


pytestmark = pytest.mark.usefixtures("float64_default")


def _names(vertices) -> list[str]:
    return sorted({x for v in vertices for x in v})


def _ok(vertices, j2: dict[str, int]) -> bool:
    for v in vertices:
        a, b, c = (j2[x] for x in v)
        if (a + b + c) % 2 or not abs(a - b) <= c <= a + b:
            return False
    return True


def _labelings(vertices, group: str, top: int, count: int, seed: int, low: int = 0,
               fixed: dict | None = None) -> list[tuple[dict, dict]]:
    """Random admissible labels (2j, parity) for every edge name."""
    rng, names, out = random.Random(seed), _names(vertices), []
    for _ in range(4000):
        j2 = {x: rng.randrange(low, top + 1) * (1 if group == "SU2" else 2) for x in names}
        j2.update(fixed or {})
        par = {x: rng.choice((1, -1)) if group == "O3" else 0 for x in names}
        if group == "O3" and any(par[a] * par[b] * par[c] != 1 for a, b, c in vertices):
            continue
        if _ok(vertices, j2) and (j2, par) not in out:
            out.append((j2, par))
        if len(out) == count:
            break
    return out


def _graph(vertices, group, labels, ins=(), outs=(), shuffle: int | None = None) -> GraphDiagram:
    """A graph (no validation: products of closed pieces may be disconnected)."""
    j2, par = labels
    kind = {**{x: "in" for x in ins}, **{x: "out" for x in outs}}
    edges = tuple(GraphEdge(x, Irrep(j2[x], par[x]), 1, kind.get(x, "edge"))
                  for x in _names(vertices))
    vs = list(vertices)
    if shuffle is not None:  # random vertex order and slot orders: exercises every phase
        rng = random.Random(shuffle)
        rng.shuffle(vs)
        vs = [tuple(rng.sample(v, 3)) for v in vs]
    return GraphDiagram("g", group, edges, tuple(vs))  # type: ignore[arg-type]


def _contract(d: GraphDiagram, xs=()) -> torch.Tensor:
    layer = build(d)
    if d.group == "SU2":
        layer = layer.to(torch.complex128)
    return layer(*xs)


def _inputs(d: GraphDiagram, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.complex128 if d.group == "SU2" else torch.float64
    return [torch.randn(3, e.ir.dim, generator=gen, dtype=dtype) for e in d.inputs]


def _check_closed(d: GraphDiagram) -> sympy.Expr:
    value = evaluate_exact(d)
    assert abs(complex(_contract(d)) - complex(value)) < 1e-12, (d.to_text(), value)
    return value


def _half(j2: int) -> sympy.Rational:
    return sympy.Rational(j2, 2)


@pytest.mark.parametrize("group", ["SO3", "SU2", "O3"])
def test_tetrahedron_is_the_6j_symbol(group: str) -> None:
    cases = _labelings(TETRA, group, 3 if group == "SU2" else 2, 40, seed=1)
    for k, labels in enumerate(cases):
        j2 = [labels[0][f"j{i}"] for i in range(1, 7)]
        sign = (-1) ** j2[4] if group == "SU2" else 1  # documented: (-1)^(2 j5) in SU2
        want = sign * wigner_6j(*map(_half, j2))
        assert evaluate_exact(_graph(TETRA, group, labels)) == want
        _check_closed(_graph(TETRA, group, labels, shuffle=k))
    assert len(cases) >= 30


@pytest.mark.parametrize("group", ["SO3", "SU2"])
def test_k33_is_the_9j_symbol(group: str) -> None:
    cases = _labelings(K33, group, 2, 25, seed=2)
    nonzero = 0
    for k, labels in enumerate(cases):
        j2 = [labels[0][f"j{i}"] for i in range(1, 10)]
        want = wigner_9j(*map(_half, j2))
        assert evaluate_exact(_graph(K33, group, labels)) == want
        nonzero += want != 0
        _check_closed(_graph(K33, group, labels, shuffle=k))
    assert len(cases) >= 20 and nonzero >= 10


def test_k33_without_zero_lines_uses_the_9j_rule() -> None:
    labels = ({f"j{i}": 2 for i in range(1, 10)}, {f"j{i}": 0 for i in range(1, 10)})
    result = simplify_graph(_graph(K33, "SO3", labels, shuffle=3))
    assert [s.rule for s in result.steps] == ["9j"]
    assert result.factor == wigner_9j(*([1] * 9))


@pytest.mark.parametrize("group", ["SO3", "SU2"])
def test_theta_is_one_and_products_multiply(group: str) -> None:
    for k, labels in enumerate(_labelings(THETA, group, 3, 10, seed=3)):
        assert abs(_check_closed(_graph(THETA, group, labels, shuffle=k))) == 1  # ± by slot order
    tetra = _labelings(TETRA, group, 2, 6, seed=4)
    for a, b in itertools.combinations(tetra, 2):
        one = _graph(TETRA, group, a)
        two = _graph([tuple(x + "b" for x in v) for v in TETRA], group,
                     ({x + "b": j for x, j in b[0].items()}, {x + "b": p for x, p in b[1].items()}))
        both = GraphDiagram("p", group, one.edges + two.edges, one.vertices + two.vertices)
        assert _check_closed(both) == evaluate_exact(one) * evaluate_exact(two)


@pytest.mark.parametrize("group", ["SO3", "O3", "SU2"])
@pytest.mark.parametrize("name", sorted(OPEN))
def test_open_graph_rewrites_keep_the_layer(group: str, name: str) -> None:
    ins, outs, vertices = OPEN[name]
    fixed = {"z": 0} if name == "zero_line" else {}
    cases = _labelings(vertices, group, 3 if group == "SU2" else 2, 12, seed=5, low=1,
                       fixed=fixed)
    applied = set()
    for k, labels in enumerate(cases):
        d = _graph(vertices, group, labels, ins, outs, shuffle=k if k % 2 else None)
        result = simplify_graph(d)
        applied |= {s.rule for s in result.steps}
        assert len(result.after.vertices) < len(d.vertices) or result.factor == 0
        xs = _inputs(d, seed=k)
        want = _contract(d, xs)
        got = float(result.factor) * _contract(result.after, xs)
        assert torch.allclose(got, want, atol=1e-12), (d.to_text(), result.steps)
    assert len(cases) >= 6
    expected = {"triangle": {"triangle"}, "zero_line": {"zero-line"},
                "triangle_bubble": {"triangle", "bubble"}}.get(name, {"bubble"})
    assert expected <= applied


def test_bubble_factor_is_one_over_dimension() -> None:
    """SO3: 1/(2c+1); SU2 with the bubble's edges run v1 -> v2: (-1)^(2c)/(2c+1)."""
    for group, c2 in (("SO3", 4), ("SU2", 3)):
        j2 = {"x": c2, "o": c2, "a": 2, "b": c2 + 2,
              "y": 0, "t": c2}
        labels = (j2, dict.fromkeys(j2, 0))
        d = _graph([("x", "a", "b"), ("a", "b", "t"), ("t", "y", "o")], group, labels,
                   ("x", "y"), ("o",))
        bubble = simplify_graph(d).steps[0]
        assert bubble.rule == "bubble"
        want = sympy.Rational((-1) ** (c2 % 2), c2 + 1)
        assert bubble.factor == (want if group == "SU2" else abs(want))


def test_evaluate_exact_refuses_open_and_irreducible_graphs() -> None:
    d = fusiondsl.load(ROOT / "examples" / "open_graph.fd").diagrams["open_graph"]
    with pytest.raises(ValueError, match="open legs"):
        evaluate_exact(d)
    cube = [("a", "b", "c"), ("a", "d", "e"), ("b", "f", "g"), ("c", "h", "i"),
            ("d", "f", "k"), ("e", "h", "l"), ("g", "i", "m"), ("k", "l", "m")]
    labels = (dict.fromkeys(_names(cube), 2), dict.fromkeys(_names(cube), 0))
    with pytest.raises(ValueError, match="does not reduce"):
        evaluate_exact(_graph(cube, "SO3", labels))


def test_examples_simplify() -> None:
    sixj = fusiondsl.load(ROOT / "examples" / "sixj.fd").diagrams["sixj"]
    assert evaluate_exact(sixj) == -wigner_6j(1, 1, 1, sympy.S.Half, sympy.S.Half, sympy.S.Half)
    ninej = fusiondsl.load(ROOT / "examples" / "ninej.fd").diagrams["ninej"]
    assert evaluate_exact(ninej) == wigner_9j(1, 1, 2, 1, 1, 0, 2, 0, 2)
    example = fusiondsl.load(ROOT / "examples" / "bubble_triangle.fd").diagrams["bubble_triangle"]
    result = simplify_graph(example)
    assert [s.rule for s in result.steps] == ["bubble", "triangle"]
    assert len(result.after.vertices) == 1


def test_simplify_command_prints_rules_factors_and_costs(capsys) -> None:
    from fusiondsl.cli.main import main

    assert main(["simplify", str(ROOT / "examples" / "bubble_triangle.fd")]) == 0
    out = capsys.readouterr().out
    assert "1. bubble(p, q, t, o): × -1/3" in out
    assert "2. triangle(b, c, a): × 1/10" in out
    assert "factor: -1/30" in out
    assert "before:    5 /   7 /" in out and "after:     1 /   3 /" in out
    assert main(["simplify", str(ROOT / "examples" / "sixj.fd"), "-d", "sixj"]) == 0
    assert "factor: 1/3  (the exact value)" in capsys.readouterr().out

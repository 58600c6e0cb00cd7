"""The parser: the DESIGN sketch parses as written, spans are right, printed IR parses back,
and path counts / weight sizes agree with e3nn."""

from __future__ import annotations

from pathlib import Path

import pytest

import fusiondsl
from fusiondsl.core.diagnostics import Span
from fusiondsl.front import ast
from fusiondsl.front.parse import KEYWORDS, grammar_text, parse
from fusiondsl.ir.diagram import Diagram, FuseNode, GraphDiagram
from fusiondsl.passes.expand import expand

SPECS = Path(__file__).parent / "specs"
GOOD = sorted((SPECS / "good").glob("*.fd"))
EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.fd"))

SKETCH = """\
group O3                         # O3 (default) | SO3 | SU2
let H = 32x0e + 32x1o + 32x2e    # e3nn irreps syntax
let Y = sh(3)                    # 0e + 1o + 2e + 3o

# e3nn FullyConnectedTensorProduct
diagram fctp(x: H, y: sh(2)) -> z: H {
    z = fuse(x, y) weights uvw
}

# NequIP/MACE interaction: channel-wise, one weight per path and channel given per sample
diagram conv(h: H, y: Y) -> m: 32x(0e + 1o + 2e + 3o) {
    m = fuse(h, y) weights uvu external
}

# A fusion block (three-body), explicit tree, intermediate labels filtered
diagram fusion3(a: 16x(0e+1o+2e), b: 16x(0e+1o+2e), c: 16x(0e+1o+2e)) -> o: 16x(0e+1o+2e) {
    t = fuse(a, b) -> 0e + 1o + 1e + 2e
    o = fuse(t, c) weights uuu
}

# Braces: any binary coupling order spans the same space; the compiler picks the cheapest
let X = 4x(0e + 1o + 2e)
diagram fusion4(a: X, b: X, c: X, d: X) -> o: X {
    o = fuse{a, b, c, d} weights uuu
}

# MACE product basis: a repeated leg is a symmetric power; dependent paths are pruned
diagram product_basis(A: 64x(0e+1o+2e+3o)) -> B: 64x(0e+1o) {
    B = fuse(A, A, A) weights uuu
}

# SU(2) with half-integer spins (complex Condon–Shortley basis).
# A `group` line applies to everything after it, up to the next `group` line.
group SU2
diagram spins(a: 1/2, b: 1/2) -> s: 0 + 1 { s = fuse(a, b) }

# Graph form: any diagram, loops and closed diagrams included.
# A vertex is one Clebsch–Gordan / 3j node; its edges are listed in coupling order.
graph sixj {
    edge j1: 1, j2: 1, j3: 1, j4: 1/2, j5: 1/2, j6: 1/2
    vertex (j1, j2, j3)
    vertex (j1, j5, j6)
    vertex (j4, j2, j6)
    vertex (j4, j5, j3)
}
"""

FUSION_BLOCK = """\
let X = 16x(0e + 1o + 2e)
diagram fusion_block(h: X, y: edge sh(2), g: edge 16x0e) -> o: X {
    m = sum_j fuse{h[i], h[j], y} * g -> 0e + 1o + 2e   # three-body fusion, gated, summed
    o = linear(cat(h, m))                                  # concatenate, then channel mixing
}
"""

OPEN_LEGS = """\
graph open_graph {
    in x: 1o
    in y: 1o
    out o: 1e
    edge a: 1o, b: 1e, c: 1o
    vertex (x, a, b)
    vertex (y, b, c)
    vertex (a, c, o)
}
"""


def items_of(text: str, kind: type) -> list:
    return [i for i in parse(text).items if isinstance(i, kind)]


# ---- the sketch parses exactly as written ------------------------------------------------
def test_sketch_items() -> None:
    module = parse(SKETCH)
    kinds = [type(i).__name__ for i in module.items]
    assert kinds == ["GroupStmt", "Let", "Let", "DiagramDecl", "DiagramDecl", "DiagramDecl",
                     "Let", "DiagramDecl", "DiagramDecl", "GroupStmt", "DiagramDecl", "GraphDecl"]
    assert [i.name for i in module.items if isinstance(i, ast.GroupStmt)] == ["O3", "SU2"]


def test_sketch_fuse_clauses() -> None:
    d = {x.name: x for x in items_of(SKETCH, ast.DiagramDecl)}
    fctp = d["fctp"].body[0].value
    assert fctp.ordered and fctp.weights == (ast.Weights("uvw", False),)
    assert [a.name for a in fctp.args] == ["x", "y"]
    conv = d["conv"].body[0].value
    assert conv.weights == (ast.Weights("uvu", True),)
    t = d["fusion3"].body[0].value
    assert [str(x.atom.text) for x in t.filters[0].terms] == ["0e", "1o", "1e", "2e"]
    assert not t.weights
    assert not d["fusion4"].body[0].value.ordered
    assert [a.name for a in d["product_basis"].body[0].value.args] == ["A", "A", "A"]
    assert d["spins"].body[0].value.weights == ()
    assert d["conv"].out_irreps.terms[0].mul == 32


def test_sketch_graph() -> None:
    (g,) = items_of(SKETCH, ast.GraphDecl)
    assert [e.name for e in g.edges] == ["j1", "j2", "j3", "j4", "j5", "j6"]
    assert all(e.kind == "edge" for e in g.edges)
    assert [[r.name for r in v.edges] for v in g.vertices][1] == ["j1", "j5", "j6"]


def test_sketch_checks_and_follows_group_lines() -> None:
    prog = fusiondsl.loads(SKETCH)
    assert prog.names == ["fctp", "conv", "fusion3", "fusion4", "product_basis", "spins", "sixj"]
    assert prog.diagram("fctp").group == "O3"
    assert prog.diagram("spins").group == "SU2"
    assert prog.diagram("sixj").group == "SU2"
    assert str(prog.diagram("conv").legs[1].irreps) == "1x0e+1x1o+1x2e+1x3o"


def test_fusion_block_parses_as_written() -> None:
    (d,) = items_of(FUSION_BLOCK, ast.DiagramDecl)
    assert [(leg.name, leg.domain) for leg in d.legs] == [("h", None), ("y", "edge"),
                                                           ("g", "edge")]
    m = d.body[0].value
    assert isinstance(m, ast.SumJ) and not m.body.ordered
    assert m.body.args == (ast.Ref("h", "i"), ast.Ref("h", "j"), ast.Ref("y"))
    assert m.body.gates == (ast.Ref("g"),)
    assert len(m.body.filters) == 1
    o = d.body[1].value
    assert o == ast.Call("linear", (ast.Call("cat", (ast.Ref("h"), ast.Ref("m"))),))
    diagram = fusiondsl.loads(FUSION_BLOCK).diagram()
    assert isinstance(diagram, Diagram) and diagram.is_neighbourhood


def test_open_legs_parse() -> None:
    (g,) = items_of(OPEN_LEGS, ast.GraphDecl)
    assert [(e.name, e.kind) for e in g.edges] == [("x", "in"), ("y", "in"), ("o", "out"),
                                                   ("a", "edge"), ("b", "edge"), ("c", "edge")]
    graph = fusiondsl.loads(OPEN_LEGS).diagram()
    assert isinstance(graph, GraphDiagram)
    assert [e.name for e in graph.inputs] == ["x", "y"]


def test_node_domain_and_nested_fuse() -> None:
    text = "diagram d(x: node 1o, y: 1o) -> z: 1o { z = fuse(fuse(x, y) -> 0e, x) }"
    (d,) = items_of(text, ast.DiagramDecl)
    assert d.legs[0].domain == "node"
    inner = d.body[0].value.args[0]
    assert isinstance(inner, ast.Fuse) and inner.filters
    diagram = fusiondsl.loads(text).diagram()
    assert len(diagram.nodes) == 2 and diagram.nodes[1].args[0].kind == "node"


def test_comments_and_newlines_are_insignificant() -> None:
    a = fusiondsl.loads("diagram d(x: 1o, y: 1o) -> z: 0e { z = fuse(x, y) }")
    b = fusiondsl.loads("# c\ndiagram d(\n x: 1o, # leg\n y: 1o)\n -> z: 0e {\n\n"
                        " z = fuse(x,\n y)\n}\n")
    assert list(a.diagrams.values()) == list(b.diagrams.values())


def test_keywords_are_reserved() -> None:
    for word in KEYWORDS:
        with pytest.raises(fusiondsl.FusionError, match="reserved word"):
            parse(f"let {word} = 0e")
    # a keyword inside a longer name is just a name
    assert items_of("let edges = 0e\nlet sum_jx = 0e\nlet index = 0e", ast.Let)


def test_grammar_is_shipped() -> None:
    assert "diagram:" in grammar_text()


# ---- spans -------------------------------------------------------------------------------
def test_spans_spot_check() -> None:
    module = parse(FUSION_BLOCK)
    let, d = module.items
    assert let.span == Span(1, 5, 1)
    assert d.span == Span(2, 9, 12) and d.out_span == Span(2, 61, 1)
    assert [leg.span for leg in d.legs] == [Span(2, 22, 1), Span(2, 28, 1), Span(2, 43, 1)]
    m = d.body[0]
    assert m.span == Span(3, 5, 1)
    assert (m.value.span.line, m.value.span.col) == (3, 9)
    assert (m.value.body.span.line, m.value.body.span.col) == (3, 15)
    h_j = m.value.body.args[1]
    assert h_j.span == Span(3, 26, 4)
    cat = d.body[1].value.args[0]
    assert cat.span == Span(4, 16, 3)
    irreps = let.value
    assert (irreps.span.line, irreps.span.col) == (1, 9)
    atom = irreps.terms[0].atom.terms[1].atom
    assert atom == ast.IrrepAtom("1o") and atom.span == Span(1, 18, 2)


def test_spans_in_graph_and_weights() -> None:
    module = parse(SKETCH)
    g = module.items[-1]
    assert g.span == Span(39, 7, 4) and g.edges[3].span == Span(40, 31, 2)
    assert g.vertices[0].span == Span(41, 5, 19)
    conv = module.items[4]
    w = conv.body[0].value.weights[0]
    assert (w.span.line, w.span.col) == (12, 28)


def test_spans_do_not_affect_equality() -> None:
    a = parse("let H = 0e").items[0]
    b = parse("\n\n   let   H =   0e").items[0]
    assert a == b and a.span != b.span


# ---- printed IR parses back to the same IR -----------------------------------------------
def _round_trip(prog: fusiondsl.Program) -> None:
    again = fusiondsl.loads(prog.to_text())
    assert again.names == prog.names
    for name in prog.names:
        assert again.diagram(name) == prog.diagram(name), name
    assert again.to_text() == prog.to_text()


@pytest.mark.parametrize("path", GOOD + EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_round_trip_spec(path: Path) -> None:
    _round_trip(fusiondsl.load(path))


@pytest.mark.parametrize("text", [SKETCH, FUSION_BLOCK], ids=["sketch", "fusion_block"])
def test_round_trip_design(text: str) -> None:
    _round_trip(fusiondsl.loads(text))


# ---- path counts and weight sizes against e3nn --------------------------------------------
E3NN_CASES = [
    ("4x0e + 3x1o", "2x0e + 1x1o", "5x0e + 2x1o + 3x1e"),
    ("2x0e + 1x1o + 2x2e", "1x0e + 1x1o + 1x2e", "3x0e + 2x1o + 2x1e + 1x2e + 4x2o + 1x3o"),
    ("8x1o", "1x1o", "8x0e + 8x1e + 8x2e"),
    ("3x0e + 3x0e + 2x1o", "1x0e + 1x1o", "2x0e + 2x1o + 2x1e + 5x0e"),
]


def _fuse_diagram(x: str, y: str, out: str, mode: str) -> Diagram:
    text = f"diagram d(x: {x}, y: {y}) -> z: {out} {{ z = fuse(x, y) weights {mode} }}"
    d = fusiondsl.loads(text).diagram()
    assert isinstance(d, Diagram) and isinstance(d.nodes[0], FuseNode)
    return d


@pytest.mark.parametrize(("x", "y", "out"), E3NN_CASES)
def test_uvw_matches_e3nn_fully_connected(x: str, y: str, out: str) -> None:
    o3 = pytest.importorskip("e3nn.o3")
    tp = o3.FullyConnectedTensorProduct(x, y, out)
    paths = expand(_fuse_diagram(x, y, out, "uvw"))
    assert paths.num_paths == len(tp.instructions)
    assert paths.weight_numel == tp.weight_numel
    ours = sorted((p.inputs[0], p.inputs[1], p.out_entry) for p in paths.paths)
    theirs = sorted((i.i_in1, i.i_in2, i.i_out) for i in tp.instructions)
    assert ours == theirs


def _uvu_instructions(o3: object, x: str, y: str, out: str) -> list:
    a, b, c = (o3.Irreps(s) for s in (x, y, out))  # type: ignore[attr-defined]
    return [
        (i1, i2, k, "uvu", True)
        for i1, (_, ir1) in enumerate(a)
        for i2, (_, ir2) in enumerate(b)
        for k, (_, ir3) in enumerate(c)
        if ir3 in ir1 * ir2
    ]


UVU_CASES = [
    ("4x0e + 4x1o", "1x0e + 1x1o + 1x2e", "4x0e + 4x1o + 4x1e + 4x2e + 4x2o + 4x3o"),
    ("8x1o", "2x1o", "8x0e + 8x1e + 8x2e"),
    ("3x0e + 3x1o + 3x2e", "1x0e + 1x1o + 1x2e + 1x3o", "3x0e + 3x1o + 3x2e + 3x3o"),
]


@pytest.mark.parametrize(("x", "y", "out"), UVU_CASES)
def test_uvu_matches_e3nn_tensor_product(x: str, y: str, out: str) -> None:
    o3 = pytest.importorskip("e3nn.o3")
    instructions = _uvu_instructions(o3, x, y, out)
    tp = o3.TensorProduct(x, y, out, instructions, shared_weights=False, internal_weights=False)
    paths = expand(_fuse_diagram(x, y, out, "uvu external"))
    assert paths.num_paths == len(tp.instructions)
    assert paths.weight_numel == tp.weight_numel
    shapes = sorted(((p.inputs[0], p.inputs[1], p.out_entry), p.weight_shape)
                    for p in paths.paths)
    assert shapes == sorted(((i.i_in1, i.i_in2, i.i_out), i.path_shape) for i in tp.instructions)


# ---- odd files: a byte-order mark, no diagram, deep nesting, many diagrams (issue 12) -------
DIAGRAM = "diagram d(x: 1o, y: 1o) -> z: 0e + 1e {\n    z = fuse(x, y)\n}\n"


def test_a_byte_order_mark_is_ignored() -> None:
    plain, marked = fusiondsl.loads(DIAGRAM), fusiondsl.loads("\ufeff" + DIAGRAM)
    assert marked.to_text() == plain.to_text()
    bad = "diagram d(x: 1o) -> z: 0e { z = fuse(x, q) }"
    spans = []
    for text in (bad, "\ufeff" + bad):
        with pytest.raises(fusiondsl.FusionError) as info:
            fusiondsl.loads(text, "bom.fd")
        spans.append(info.value.first.span)
    assert spans[0] == spans[1] == fusiondsl.Span(1, 41)  # the mark takes no column


def test_a_text_without_diagrams_is_an_empty_program() -> None:
    """``loads`` accepts it (a library of lets is fine); ``fusiondsl check`` reports it."""
    for text in ["", "\ufeff", "# only a comment\n", "let H = 1o\ngroup SO3\n"]:
        assert fusiondsl.loads(text).names == []


DEEP = 2000
NESTED = {
    "irreps parentheses": "let H = " + "(" * DEEP + "1o" + ")" * DEEP,
    "nested fuse": ("diagram d(x: 0e, y: 0e) -> z: 0e { z = " + "fuse(" * DEEP + "x, y"
                    + ", y)" * DEEP + " }"),
    "unclosed parentheses": "let H = " + "(" * DEEP,
    "braces": "diagram d(x: 0e) -> z: 0e " + "{" * DEEP,
    "fuse braces": "diagram d(x: 0e, y: 0e) -> z: 0e { z = " + "fuse{" * DEEP,
}


@pytest.mark.parametrize("text", NESTED.values(), ids=NESTED.keys())
def test_deep_nesting_is_a_fusion_error_with_a_position(text: str) -> None:
    with pytest.raises(fusiondsl.FusionError) as info:
        fusiondsl.loads(text, "deep.fd")
    first = info.value.first
    assert first.span.line == 1 and first.span.col > 1
    assert "nested more than 64 deep" in first.message or "never closed" in first.message


def test_nesting_up_to_the_limit_checks() -> None:
    depth = 60
    text = ("let H = " + "(" * depth + "0e" + ")" * depth + "\n"
            "diagram d(x: H, y: 0e) -> z: 0e { z = " + "fuse(" * depth + "x, y)"
            + ", y)" * (depth - 1) + " }")
    assert fusiondsl.loads(text).names == ["d"]


def test_many_diagrams_all_check() -> None:
    """10,000 diagrams in one file check (their speed is measured by benchmarks/bench_check.py,
    not here: timings in unit tests are noise on a shared machine)."""
    text = "".join(f"diagram d{i}(x: 4x1o, y: 1o) -> z: 4x0e + 4x1e "
                   f"{{ z = fuse(x, y) weights uvu }}\n" for i in range(2000))
    assert len(fusiondsl.loads(text).names) == 2000


# ---- diagnostics that help (issue 18) ------------------------------------------------------
def _error(text: str) -> fusiondsl.FusionError:
    with pytest.raises(fusiondsl.FusionError) as info:
        fusiondsl.loads(text, "spec.fd")
    return info.value


def test_an_unreachable_output_lists_what_the_couplings_give() -> None:
    err = _error("diagram d(x: 1o, y: 1o) -> z: 4x1o {\n    z = fuse(x, y) weights uvw\n}\n")
    assert err.first.message == "declared output 4x1o is reached by no path"
    assert "couplings give: 0e + 1e + 2e" in err.first.notes
    assert any("wrong parity" in n and "1e" in n for n in err.first.notes)
    err = _error("diagram d(x: 1o, y: 1o) -> z: 0e + 3e { z = fuse(x, y) }")
    assert "couplings give: 0e + 1e + 2e" in err.first.notes  # not only the declared 0e
    assert any("above the largest label" in n for n in err.first.notes)


def test_an_unreachable_filter_lists_what_the_couplings_give() -> None:
    err = _error("diagram d(x: 1o, y: 1o, w: 1o) -> z: 0e {\n"
                 "    t = fuse(x, y) -> 1o\n    z = fuse(t, w)\n}\n")
    assert err.first.message == "no path of this fuse reaches 1o"
    assert "couplings give: 0e + 1e + 2e" in err.first.notes
    err = _error("diagram d(x: 1o, y: 1o) -> z: 1e { z = fuse(x, y) -> 0e }")
    assert any("the declared output 1x1e drops it" in n for n in err.first.notes)


def test_nested_operands_count_in_what_the_couplings_give() -> None:
    err = _error("diagram d(x: 1o, y: 1o, w: 2e) -> z: 5o { z = fuse(fuse(x, y), w) }")
    assert "couplings give: 0e + 1e + 2e + 3e + 4e" in err.first.notes


@pytest.mark.parametrize(("text", "where", "word"), [
    ("diagram d(x: 4x1o, y: 1o) -> z: 4x1o {\n    z = fuse(x, y) wieghts uvu\n}", (2, 20),
     "weights"),
    ("diagarm d(x: 1o, y: 1o) -> z: 0e { z = fuse(x, y) }", (1, 1), "diagram"),
    ("diagram d(x: 1o, y: 1o) -> z: 0e {\n    z = sum_J fuse(x[i], y[j])\n}", (2, 9), "sum_j"),
    ("graph g {\n    edge a: 1o, b: 1o, c: 0e\n    vertx (a, b, c)\n}", (3, 5), "vertex"),
    ("diagram d(x: 2x1o, y: 1o) -> z: 2x1o {\n    z = fuse(x, y) weights uvu externel\n}",
     (2, 32), "external"),
])
def test_a_misspelt_keyword_is_reported_at_the_typo(text: str, where: tuple, word: str) -> None:
    err = _error(text)
    assert (err.first.span.line, err.first.span.col) == where
    assert err.first.message.endswith(f"did you mean {word!r}?")


def test_a_name_near_a_keyword_is_not_misread() -> None:
    """Only a keyword the parser could take there is suggested."""
    err = _error("diagram d(x: 1o, y: 1o) -> z: 0e {\n    z = fuse(x y)\n}")
    assert "did you mean" not in err.render()


def test_a_missing_brace_points_at_the_brace() -> None:
    text = ("diagram first(x: 1o, y: 1o) -> z: 0e {\n    z = fuse(x, y)\n\n"
            "diagram second(x: 1o, y: 1o) -> z: 0e {\n    z = fuse(x, y)\n}\n")
    err = _error(text)
    assert err.first.message == "'{' opened at 1:38 is never closed"
    assert (err.first.span.line, err.first.span.col) == (1, 38)
    assert err.first.notes == ("close it with '}' before 'diagram' on line 4",)
    assert "reserved word" not in err.render()
    err = _error("diagram d(x: 1o, y: 1o) -> z: 0e {\n    z = fuse(x, y)\n")
    assert err.first.notes == ("close it with '}' before the end of the file",)


def test_a_long_line_is_shown_cut_around_the_caret() -> None:
    err = _error("let A = 1o\nlet H = " + "1o + " * 1000 + "q\n")
    _, shown, caret = err.render().splitlines()[:3]
    assert len(shown) < 200 and shown.startswith("  …") and shown.endswith("q")
    assert shown[caret.index("^")] == "q"

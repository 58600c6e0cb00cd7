"""Fuzzing the front end: any text gives a program or a FusionError, never another exception."""

from __future__ import annotations

import re
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fusiondsl
from fusiondsl import FusionError
from fusiondsl.front.parse import KEYWORDS

SPECS = Path(__file__).parent / "specs"
SOURCES = [p.read_text(encoding="utf-8") for p in sorted((SPECS / "good").glob("*.fd"))]
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z_0-9]*|\d+x|\d+(?:/\d+)?[a-zA-Z]?|->|.", re.S)
PIECES = [*KEYWORDS, "->", "(", ")", "{", "}", "[i]", "[j]", ",", ":", "=", "+", "*", "x",
          "0e", "1o", "2e", "1/2", "3/2", "16x", "sh(2)", "uvw", "uuu", "uvu", "linear", "cat",
          "\n", " ", "#", "0x", "9", "h", "a"]
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(text: str) -> None:
    """Load ``text``: a program, or a FusionError that renders with positions, in bounded time."""
    start = time.perf_counter()
    try:
        prog = fusiondsl.loads(text, "fuzz.fd")
    except FusionError as err:
        assert time.perf_counter() - start < 60, "checking took unbounded time"  # a hang guard
        rendered = err.render()
        assert rendered and "Traceback" not in rendered
        assert all(d.message for d in err.diagnostics)
        assert all(d.span.line >= 0 and d.span.col >= 0 for d in err.diagnostics)
        return
    prog.to_text()


@FUZZ
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    check(text)


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_random_token_soup(text: str) -> None:
    check(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A good spec with a few characters or tokens deleted, inserted or replaced."""
    tokens = TOKEN.findall(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        k = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "insert", "replace", "char"]))
        piece = draw(st.sampled_from(PIECES))
        if op == "delete":
            del tokens[k]
        elif op == "insert":
            tokens.insert(k, piece)
        elif op == "replace":
            tokens[k] = piece
        else:
            t = tokens[k]
            i = draw(st.integers(0, len(t)))
            tokens[k] = t[:i] + draw(st.characters(codec="utf-8")) + t[i + 1:]
    return "".join(tokens)


@FUZZ
@given(mutated())
def test_mutated_specs(text: str) -> None:
    check(text)


def test_unprintable_and_odd_input() -> None:
    for text in ["", "\x00", "\ufeff", "diagram", "let H = 99999999999999999999999x0e",
                 "let H = 1/0", "group", "graph g { vertex () }", "let H = sh(999999999999)",
                 "diagram d() -> z: 0e { }", "let H = 0/2e"]:
        check(text)


@st.composite
def blown_up(draw: st.DrawFn) -> str:
    """Deep nesting and many operands: the shapes that used to take minutes or hang."""
    irreps = draw(st.sampled_from(["2x(0e+1o)", "0e+1o+2e", "sh(3)", "4x1o"]))
    depth = draw(st.integers(1, 40))
    width = draw(st.integers(2, 24))
    if draw(st.booleans()):
        body = "fuse(" * depth + "x, x)" + ", x)" * (depth - 1)
    else:
        body = "fuse(" + ", ".join(["x"] * width) + ")"
    return f"diagram d(x: {irreps}) -> z: 0e {{ z = {body} }}"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blown_up())
def test_deep_and_wide_diagrams_are_bounded(text: str) -> None:
    check(text)


def test_many_operands_with_no_path_to_the_output_are_refused_quickly() -> None:
    """``4x1o`` coupled 15–24 times into ``0e`` (odd counts have no path): the checker used to
    list every labelling of the chain (3^16 for 17 operands, minutes) before saying so; it now
    lists only chains that can still end in a wanted label. The hypothesis strategy above
    found it."""
    for n in range(15, 25):
        text = f"diagram d(x: 4x1o) -> z: 0e {{ z = fuse({', '.join(['x'] * n)}) }}"
        check(text)

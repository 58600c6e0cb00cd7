"""Text-level help for syntax errors: bracket depth, unclosed brackets, misspelt keywords.

These work on the source text alone (no lark), so :mod:`fusiondsl.front.parse` can call them before
parsing (the depth limit) or while turning a lark error into a diagnostic.

>>> text = "diagram d(x: 1o) -> z: 0e {" + chr(10) + "  z = fuse(x, x)" + chr(10)
>>> unclosed(text, len(text))
26
>>> suggest("wieghts", ["weights", "fuse"])
'weights'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from fusiondsl.core.diagnostics import FusionError, Span

KEYWORDS = (
    "group let diagram graph edge vertex in out fuse weights external sum_j sh node".split()
)
"""The reserved words of the language (never a name)."""

MAX_DEPTH = 64
"""Deepest bracket nesting accepted; deeper text is refused before parsing (it would only
exhaust the stack of the checker, and no diagram needs it: name the inner part instead)."""

CLOSERS = {"(": ")", "{": "}", "[": "]"}
_BRACKETS = re.compile(r"#[^\n]*|[(){}\[\]]")  # a comment is skipped whole


def position(text: str, offset: int) -> Span:
    """The 1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return Span(line, offset - text.rfind("\n", 0, offset))


def token_span(tok: Any) -> Span:
    """The span of one lark token (anything with ``line``, ``column`` and its text)."""
    return Span(tok.line or 0, tok.column or 0, max(1, len(str(tok))))


def check_depth(text: str) -> None:
    """Refuse brackets nested deeper than :data:`MAX_DEPTH`, at the first one too deep.

    Raises:
        FusionError: at the opening bracket that goes one level too deep.
    """
    depth = 0
    for m in _BRACKETS.finditer(text):
        c = m.group()
        if c in CLOSERS:
            depth += 1
            if depth > MAX_DEPTH:
                raise FusionError.at(f"brackets are nested more than {MAX_DEPTH} deep",
                                     position(text, m.start()),
                                     "give the inner part a name (an assignment or a let) "
                                     "and use the name")
        elif c in ")}]":
            depth = max(0, depth - 1)


def unclosed(text: str, offset: int) -> int | None:
    """The offset of the innermost bracket opened before ``offset`` and not closed by then."""
    stack: list[int] = []
    for m in _BRACKETS.finditer(text, 0, offset):
        c = m.group()
        if c in CLOSERS:
            stack.append(m.start())
        elif c in ")}]" and stack:
            stack.pop()
    return stack[-1] if stack else None


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``word`` is most likely a misspelling of, if any is close enough."""
    match = difflib.get_close_matches(word, [c for c in candidates if c != word], n=1,
                                      cutoff=0.75)
    return match[0] if match else None

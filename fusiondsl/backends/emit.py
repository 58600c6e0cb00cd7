"""A tiny line emitter for generated source: lines, comments, indentation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

# Characters a spec's file name may show as they are inside generated source (docstrings,
# comments, C comments): no quote, backslash, '*' or line break can come through.
_PLAIN_TEXT = re.compile(r"[\w./+@,:=~ -]*")


def safe_text(text: str) -> str:
    r"""A user string (a file name) as text that is inert in any generated docstring or comment.

    Plain names pass unchanged; anything else becomes its ``ascii()`` form with double quotes
    and ``*/`` escaped, so it can neither end a Python docstring nor a C comment.

    >>> safe_text("examples/conv.fd")
    'examples/conv.fd'
    >>> print(safe_text('a"b\n*/c'))
    'a\x22b\n*\x2fc'
    """
    if _PLAIN_TEXT.fullmatch(text) and text.isprintable():
        return text
    return ascii(text).replace('"', "\\x22").replace("*/", "*\\x2f")


class Emitter:
    """Accumulates source lines with the current indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str = "") -> None:
        """One line of code (blank lines carry no indentation)."""
        self.lines.append("    " * self.depth + text if text else "")

    def comment(self, text: str) -> None:
        """A ``# comment`` line."""
        self.line(f"# {text}")

    @contextmanager
    def indent(self) -> Iterator[None]:
        """Indent the lines emitted inside the ``with`` block."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def source(self) -> str:
        """All lines, newline-terminated."""
        return "\n".join(self.lines) + "\n"

"""A tiny line emitter for generated source: lines, comments, indentation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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

"""Source spans and user-facing errors: ``file:line:col: error: message`` plus a caret.

Every error a user can cause (bad syntax, a broken coupling rule, an unknown name) is a
:class:`FusionError` carrying one or more :class:`Diagnostic` values. Nothing else may reach a
user: the CLI renders these and exits 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of source text: 1-based line and column of its start, and its length.

    Attributes:
        line: 1-based line of the first character.
        col: 1-based column of the first character.
        length: number of characters the caret marks (at least 1).
    """

    line: int
    col: int
    length: int = 1

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


NO_SPAN = Span(0, 0, 0)


@dataclass(frozen=True)
class Diagnostic:
    """One error at one place, with optional notes that explain it."""

    message: str
    span: Span
    notes: tuple[str, ...] = ()

    def render(self, source: str | None, filename: str) -> str:
        """Format as ``file:line:col: error: msg``, the source line, a caret and notes."""
        if self.span.line <= 0:
            lines = [f"{filename}: error: {self.message}"]
        else:
            lines = [f"{filename}:{self.span.line}:{self.span.col}: error: {self.message}"]
            source_lines = (source or "").splitlines()
            if self.span.line <= len(source_lines):
                text, col = _window(source_lines[self.span.line - 1], self.span.col)
                width = max(1, min(self.span.length, len(text) - col + 1))
                lines.append(f"  {text}")
                lines.append("  " + " " * (col - 1) + "^" + "~" * (width - 1))
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


MAX_SHOWN = 160
"""Longest source line shown whole; a longer one is cut to this many characters around the
caret (a generated or minified spec can have one line of megabytes)."""


def _window(text: str, col: int) -> tuple[str, int]:
    """``text`` cut to :data:`MAX_SHOWN` characters around column ``col``, and the new column."""
    if len(text) <= MAX_SHOWN:
        return text, col
    start = max(0, min(col - 1 - MAX_SHOWN // 2, len(text) - MAX_SHOWN))
    shown = text[start:start + MAX_SHOWN]
    head = "…" if start > 0 else ""
    tail = "…" if start + MAX_SHOWN < len(text) else ""
    return head + shown + tail, col - start + len(head)


@dataclass
class FusionError(Exception):
    """A user error (syntax, coupling rule, name, type), with every diagnostic found.

    Attributes:
        diagnostics: the errors, sorted by position.
        source: the text they point into, for rendering.
        filename: how to name that text in messages.
    """

    diagnostics: list[Diagnostic]
    source: str | None = None
    filename: str = "<string>"

    def __post_init__(self) -> None:
        self.diagnostics = sorted(
            self.diagnostics, key=lambda d: (d.span.line, d.span.col, d.message)
        )
        super().__init__(self.render())

    @classmethod
    def at(cls, message: str, span: Span, *notes: str) -> FusionError:
        """Build an error with a single diagnostic."""
        return cls([Diagnostic(message, span, tuple(notes))])

    def with_source(self, source: str, filename: str) -> FusionError:
        """Return the same error, attached to the text it refers to."""
        return FusionError(list(self.diagnostics), source, filename)

    def render(self) -> str:
        """All diagnostics, each as ``file:line:col: error: ...`` with a caret."""
        return "\n".join(d.render(self.source, self.filename) for d in self.diagnostics)

    def __str__(self) -> str:
        return self.render()

    @property
    def first(self) -> Diagnostic:
        """The first diagnostic in source order."""
        return self.diagnostics[0]


class InternalError(RuntimeError):
    """A bug in fusiondsl itself (never the user's fault); shows the IR around the fault."""


def debug_enabled() -> bool:
    """Whether ``FUSIONDSL_DEBUG=1`` asks for full tracebacks."""
    return os.environ.get("FUSIONDSL_DEBUG", "") not in ("", "0")

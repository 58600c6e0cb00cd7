"""lark's errors as diagnostics: a plain message, the position, and a hint where one helps.

The hints: a bracket still open at the end of the file or at the next item is reported where
it was opened; a name one typo away from the keyword the parser wanted is reported as that
typo ("did you mean 'weights'?"). With :mod:`~fusiondsl.front.parse`, the only module that knows
lark.
"""

from __future__ import annotations

import lark
from lark import Lark, Token

from fusiondsl.core.diagnostics import Diagnostic, Span
from fusiondsl.front.parse_hints import CLOSERS, KEYWORDS, position, suggest, token_span, unclosed

# Readable names for lark's terminals, used in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "IRREP": "an irrep such as 1o",
    "MUL": "a multiplicity such as 16x",
    "INT": "an integer",
    "EXTERNAL": "'external'",
    "$END": "end of file",
}


def _expected(tokens: set[str], parser: Lark) -> str:
    literals = _literals(parser)
    names = sorted({_TERMINAL_NAMES.get(t, repr(literals.get(t, t.lower()))) for t in tokens})
    if not names or len(names) > 6:
        return ""
    return ", expected " + (names[0] if len(names) == 1 else "one of " + ", ".join(names))


def _literals(parser: Lark) -> dict[str, str]:
    """Terminal name to its text, for the terminals that are fixed strings (``LPAR``: ``(``)."""
    return {t.name: t.pattern.value for t in parser.terminals if t.pattern.type == "str"}


def _unexpected_token(err: lark.exceptions.UnexpectedToken, text: str,
                      parser: Lark) -> Diagnostic:
    tok = err.token
    hint = _unclosed_bracket(err, text) or _misspelt_keyword(err, text, parser)
    if hint is not None:
        return hint
    if tok.type == "$END":
        # lark places $END on the last token: point just past it, where text is missing.
        end = Span(tok.end_line or err.line, tok.end_column or err.column)
        return Diagnostic("unexpected end of file" + _expected(err.expected, parser), end)
    keyword = str(tok) in KEYWORDS and tok.type != "NAME"
    what = f"keyword {str(tok)!r}" if keyword else repr(str(tok))
    message = f"unexpected {what}" + _expected(err.expected, parser)
    notes = ()
    if keyword and "NAME" in err.expected:
        notes = (f"{str(tok)!r} is a reserved word and cannot be used as a name",)
    return Diagnostic(message, token_span(tok), notes)


_ITEM_KEYWORDS = ("diagram", "graph", "let", "group")
_CLOSER_TERMINALS = {"(": "RPAR", "{": "RBRACE", "[": "RSQB"}


def _unclosed_bracket(err: lark.exceptions.UnexpectedToken, text: str) -> Diagnostic | None:
    """At the end of the file or at the next item, a bracket still open is the real error."""
    tok = err.token
    at_end = tok.type == "$END"
    if not at_end and (tok.type == "NAME" or str(tok) not in _ITEM_KEYWORDS):
        return None
    offset = unclosed(text, len(text) if at_end else tok.start_pos)
    if offset is None or _CLOSER_TERMINALS[text[offset]] not in err.expected:
        return None
    where = position(text, offset)
    before = "the end of the file" if at_end else f"{str(tok)!r} on line {tok.line}"
    return Diagnostic(f"{text[offset]!r} opened at {where} is never closed", where,
                      (f"close it with {CLOSERS[text[offset]]!r} before {before}",))


def _misspelt_keyword(err: lark.exceptions.UnexpectedToken, text: str,
                      parser: Lark) -> Diagnostic | None:
    """A name where a keyword belongs, or a name just before the error, close to a keyword.

    For the name before the error (``wieghts uvu``: lark reads ``wieghts`` as the start of an
    assignment and fails at ``uvu``), the keywords are those the parser accepted before it.
    """
    terminals = {value: name for name, value in _literals(parser).items() if value in KEYWORDS}
    stack = getattr(getattr(err, "state", None), "value_stack", None) or [None]
    candidates = [(err.token, lambda: err.expected),
                  (stack[-1], lambda: _accepted(err, text, parser))]
    for tok, allowed in candidates:
        if not isinstance(tok, Token) or tok.type != "NAME":
            continue
        if suggest(str(tok), terminals) is None:  # cheap: only then ask what the parser accepts
            continue
        word = suggest(str(tok), [k for k, t in terminals.items() if t in allowed()])
        if word is not None:
            return Diagnostic(f"unexpected name {str(tok)!r}: did you mean {word!r}?",
                              token_span(tok))
    return None


def _accepted(err: lark.exceptions.UnexpectedToken, text: str, parser: Lark) -> set[str]:
    """The terminals the parser accepted just before the token on top of its stack.

    Re-parses the current item (from its ``diagram``/``graph``/``let``/``group`` keyword) up
    to that token: the stack itself has already been reduced by it.
    """
    stack = err.state.value_stack
    heads = [t for t in stack if isinstance(t, Token) and t.type != "NAME"
             and str(t) in _ITEM_KEYWORDS]
    if not heads or heads[-1].start_pos is None or stack[-1].start_pos is None:
        return set()
    try:
        ip = parser.parse_interactive(text[heads[-1].start_pos:stack[-1].start_pos], "start")
        ip.exhaust_lexer()
        return set(ip.accepts())
    except lark.exceptions.LarkError:
        return set()


def syntax_error(err: lark.exceptions.LarkError, text: str, parser: Lark) -> Diagnostic:
    """Convert one lark error into a diagnostic with a position and a plain message."""
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        char = err.char if err.char.isprintable() else repr(err.char)
        return Diagnostic(f"unexpected character {char!r}", Span(err.line, err.column))
    if isinstance(err, lark.exceptions.UnexpectedToken):
        return _unexpected_token(err, text, parser)
    if isinstance(err, lark.exceptions.UnexpectedEOF):
        return Diagnostic("unexpected end of file", Span(0, 0))
    return Diagnostic(f"syntax error: {err}", Span(0, 0))



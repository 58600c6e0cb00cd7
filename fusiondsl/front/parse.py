"""Text to syntax tree: the only module that imports lark.

Every lark error is converted to a :class:`~fusiondsl.core.diagnostics.FusionError` in one place
(:func:`fusiondsl.front.parse_errors.syntax_error`, the one other module that knows lark's
exceptions), so a user never sees a lark traceback.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import lark
from lark import Lark, Token

from fusiondsl.core import cachefile, irreps
from fusiondsl.core.cg import cache_dir
from fusiondsl.core.diagnostics import NO_SPAN, FusionError, Span
from fusiondsl.core.irreps import Group, Irreps
from fusiondsl.front import ast
from fusiondsl.front.evaluate import evaluate_irreps
from fusiondsl.front.parse_errors import syntax_error
from fusiondsl.front.parse_hints import KEYWORDS, check_depth, token_span

__all__ = ["KEYWORDS", "gc_paused", "grammar_text", "parse", "parse_irreps"]


def grammar_text() -> str:
    """The grammar file shipped with the package (``fusiondsl/grammar/fusion.lark``)."""
    return resources.files("fusiondsl.grammar").joinpath("fusion.lark").read_text("utf-8")


class _Lexer(lark.lexer.Lexer):
    """lark's contextual lexer, made fast: one compiled pattern over every terminal.

    Terminals are tried in lark's own order; only a token the parser cannot take here is
    re-read with the terminals it can (``3`` is an ``IRREP`` except inside ``sh(…)``), as the
    contextual lexer does. lark's per-token bookkeeping was half the time of a parse.
    """

    __future_interface__ = 1  # lex() gets the parser's state

    def __init__(self, conf: Any) -> None:
        self.terminals = sorted(conf.terminals, key=lambda t: (
            -t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
        self.flags = conf.g_regex_flags
        self.ignore = frozenset(conf.ignore)
        self.pattern = self._compile(self.terminals)
        self._by_state: dict[Any, Any] = {}

    def _compile(self, terminals: list[Any]) -> Any:
        return re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals),
                          self.flags)

    def _in_context(self, state: Any) -> Any:
        """The pattern of the terminals the parser accepts in ``state``."""
        if state.position not in self._by_state:
            accepts = state.parse_conf.states[state.position]
            self._by_state[state.position] = self._compile(
                [t for t in self.terminals if t.name in accepts])
        return self._by_state[state.position]

    def lex(self, lexer_state: Any, parser_state: Any) -> Iterator[Token]:
        """The tokens of the text, read from where ``lexer_state`` stands."""
        text = getattr(lexer_state.text, "text", lexer_state.text)  # lark >= 1.2: a TextSlice
        ctr = lexer_state.line_ctr
        pos, line, line_start, end = ctr.char_pos, ctr.line, ctr.line_start_pos, len(text)
        match, ignore = self.pattern.match, self.ignore
        states, stack = parser_state.parse_conf.states, parser_state.state_stack
        try:
            while pos < end:
                m = match(text, pos)
                if m is None:
                    raise lark.exceptions.UnexpectedCharacters(
                        text, pos, line, pos - line_start + 1, state=parser_state)
                kind = m.lastgroup
                if kind not in ignore and kind not in states[stack[-1]]:
                    m = self._in_context(parser_state).match(text, pos) or m
                    kind = m.lastgroup
                value, start, pos = m.group(), pos, m.end()
                tok_line, tok_col = line, start - line_start + 1
                if "\n" in value:
                    line += value.count("\n")
                    line_start = start + value.rindex("\n") + 1
                if kind not in ignore:
                    yield Token(kind, value, start, tok_line, tok_col, line,
                                pos - line_start + 1, pos)
        finally:  # where a resumed (interactive) parse goes on from
            ctr.char_pos, ctr.line, ctr.line_start_pos = pos, line, line_start
            ctr.column = pos - line_start + 1


_LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": _Lexer,
    "start": ["start", "irreps"],
    "keep_all_tokens": True,  # spans come from the first and last token of each rule
    "maybe_placeholders": True,
}


def _lark_cache() -> Path | None:
    """Where the analysed grammar is kept: named by a hash of everything it depends on."""
    key = "\n".join([grammar_text(), repr(sorted(_LARK_OPTIONS.items())), lark.__version__,
                     sys.version])
    try:
        return cache_dir() / f"fusion-lark-{hashlib.sha256(key.encode()).hexdigest()[:16]}.cache"
    except RuntimeError:  # no home directory to put a cache in
        return None


@functools.cache
def _parser() -> Lark:
    """The LALR parser; its tables (~40 ms to build) come from a hash-checked cache file.

    It builds the AST while it parses (the callbacks of :func:`_callbacks`): no parse tree, no
    second pass, and no recursion however deep the text.
    """
    path = _lark_cache()
    data = cachefile.load(path) if path else None
    if data is not None and path:
        try:
            # what lark's own cache does: Lark.load() takes no transformer
            return Lark.__new__(Lark)._load(io.BytesIO(data), transformer=_callbacks())
        except Exception as err:  # any unpickling failure means: rebuild
            cachefile.reject(path, f"lark could not read it: {type(err).__name__}")
    parser = Lark(grammar_text(), transformer=_callbacks(), **_LARK_OPTIONS)
    if path:
        buffer = io.BytesIO()
        parser.save(buffer, exclude_options=("transformer",))
        cachefile.store(path, buffer.getvalue())
    return parser


def _extent(first: Token | None, last: Token | None) -> Span:
    """From the start of ``first`` to the end of ``last`` (length 1 when it spans lines)."""
    if first is None or last is None:
        return Span(0, 0)
    length = last.end_column - first.column if last.end_line == first.line else 1
    return Span(first.line, first.column, max(1, length))


class _Built(NamedTuple):
    """A rule's result while parsing, with the first and last token it covers."""

    value: Any
    first: Token | None
    last: Token | None


def _callback(method: Callable[[Span, list[Any]], Any], keep_all: bool,
              kept: frozenset[str], spanned: bool) -> Callable[[list[Any]], _Built]:
    """Wrap one :class:`_ToAst` method as lark's callback for its rule.

    lark passes every token (``keep_all_tokens``); the method gets the rule's span (when it
    uses it: ``spanned``) and its children less the punctuation and keywords (the terminals
    the grammar does not name), as lark's own filter would give them.
    """

    def build(children: list[Any]) -> _Built:
        values, first, last = [], None, None
        for c in children:
            if isinstance(c, _Built):
                values.append(c.value)
                head, tail = c.first, c.last
            elif isinstance(c, Token):
                if keep_all or c.type in kept:
                    values.append(c)
                head = tail = c
            else:  # None: an optional part that is absent
                values.append(c)
                continue
            first = head if first is None else first
            last = tail if tail is not None else last
        span = _extent(first, last) if spanned else NO_SPAN
        return _Built(method(span, values), first, last)

    return build


def _callbacks() -> SimpleNamespace:
    """The callbacks lark calls, one per grammar rule, building :mod:`fusiondsl.front.ast` nodes."""
    grammar = grammar_text()
    kept = frozenset(re.findall(r"^([A-Z][A-Z_0-9]*)(?:\.\d+)?\s*:", grammar, re.M))
    keep_all = set(re.findall(r"^!(\w+)\s*:", grammar, re.M))  # `!rule`: keeps its keywords
    conv = _ToAst()
    names = [n for n in dir(conv) if n.islower() and not n.startswith("_")]
    return SimpleNamespace(**{n: _callback(getattr(conv, n), n in keep_all, kept,
                                           n in _ToAst.SPANNED) for n in names})


class _ToAst:
    """One method per grammar rule, given its span and children; each builds one AST node."""

    SPANNED = frozenset("fuse_ordered fuse_free sum_j ref vertex irreps irreps_term sh".split())
    """The rules whose node takes the rule's whole span (the others use a token's)."""

    def start(self, span: Span, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def group_stmt(self, span: Span, c: list[Token]) -> ast.GroupStmt:
        return ast.GroupStmt(str(c[0]), token_span(c[0]))

    def let_stmt(self, span: Span, c: list[Any]) -> ast.Let:
        return ast.Let(str(c[0]), c[1], token_span(c[0]))

    def diagram(self, span: Span, c: list[Any]) -> ast.DiagramDecl:
        name, *rest = c
        body = tuple(x for x in rest if isinstance(x, ast.Assign))
        head = [x for x in rest if not isinstance(x, ast.Assign)]
        out_name, out_irreps = head[-2], head[-1]
        legs = tuple(x for x in head[:-2] if x is not None)
        return ast.DiagramDecl(
            str(name), legs, str(out_name), out_irreps, body, token_span(name), token_span(out_name)
        )

    def leg(self, span: Span, c: list[Any]) -> ast.LegDecl:
        return ast.LegDecl(str(c[0]), str(c[1]) if c[1] else None, c[2], token_span(c[0]))

    def domain(self, span: Span, c: list[Token]) -> str:
        return str(c[0])

    def assign(self, span: Span, c: list[Any]) -> ast.Assign:
        return ast.Assign(str(c[0]), c[1], token_span(c[0]))

    def _fuse(self, span: Span, c: list[Any], ordered: bool) -> ast.Fuse:
        def pick(kind: type) -> tuple[Any, ...]:
            return tuple(x[1] for x in c if isinstance(x, tuple) and x[0] is kind)

        args = tuple(x for x in c if not isinstance(x, tuple))
        return ast.Fuse(
            args, ordered, pick(ast.IrrepsExpr), pick(ast.Weights), pick(ast.Ref), span
        )

    def fuse_ordered(self, span: Span, c: list[Any]) -> ast.Fuse:
        return self._fuse(span, c, True)

    def fuse_free(self, span: Span, c: list[Any]) -> ast.Fuse:
        return self._fuse(span, c, False)

    def filter(self, span: Span, c: list[Any]) -> tuple[type, Any]:
        return (ast.IrrepsExpr, c[0])

    def weights(self, span: Span, c: list[Any]) -> tuple[type, Any]:
        return (ast.Weights, ast.Weights(str(c[0]), c[1] is not None, token_span(c[0])))

    def gate(self, span: Span, c: list[Any]) -> tuple[type, Any]:
        return (ast.Ref, c[0])

    def sum_j(self, span: Span, c: list[Any]) -> ast.SumJ:
        return ast.SumJ(c[0], span)

    def call(self, span: Span, c: list[Any]) -> ast.Call:
        return ast.Call(str(c[0]), tuple(c[1:]), token_span(c[0]))

    def ref(self, span: Span, c: list[Any]) -> ast.Ref:
        return ast.Ref(str(c[0]), str(c[1]) if c[1] is not None else None, span)

    def graph(self, span: Span, c: list[Any]) -> ast.GraphDecl:
        name, *rest = c
        edges = tuple(e for x in rest if isinstance(x, tuple) for e in x)
        vertices = tuple(x for x in rest if isinstance(x, ast.VertexDecl))
        return ast.GraphDecl(str(name), edges, vertices, token_span(name))

    def edges(self, span: Span, c: list[Any]) -> tuple[ast.EdgeDecl, ...]:
        return tuple(c)

    def edge_decl(self, span: Span, c: list[Any]) -> ast.EdgeDecl:
        return ast.EdgeDecl(str(c[0]), c[1], "edge", token_span(c[0]))

    def open_in(self, span: Span, c: list[Any]) -> tuple[ast.EdgeDecl]:
        return (ast.EdgeDecl(str(c[0]), c[1], "in", token_span(c[0])),)

    def open_out(self, span: Span, c: list[Any]) -> tuple[ast.EdgeDecl]:
        return (ast.EdgeDecl(str(c[0]), c[1], "out", token_span(c[0])),)

    def vertex(self, span: Span, c: list[Any]) -> ast.VertexDecl:
        return ast.VertexDecl(tuple(c), span)

    def irreps(self, span: Span, c: list[Any]) -> ast.IrrepsExpr:
        return ast.IrrepsExpr(tuple(c), span)

    def irreps_term(self, span: Span, c: list[Any]) -> ast.IrrepsTerm:
        mul = int(str(c[0])[:-1]) if c[0] is not None else None
        return ast.IrrepsTerm(mul, c[1], span)

    def irreps_atom(self, span: Span, c: list[Any]) -> ast.IrrepsExpr:
        return c[0]  # "(" irreps ")": the parentheses only group (they count in the span above)

    def irrep(self, span: Span, c: list[Token]) -> ast.IrrepAtom:
        return ast.IrrepAtom(str(c[0]), token_span(c[0]))

    def sh(self, span: Span, c: list[Token]) -> ast.ShAtom:
        return ast.ShAtom(int(str(c[0])), span)

    def irreps_ref(self, span: Span, c: list[Token]) -> ast.IrrepsRef:
        return ast.IrrepsRef(str(c[0]), token_span(c[0]))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that form no cycles.

    On a 10,000-diagram file its repeated full scans of the growing heap cost as much as the
    parse itself (super-linear in the file's size); one scan afterwards finds nothing to free.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(text: str, start: str) -> Any:
    check_depth(text)
    try:
        with gc_paused():
            return _parser().parse(text, start=start).value
    except lark.exceptions.LarkError as err:
        raise FusionError([syntax_error(err, text, _parser())]) from None


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse a whole ``.fd`` file into a syntax tree.

    A UTF-8 byte-order mark at the start is ignored. Text with no diagram (empty, or only
    comments, ``let`` and ``group`` lines) is a valid, empty module: :func:`fusiondsl.loads`
    returns a program with no diagrams, and ``fusiondsl check`` reports "no diagram in FILE".

    Raises:
        FusionError: with the position of the first syntax error, or of the first bracket
            nested more than :data:`~fusiondsl.front.parse_hints.MAX_DEPTH` deep.
    """
    text = text.removeprefix("\ufeff")
    try:
        items = _run(text, "start")
    except FusionError as err:
        raise err.with_source(text, filename) from None
    return ast.Module(items, text, filename)


def parse_irreps(text: str, group: Group = "O3") -> Irreps:
    """Parse a standalone irreps string such as ``16x0e + 8x(1o + 2e)``; no names allowed."""
    try:
        expr = _run(text, "irreps")
        return evaluate_irreps(expr, group, {})
    except FusionError as err:
        raise err.with_source(text, "<irreps>") from None


irreps.set_text_parser(parse_irreps)

"""Text to syntax tree: the only module that imports lark.

Every lark error is converted to a :class:`~fusiondsl.diagnostics.FusionError` in one place
(:func:`_syntax_error`), so a user never sees a lark traceback.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args

from fusiondsl import ast
from fusiondsl.diagnostics import Diagnostic, FusionError, Span
from fusiondsl.irreps import Group, Irreps

KEYWORDS = (
    "group let diagram graph edge vertex in out fuse weights external sum_j sh node".split()
)

# Readable names for lark's terminals, used in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name",
    "IRREP": "an irrep such as 1o",
    "MUL": "a multiplicity such as 16x",
    "INT": "an integer",
    "EXTERNAL": "'external'",
    "$END": "end of file",
}


def grammar_text() -> str:
    """The grammar file shipped with the package (``fusiondsl/grammar/fusion.lark``)."""
    return resources.files("fusiondsl.grammar").joinpath("fusion.lark").read_text("utf-8")


def _lark_cache() -> str | bool:
    """Where lark keeps its analysed grammar (it checks the grammar's hash on load)."""
    from fusiondsl.cg import cache_dir

    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(folder / "fusion-lark.cache")


@functools.cache
def _parser() -> Lark:
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        start=["start", "irreps"],
        propagate_positions=True,
        maybe_placeholders=True,
        cache=_lark_cache(),  # building the LALR tables costs ~40 ms per process
    )


def _span(meta: Any) -> ast.Span:
    if getattr(meta, "empty", True):
        return Span(0, 0)
    length = meta.end_column - meta.column if meta.end_line == meta.line else 1
    return Span(meta.line, meta.column, max(1, length))


def _tok_span(tok: Token) -> Span:
    return Span(tok.line or 0, tok.column or 0, max(1, len(str(tok))))


@v_args(meta=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    """One method per grammar rule; each builds one AST node with its span."""

    def start(self, meta: Any, items: list[Any]) -> tuple[Any, ...]:
        return tuple(items)

    def group_stmt(self, meta: Any, c: list[Token]) -> ast.GroupStmt:
        return ast.GroupStmt(str(c[0]), _tok_span(c[0]))

    def let_stmt(self, meta: Any, c: list[Any]) -> ast.Let:
        return ast.Let(str(c[0]), c[1], _tok_span(c[0]))

    def diagram(self, meta: Any, c: list[Any]) -> ast.DiagramDecl:
        name, *rest = c
        body = tuple(x for x in rest if isinstance(x, ast.Assign))
        head = [x for x in rest if not isinstance(x, ast.Assign)]
        out_name, out_irreps = head[-2], head[-1]
        legs = tuple(x for x in head[:-2] if x is not None)
        return ast.DiagramDecl(
            str(name), legs, str(out_name), out_irreps, body, _tok_span(name), _tok_span(out_name)
        )

    def leg(self, meta: Any, c: list[Any]) -> ast.LegDecl:
        return ast.LegDecl(str(c[0]), str(c[1]) if c[1] else None, c[2], _tok_span(c[0]))

    def domain(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def assign(self, meta: Any, c: list[Any]) -> ast.Assign:
        return ast.Assign(str(c[0]), c[1], _tok_span(c[0]))

    def _fuse(self, meta: Any, c: list[Any], ordered: bool) -> ast.Fuse:
        def pick(kind: type) -> tuple[Any, ...]:
            return tuple(x[1] for x in c if isinstance(x, tuple) and x[0] is kind)

        args = tuple(x for x in c if not isinstance(x, tuple))
        return ast.Fuse(
            args, ordered, pick(ast.IrrepsExpr), pick(ast.Weights), pick(ast.Ref), _span(meta)
        )

    def fuse_ordered(self, meta: Any, c: list[Any]) -> ast.Fuse:
        return self._fuse(meta, c, True)

    def fuse_free(self, meta: Any, c: list[Any]) -> ast.Fuse:
        return self._fuse(meta, c, False)

    def filter(self, meta: Any, c: list[Any]) -> tuple[type, Any]:
        return (ast.IrrepsExpr, c[0])

    def weights(self, meta: Any, c: list[Any]) -> tuple[type, Any]:
        return (ast.Weights, ast.Weights(str(c[0]), c[1] is not None, _tok_span(c[0])))

    def gate(self, meta: Any, c: list[Any]) -> tuple[type, Any]:
        return (ast.Ref, c[0])

    def sum_j(self, meta: Any, c: list[Any]) -> ast.SumJ:
        return ast.SumJ(c[0], _span(meta))

    def call(self, meta: Any, c: list[Any]) -> ast.Call:
        return ast.Call(str(c[0]), tuple(c[1:]), _tok_span(c[0]))

    def ref(self, meta: Any, c: list[Any]) -> ast.Ref:
        return ast.Ref(str(c[0]), str(c[1]) if c[1] is not None else None, _span(meta))

    def graph(self, meta: Any, c: list[Any]) -> ast.GraphDecl:
        name, *rest = c
        edges = tuple(e for x in rest if isinstance(x, tuple) for e in x)
        vertices = tuple(x for x in rest if isinstance(x, ast.VertexDecl))
        return ast.GraphDecl(str(name), edges, vertices, _tok_span(name))

    def edges(self, meta: Any, c: list[Any]) -> tuple[ast.EdgeDecl, ...]:
        return tuple(c)

    def edge_decl(self, meta: Any, c: list[Any]) -> ast.EdgeDecl:
        return ast.EdgeDecl(str(c[0]), c[1], "edge", _tok_span(c[0]))

    def open_in(self, meta: Any, c: list[Any]) -> tuple[ast.EdgeDecl]:
        return (ast.EdgeDecl(str(c[0]), c[1], "in", _tok_span(c[0])),)

    def open_out(self, meta: Any, c: list[Any]) -> tuple[ast.EdgeDecl]:
        return (ast.EdgeDecl(str(c[0]), c[1], "out", _tok_span(c[0])),)

    def vertex(self, meta: Any, c: list[Any]) -> ast.VertexDecl:
        return ast.VertexDecl(tuple(c), _span(meta))

    def irreps(self, meta: Any, c: list[Any]) -> ast.IrrepsExpr:
        return ast.IrrepsExpr(tuple(c), _span(meta))

    def irreps_term(self, meta: Any, c: list[Any]) -> ast.IrrepsTerm:
        mul = int(str(c[0])[:-1]) if c[0] is not None else None
        return ast.IrrepsTerm(mul, c[1], _span(meta))

    def irrep(self, meta: Any, c: list[Token]) -> ast.IrrepAtom:
        return ast.IrrepAtom(str(c[0]), _tok_span(c[0]))

    def sh(self, meta: Any, c: list[Token]) -> ast.ShAtom:
        return ast.ShAtom(int(str(c[0])), _span(meta))

    def irreps_ref(self, meta: Any, c: list[Token]) -> ast.IrrepsRef:
        return ast.IrrepsRef(str(c[0]), _tok_span(c[0]))


def _expected(tokens: set[str]) -> str:
    names = sorted({_TERMINAL_NAMES.get(t, repr(_literal(t))) for t in tokens})
    if not names or len(names) > 6:
        return ""
    return ", expected " + (names[0] if len(names) == 1 else "one of " + ", ".join(names))


@functools.cache
def _literals() -> dict[str, str]:
    return {t.name: t.pattern.value for t in _parser().terminals if t.pattern.type == "str"}


def _literal(name: str) -> str:
    return _literals().get(name, name.lower())


def _unexpected_token(err: lark.exceptions.UnexpectedToken) -> Diagnostic:
    tok = err.token
    if tok.type == "$END":
        opened = ("a '{' is still open: close it with '}'",) if "RBRACE" in err.expected else ()
        # lark places $END on the last token: point just past it, where text is missing.
        end = Span(tok.end_line or err.line, tok.end_column or err.column)
        return Diagnostic("unexpected end of file" + _expected(err.expected), end, opened)
    keyword = str(tok) in KEYWORDS and tok.type != "NAME"
    what = f"keyword {str(tok)!r}" if keyword else repr(str(tok))
    message = f"unexpected {what}" + _expected(err.expected)
    notes = ()
    if keyword and "NAME" in err.expected:
        notes = (f"{str(tok)!r} is a reserved word and cannot be used as a name",)
    return Diagnostic(message, _tok_span(tok), notes)


def _syntax_error(err: lark.exceptions.LarkError) -> Diagnostic:
    """Convert one lark error into a diagnostic with a position and a plain message."""
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        char = err.char if err.char.isprintable() else repr(err.char)
        return Diagnostic(f"unexpected character {char!r}", Span(err.line, err.column))
    if isinstance(err, lark.exceptions.UnexpectedToken):
        return _unexpected_token(err)
    if isinstance(err, lark.exceptions.UnexpectedEOF):
        return Diagnostic("unexpected end of file", Span(0, 0))
    return Diagnostic(f"syntax error: {err}", Span(0, 0))


def _run(text: str, start: str) -> Any:
    try:
        tree = _parser().parse(text, start=start)
        return _ToAst().transform(tree)
    except lark.exceptions.VisitError as err:
        raise err.orig_exc from None
    except lark.exceptions.LarkError as err:
        raise FusionError([_syntax_error(err)]) from None


def parse(text: str, filename: str = "<string>") -> ast.Module:
    """Parse a whole ``.fd`` file into a syntax tree.

    Raises:
        FusionError: with the position of the first syntax error.
    """
    try:
        items = _run(text, "start")
    except FusionError as err:
        raise err.with_source(text, filename) from None
    return ast.Module(items, text, filename)


def parse_irreps(text: str, group: Group = "O3") -> Irreps:
    """Parse a standalone irreps string such as ``16x0e + 8x(1o + 2e)``; no names allowed."""
    from fusiondsl.validate import evaluate_irreps  # the one place labels are checked

    try:
        expr = _run(text, "irreps")
        return evaluate_irreps(expr, group, {})
    except FusionError as err:
        raise err.with_source(text, "<irreps>") from None

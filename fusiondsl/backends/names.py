"""One namer for generated source: users' names become identifiers that cannot collide.

Every backend derives identifiers from a user's names by appending suffixes (``h`` gives
``h_0``, ``h_j``, ``h_pre0``, ``h_out``) and uses names of its own (``receivers``, ``t0``,
``acc_0_0``, ``_scatter_sum``, ``kernels_m``). Before lowering, :func:`safe_diagram` renames
every leg, node and graph edge so that

- a plain name (letters and digits, or the checker's own ``_f3``/``_c1``) stays as written
  unless the compiler uses it, or uses it followed by ``_``, for a name of its own;
- any other name (an underscore inside, a keyword, a compiler name) becomes ``U<len>_<name>``
  (``lambda`` → ``U6_lambda``, ``a_0`` → ``U3_a_0``), which no suffix of another name and no
  compiler name can produce: the length prefix makes the renaming injective.

``COMPILER_NAMES`` lists the identifiers the emitters use for themselves. It was read off the
emitters' output on every example with every user name renamed away; an emitter that adds a new
temporary must add it here (tests/test_hostile.py checks the known collisions, the random spec
generator the rest).
"""

from __future__ import annotations

import builtins
import dataclasses
import keyword
import re

from fusiondsl.ir.diagram import AnyDiagram, Diagram, GraphDiagram

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9]*|_[a-z][0-9]+")

C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto "
    "if inline int long register restrict return short signed sizeof static struct switch "
    "typedef union unsigned void volatile while _Bool _Complex bool true false NULL size_t "
    "int64_t int32_t".split()
)

# Identifiers of the shape a user's name may keep that the emitters use for themselves, in the
# Python module or at C file scope: whole names, and the part before a suffix the emitters
# append to names (``_0``, ``_j``, ``_pre0``, ``_out``, ``_x0``, ``_w``, ``_xs``). Names that
# the emitters follow by digits (``t0``, ``xx3``, ``wt1``) are listed by their letters in
# ``COMPILER_DIGIT_BASES``.
COMPILER_NAMES = frozenset(
    """
    ACC CG G Module NodeKernels None Parameter REAL TJ True False TypeError W3J Z acc add alpha
    arange as axis batch bmm cat cg class const constexpr def device dim dot dtype edge einsum
    else entries exact expand flatten fn for forward from fuse fusiondsl gate getattr globals if
    import in index irreps is jit language load lower mask matmul math n name nn num old origin
    other out permute persistent raise randn real receivers recurse reshape restrict result
    return self senders setattr shape stack store sum super t tj tl to torch transpose triton
    tuple typedef unsqueeze upper value view void w3j weight zeros zmask kernels ctypes
    linecache Contract parts entry pair w
    """.split()
)
COMPILER_DIGIT_BASES = frozenset("c cg t u v w r x xx wt complex float int".split())
_DIGITS = re.compile(r"([A-Za-z]+?)[0-9]+")
_RESERVED = COMPILER_NAMES | C_KEYWORDS | frozenset(dir(builtins))


def is_plain(name: str) -> bool:
    """Whether a user's name can appear in generated source as written."""
    if _PLAIN.fullmatch(name) is None or name in _RESERVED or keyword.iskeyword(name):
        return False
    digits = _DIGITS.fullmatch(name)
    if digits is not None and digits.group(1) in COMPILER_DIGIT_BASES:
        return False
    return not keyword.issoftkeyword(name)


def safe_name(name: str) -> str:
    """The identifier generated code uses for a user's name.

    >>> safe_name("h"), safe_name("a_0"), safe_name("lambda"), safe_name("receivers")
    ('h', 'U3_a_0', 'U6_lambda', 'U9_receivers')
    """
    return name if is_plain(name) else f"U{len(name)}_{name}"


def safe_diagram(d: AnyDiagram) -> AnyDiagram:
    """The same diagram with every user name replaced by :func:`safe_name`."""
    if isinstance(d, GraphDiagram):
        edges = tuple(dataclasses.replace(e, name=safe_name(e.name)) for e in d.edges)
        vertices = tuple(tuple(safe_name(n) for n in v) for v in d.vertices)
        return dataclasses.replace(d, edges=edges, vertices=vertices)  # type: ignore[arg-type]
    assert isinstance(d, Diagram)
    legs = tuple(dataclasses.replace(leg, name=safe_name(leg.name)) for leg in d.legs)
    nodes = tuple(dataclasses.replace(n, name=safe_name(n.name)) for n in d.nodes)
    return dataclasses.replace(d, legs=legs, nodes=nodes, out_name=safe_name(d.out_name))


_MANGLED = re.compile(r"\bU([0-9]+)_")


def user_text(text: str) -> str:
    """Text about a renamed diagram with the users' own names back (for docstrings).

    >>> user_text("U1_t = fuse(a, U3_a_0)")
    't = fuse(a, a_0)'
    """
    out, pos = [], 0
    for m in _MANGLED.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()])
        pos = m.end() + int(m.group(1))
        out.append(text[m.end():pos])
    return "".join(out) + text[pos:]

"""What a Triton kernel needs to know about one path: channel letters, sizes, coupling tree.

Every fuse node is a multilinear map, so with its cotangent it is a *closed* diagram
``F(x0, …, x{n-1}, out, w)``: a tree of coupling vertices on the path's legs, times a weight
block acting on channels only. Each kernel evaluates ``∂F/∂role`` for one role (``out`` is
the forward pass, ``x1`` the gradient with respect to the second operand, …): the same
tree, rooted at another leg. This module describes those trees and channel layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fusiondsl.core.coupling import Coupling, fuse_coupling
from fusiondsl.core.diagnostics import NO_SPAN, Diagnostic, FusionError, Span
from fusiondsl.core.irreps import Group, Irrep, Irreps
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.ir.paths import Path

# Channel letters of each binary mode: operands, result, weight block (as e3nn's einsums).
_WEIGHTED = {
    "uvw": (("u", "v"), "w", "uvw"),
    "uvu": (("u", "v"), "u", "uv"),
    "uvv": (("u", "v"), "v", "uv"),
    "uuw": (("u", "u"), "w", "uw"),
    "uvuv": (("u", "v"), "uv", "uv"),
}
# e3nn's weightless binary modes sum the channel missing from the result.
_WEIGHTLESS = {
    "uvu": (("u", "v"), "u"),
    "uvv": (("u", "v"), "v"),
    "uuw": (("u", "u"), ""),
    "uvuv": (("u", "v"), "uv"),
}
# Tiles are 4-d: [batch, u, v, w]; a letter a tile lacks is an axis of size 1.
AXES = {"u": 1, "v": 2, "w": 3}


def next_pow2(n: int) -> int:
    """Smallest power of two ≥ n (Triton block shapes are powers of two)."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


@dataclass(frozen=True)
class Channels:
    """Channel letters of every role of one path, and the size of every letter."""

    operands: tuple[str, ...]
    out: str
    weight: str | None
    sizes: dict[str, int]

    def of(self, role: str) -> str:
        """Letters of a role: ``x0``…, ``out`` or ``w``."""
        if role == "out":
            return self.out
        if role == "w":
            return self.weight or ""
        return self.operands[int(role[1:])]


def channels(p: Path) -> Channels:
    """The channel letters of a path's operands, result and weights (e3nn's mode rules)."""
    if p.mode in _WEIGHTED:
        u, v = p.muls
        sizes = {"u": u, "v": v, "w": p.out_mul}
        if p.weight_shape is None:
            ops, out = _WEIGHTLESS[p.mode]
            return Channels(ops, out, None, sizes)
        ops, out, w = _WEIGHTED[p.mode]
        return Channels(ops, out, w, sizes)
    ops = tuple("u" if mul == p.out_mul else "" for mul in p.muls)
    weight = {"uuu": "u", "path": "", "none": None}[p.mode]
    weight = weight if p.weight_shape is not None else None
    return Channels(ops, "u", weight, {"u": p.out_mul})


@dataclass(frozen=True)
class Vertex:
    """One coupling vertex: its three edges (two in, one out) and its coefficients."""

    edges: tuple[str, str, str]
    coupling: Coupling


@dataclass(frozen=True)
class Tree:
    """A path's coupling chain ``((x0 ⊗ x1 → k0) ⊗ x2 → k1) … → out`` as a tree of vertices."""

    vertices: tuple[Vertex, ...]
    dims: dict[str, int]
    labels: dict[str, str]

    def leaf_vertex(self, edge: str) -> int:
        """The vertex a leaf edge (``x0``…, ``out``) is attached to."""
        return next(i for i, v in enumerate(self.vertices) if edge in v.edges)

    def across(self, edge: str, vertex: int) -> int | None:
        """The vertex at the other end of ``edge`` from ``vertex`` (``None`` for a leaf)."""
        ends = [i for i, v in enumerate(self.vertices) if edge in v.edges and i != vertex]
        return ends[0] if ends else None

    def toward(self, vertex: int, edge: str) -> tuple[list[str], np.ndarray]:
        """The other two edges of a vertex and its coefficients with ``edge`` as last axis."""
        v = self.vertices[vertex]
        j = v.edges.index(edge)
        return [e for e in v.edges if e != edge], np.moveaxis(v.coupling.values, j, 2)


def tree(group: Group, p: Path) -> Tree:
    """The coupling tree of a path, edges named ``x0…``, ``k0…`` (internal) and ``out``."""
    n = len(p.irs)
    irs: dict[str, Irrep] = {f"x{i}": ir for i, ir in enumerate(p.irs)}
    vertices, left = [], "x0"
    for s in range(n - 1):
        k = "out" if s == n - 2 else f"k{s}"
        irs[k] = (*p.labels, p.out)[s]
        coupling = fuse_coupling(group, irs[left], irs[f"x{s + 1}"], irs[k])
        vertices.append(Vertex((left, f"x{s + 1}", k), coupling))
        left = k
    return Tree(tuple(vertices), {name: ir.dim for name, ir in irs.items()},
                {name: str(ir) for name, ir in irs.items()})


def flat_index(letters: str, sizes: dict[str, int], names: dict[str, str]) -> str:
    """Row-major flat channel index of ``letters``, e.g. ``u4 * 3 + v4`` (``""`` for none)."""
    parts = []
    for i, letter in enumerate(letters):
        stride = math.prod(sizes[x] for x in letters[i + 1 :])
        parts.append(names[letter] + (f" * {stride}" if stride != 1 else ""))
    return " + ".join(parts)


def term_text(value: float, factors: list[str], first: bool) -> str:
    """``0.5 * a * b`` (first term) or ``- 0.5 * a * b`` (later terms)."""
    body = " * ".join([repr(abs(value)), *factors])
    if first:
        return ("-" if value < 0 else "") + body
    return ("- " if value < 0 else "+ ") + body


class KernelUnsupportedError(FusionError, NotImplementedError):
    """A construct a kernel backend (C, Triton) does not lower (yet); the einsum backend does."""

    backend = "kernel"

    @classmethod
    def construct(cls, what: str, diagram: str, span: Span = NO_SPAN) -> KernelUnsupportedError:
        """The error for one construct of one diagram, pointing at its source."""
        return cls([Diagnostic(f"the {cls.backend} backend does not support {what} yet "
                               f"(diagram {diagram!r})", span,
                               ("compile it with backend='einsum' (--target einsum)",))])

    @classmethod
    def of(cls, d: AnyDiagram) -> KernelUnsupportedError | None:
        """Why the backend cannot lower ``d`` (:func:`kernel_refusal`), or ``None``."""
        what = kernel_refusal(d)
        return None if what is None else cls.construct(what, d.name, d.span)


class TritonUnsupportedError(KernelUnsupportedError):
    """A construct the Triton backend does not lower (yet); the einsum backend does."""

    backend = "triton"


def kernel_refusal(d: AnyDiagram) -> str | None:
    """The construct of ``d`` the kernel backends do not lower, in words, or ``None``.

    Tree diagrams and neighbourhood blocks (edge legs, ``sum_j``, gates, ``h[i]``/``h[j]``,
    ``cat``, ``linear``) are lowered; graph-form and SU2 diagrams are not.
    """
    if not isinstance(d, Diagram):
        return "graph-form diagrams (`graph …`)"
    if d.group == "SU2":
        return "SU2 diagrams (complex tensors)"
    return None


@dataclass(frozen=True)
class NodeInfo:
    """One fuse node as its kernels see it: paths, operand layouts and weights."""

    name: str
    group: Group
    paths: tuple[Path, ...]
    operands: tuple[Irreps, ...]
    out: Irreps
    weighted: bool
    external: bool
    weight_numel: int

    @property
    def roles(self) -> tuple[str, ...]:
        """The legs of the closed diagram: operands, result, weights (when it has any)."""
        return (*(f"x{i}" for i in range(len(self.operands))), "out",
                *(("w",) if self.weighted else ()))

    def width(self, role: str) -> int:
        """Row width of a role's tensor (``[Z, width]``; weights: their count)."""
        if role == "w":
            return self.weight_numel
        return (self.out if role == "out" else self.operands[int(role[1:])]).dim

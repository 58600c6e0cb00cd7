"""The kernel IR: a planned diagram as segments, path tables and coefficient tables (plain data).

The seam between the compiler and its executors (einsum, table-driven C and Triton): every
value here is frozen, made of tuples, ints, strings and :class:`~fusiondsl.kernel.exact.Exact`
numbers, printable (:mod:`fusiondsl.kernel.text`) and round-trips through JSON
(:mod:`fusiondsl.kernel.serial`). Nothing refers back to the diagram or the plan.

Grammar (one line per layer, each adding one kind of information)::

    KernelIR   = legs: Leg*, nodes: (FuseKernel | CatKernel | LinearKernel)*, tables: Table*
    Leg        = name, domain (node | edge), segments: Segment*
    Segment    = offset, mul, dim, ir        one irrep block of a flat [rows, dim] tensor
    Operand    = source (leg | node), index, name, at ('' | i | j), segments
    FuseKernel = operands (coupling order), out segments, paths: KernelPath*, gates, sum_j,
                 planner choices: coupling order, strategy (+ groups), hoist (+ F-move mix)
    KernelPath = operand segments, labels, out segment, channel letters per operand / out /
                 weights (the connection mode), weight slice, normalisation, tables per step
    GraphKernelIR = open legs, one contraction of vertex and 1j tables (graph form)

A path evaluates ``out[z, C_out, k] += norm * Σ w[C_w] Π_i x_i[z, C_i, m_i] Π_s T_s[…]``
with the letters ``C`` of the path (e3nn's ``uvw``, ``uvu``, …; a letter shared by operands
is one channel index, a letter missing from the output is summed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fusiondsl.kernel.exact import Exact, Table

# The printer (kernel.text) and the JSON codec (kernel.serial) read these types; they hand
# their functions down here when imported (the package imports both), so that the methods
# below need no import of the modules that import this one.
_HOOKS: dict[str, Callable[..., Any]] = {}


def install(name: str, fn: Callable[..., Any]) -> None:
    """Register ``kernel_text``, ``graph_text``, ``to_json`` or ``from_json``."""
    _HOOKS[name] = fn


@dataclass(frozen=True)
class Segment:
    """One irrep block of a flat tensor: columns ``[offset, offset + mul * dim)``, mul-major."""

    offset: int
    mul: int
    dim: int
    ir: str

    @property
    def stop(self) -> int:
        """One past its last column."""
        return self.offset + self.mul * self.dim


@dataclass(frozen=True)
class Leg:
    """An input of the diagram: rows per node or per edge."""

    name: str
    domain: str
    segments: tuple[Segment, ...]

    @property
    def dim(self) -> int:
        """Its number of columns."""
        return self.segments[-1].stop if self.segments else 0


@dataclass(frozen=True)
class Operand:
    """What a node reads: a leg or an earlier node's result, gathered at ``i``/``j`` or not."""

    source: str
    index: int
    name: str
    at: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class WeightSlice:
    """One path's weights: ``shape`` elements from ``start`` of the internal or external vector.

    External weights are one row per sample (per edge in a neighbourhood block).
    """

    vector: str
    start: int
    shape: tuple[int, ...]

    @property
    def stop(self) -> int:
        """One past its last weight."""
        return self.start + math.prod(self.shape)


@dataclass(frozen=True)
class KernelPath:
    """One path: segments in, coupling chain, segment out, channel letters, weights, factor.

    Attributes:
        index: its number (``path 3`` in generated code); prefixes and finals count apart.
        inputs: the segment it reads in each operand.
        irs: the labels of those segments.
        labels: the labels on the internal edges of its chain ``((x0 ⊗ x1 → k0) ⊗ x2 → …)``.
        out: the result segment it adds into; ``out_ir`` its label.
        mode: e3nn's connection mode (``uvw``, ``uvu``, …, ``uuu``, ``path``, ``none``).
        channels: channel letters of each operand (``""``: one channel, broadcast).
        out_channels: letters of the result (``uv`` of ``uvuv`` is flattened to one axis).
        weight_channels: letters of its weight block, ``None`` without weights.
        weights: where its weights are, ``None`` without (or when mixed, see :class:`Hoist`).
        tables: the coefficient table of each coupling step (``x`` ⊗ next operand → label).
        normalisation: the exact factor it is scaled by (e3nn's ``sqrt(alpha)``).
    """

    index: int
    inputs: tuple[int, ...]
    irs: tuple[str, ...]
    labels: tuple[str, ...]
    out: int
    out_ir: str
    mode: str
    channels: tuple[str, ...]
    out_channels: str
    weight_channels: str | None
    weights: WeightSlice | None
    tables: tuple[str, ...]
    normalisation: Exact

    def describe(self) -> str:
        """``1o ⊗ 2e → 1o``; with internal labels ``(1o ⊗ 1o → 2e) ⊗ 1o → 1o``."""
        text = f"{self.irs[0]} ⊗ {self.irs[1]} → {(*self.labels, self.out_ir)[0]}"
        for ir, k in zip(self.irs[2:], (*self.labels, self.out_ir)[1:]):
            text = f"({text}) ⊗ {ir} → {k}"
        return text


@dataclass(frozen=True)
class Hoist:
    """A neighbour sum moved out of the edge loop (planner's choice), as plain steps.

    Per edge, each prefix couples ``edge_operands`` (weightless), is gated and summed into its
    receiver: the *sums*, one segment each. Per node, each final couples the sums with the
    centre (node tensor, not gathered): ``(sum, centre)`` or, after an F-move,
    ``(centre, sum)``. With an F-move a final's weights are mixed from the node's paths:
    ``W = Σ value · weights(path)`` over ``mix`` (a constant ``Σ value`` without weights).

    Attributes:
        kind: ``centre-last`` (the order couples the centre last) or ``f-move`` (6j recoupling).
        centre: the centre read ``h[i]``.
        edge_operands: the operands coupled per edge.
        prefixes: per-edge paths over ``edge_operands``; ``out`` is the prefix's sum segment.
        sums: layout of the summed prefixes (after the gates).
        centre_first: whether finals read ``(centre, sum)``.
        finals: per-node paths; ``inputs`` index (sums, centre) in that order of reading.
        mix: per final, ``(path index, value)`` pairs (F-move), else ``()``.
        absorbs: the inner node an F-move flattens into this one (not computed), or ``None``.
    """

    kind: str
    centre: Operand
    edge_operands: tuple[Operand, ...]
    prefixes: tuple[KernelPath, ...]
    sums: tuple[Segment, ...]
    centre_first: bool
    finals: tuple[KernelPath, ...]
    mix: tuple[tuple[tuple[int, Exact], ...], ...]
    absorbs: int | None


@dataclass(frozen=True)
class FuseKernel:
    """One ``fuse`` node: operands in coupling order, its paths and the planner's choices.

    Attributes:
        coupling_order: positions into the node's written operands, in coupling order.
        strategy: ``per-path`` or ``grouped`` (paths into one output segment as one GEMM).
        groups: with ``grouped``, the path indices of each output segment; else ``()``.
        hoist: how its neighbour sum leaves the edge loop, or ``None``.
        absorbed: ``True`` for an inner fuse an F-move flattens into its reader (not computed).
    """

    name: str
    node: int
    domain: str
    operands: tuple[Operand, ...]
    out: tuple[Segment, ...]
    gates: tuple[Operand, ...]
    aggregate: bool
    external: bool
    weight_numel: int
    paths: tuple[KernelPath, ...]
    coupling_order: tuple[int, ...]
    strategy: str
    groups: tuple[tuple[int, ...], ...]
    hoist: Hoist | None
    absorbed: bool


@dataclass(frozen=True)
class CatKernel:
    """``cat(…)``: the result's segments are the operands' segments, one after another."""

    name: str
    node: int
    domain: str
    operands: tuple[Operand, ...]
    out: tuple[Segment, ...]


@dataclass(frozen=True)
class LinearBlock:
    """One block of a ``linear`` node: ``out[z, w, k] += norm · Σ_u x[z, u, k] W[u, w]``."""

    inp: int
    out: int
    ir: str
    mul_in: int
    mul_out: int
    weights: WeightSlice
    normalisation: Exact


@dataclass(frozen=True)
class LinearKernel:
    """``linear(x)``: channel mixing per irrep, block by block."""

    name: str
    node: int
    domain: str
    operand: Operand
    out: tuple[Segment, ...]
    blocks: tuple[LinearBlock, ...]


NodeKernel = FuseKernel | CatKernel | LinearKernel


class KernelValue:
    """What both kinds of kernel IR share: tables by name, printing and JSON."""

    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        """A table by name."""
        return next(t for t in self.tables if t.name == name)

    def to_text(self) -> str:
        """The readable printout."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_text()

    def to_json(self) -> str:
        """JSON text; :meth:`from_json` gives back an equal value."""
        return _HOOKS["to_json"](self)  # type: ignore[no-any-return]

    @staticmethod
    def from_json(text: str) -> KernelIR | GraphKernelIR:
        """The kernel IR that :meth:`to_json` wrote."""
        return _HOOKS["from_json"](text)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class KernelIR(KernelValue):
    """A planned tree diagram or neighbourhood block, ready for any executor.

    Attributes:
        name, group: the diagram's.
        legs: its inputs; a neighbourhood block also takes ``edge_index`` after them.
        nodes: in evaluation order; the last one is the output (``out_name``).
        neighbourhood: whether it sums over neighbours.
        internal_numel, external_numel: sizes of the two weight vectors.
        irrep_normalization, path_normalization: e3nn's options the factors follow.
        tables: every coefficient table a path names.
    """

    name: str
    group: str
    legs: tuple[Leg, ...]
    nodes: tuple[NodeKernel, ...]
    out_name: str
    neighbourhood: bool
    internal_numel: int
    external_numel: int
    irrep_normalization: str
    path_normalization: str
    tables: tuple[Table, ...]

    def to_text(self) -> str:
        """The readable printout (one line per path)."""
        return _HOOKS["kernel_text"](self)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class GraphLeg:
    """An open leg of a graph: ``mul`` channels of one irrep, ``[rows, mul * dim]``."""

    name: str
    ir: str
    mul: int
    dim: int


@dataclass(frozen=True)
class GraphFactor:
    """One tensor of a graph's contraction: a table (vertex or 1j symbol) or an open leg."""

    kind: str
    name: str
    subscripts: str


@dataclass(frozen=True)
class GraphKernelIR(KernelValue):
    """A graph-form diagram: one contraction ``equation`` over vertex tables and open legs.

    In the equation ``z`` is the batch and ``u`` the shared channel of the legs.
    """

    name: str
    group: str
    inputs: tuple[GraphLeg, ...]
    output: GraphLeg | None
    factors: tuple[GraphFactor, ...]
    output_subscripts: str
    tables: tuple[Table, ...]

    @property
    def equation(self) -> str:
        """The whole contraction as an einsum equation."""
        return ",".join(f.subscripts for f in self.factors) + "->" + self.output_subscripts

    def to_text(self) -> str:
        """The readable printout."""
        return _HOOKS["graph_text"](self)  # type: ignore[no-any-return]

"""The path IR: every concrete labelled path of a diagram, normalised, with its weight slice.

:func:`fusiondsl.passes.expand.expand` makes a :class:`Paths` from a checked diagram; the
planner, the cost model and every backend read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fusiondsl.core.coupling import describe_path
from fusiondsl.core.irreps import Irrep

if TYPE_CHECKING:
    from fusiondsl.ir.diagram import Diagram

IrrepNormalization = Literal["component", "norm", "none"]
PathNormalization = Literal["element", "path", "none"]


@dataclass(frozen=True)
class Path:
    """One concrete labelled path of one fuse node, ready to lower.

    Attributes:
        index: global path number (``path 3`` in generated code).
        node: index of its fuse node in the diagram.
        inputs: entry chosen in each operand.
        irs, muls: labels and multiplicities of those entries.
        labels: labels on the internal edges of the coupling chain.
        out, out_entry, out_mul: the result label, the result entry it adds into, its channels.
        weight_shape: shape of its weight block (``None``: no weights).
        weight_offset: start of that block in its node's weight vector.
        coefficient: normalisation factor (e3nn's ``sqrt(alpha)``).
    """

    index: int
    node: int
    inputs: tuple[int, ...]
    irs: tuple[Irrep, ...]
    muls: tuple[int, ...]
    labels: tuple[Irrep, ...]
    out: Irrep
    out_entry: int
    out_mul: int
    mode: str
    weight_shape: tuple[int, ...] | None
    weight_offset: int
    coefficient: float

    def describe(self) -> str:
        """``1o ⊗ 2e → 1o``."""
        return describe_path(self.irs, self.labels, self.out)

    @property
    def weight_numel(self) -> int:
        """Number of weights of this path."""
        return math.prod(self.weight_shape) if self.weight_shape is not None else 0


@dataclass(frozen=True)
class LinearBlock:
    """One block of a ``linear`` node: input entry → output entry of the same label."""

    node: int
    in_entry: int
    out_entry: int
    ir: Irrep
    mul_in: int
    mul_out: int
    weight_offset: int
    coefficient: float

    @property
    def weight_numel(self) -> int:
        """Number of weights of this block."""
        return self.mul_in * self.mul_out


@dataclass(frozen=True)
class Paths:
    """All paths and linear blocks of a diagram, with weight offsets and normalisation."""

    diagram: Diagram
    paths: tuple[Path, ...]
    linears: tuple[LinearBlock, ...]
    node_weight_numel: tuple[int, ...]
    irrep_normalization: str = "component"
    path_normalization: str = "element"

    @property
    def num_paths(self) -> int:
        """Number of fuse paths."""
        return len(self.paths)

    @property
    def weight_numel(self) -> int:
        """All weights (internal and external)."""
        return sum(self.node_weight_numel)

    def external(self, node: int) -> bool:
        """Whether a node's weights come from the forward call."""
        n = self.diagram.nodes[node]
        return bool(getattr(n, "external", False))

    def table(self) -> str:
        """A printable table of every path."""
        rows = [f"{'path':>5}  {'node':<8} {'coupling':<34} {'mode':<5} {'weights':>8}  coeff"]
        for p in self.paths:
            name = self.diagram.nodes[p.node].name
            rows.append(f"{p.index:>5}  {name:<8} {p.describe():<34} {p.mode:<5} "
                        f"{p.weight_numel:>8}  {p.coefficient:.6g}")
        return "\n".join(rows)

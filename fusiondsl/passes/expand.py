"""Path expansion: an irreps-level coupling becomes its set of concrete labelled paths.

A *path* of a ``fuse`` node picks one entry of every operand, a label for every internal edge
of its (left-to-right) binary coupling chain, and an output entry. Channel (multiplicity)
rules come from the weight mode, one rule per mode in :data:`MODE_RULES`, as in e3nn.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fusiondsl.core.irreps import Irrep, Irreps, MulIr

if TYPE_CHECKING:
    from fusiondsl.ir.diagram import Diagram

BINARY_MODES = ("uvw", "uvu", "uvv", "uuw", "uvuv")
CHANNELWISE_MODES = ("uuu", "path", "none")
WEIGHT_MODES = BINARY_MODES + CHANNELWISE_MODES


class ExpansionError(ValueError):
    """A coupling whose channels or labels do not fit; the validator adds the span."""


@dataclass(frozen=True)
class Channels:
    """What a weight mode makes of the operands' multiplicities for one path."""

    out_mul: int
    weight_shape: tuple[int, ...] | None
    num_elements: int


def _binary(muls: Sequence[int], mode: str) -> tuple[int, int]:
    if len(muls) != 2:
        raise ExpansionError(f"weights {mode} couples exactly two operands, got {len(muls)}")
    return muls[0], muls[1]


def _uvw(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvw")
    if w is None:
        raise ExpansionError("weights uvw needs output multiplicities (write them in '-> …')")
    return Channels(w, (u, v, w), u * v)


def _uvu(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvu")
    return Channels(u, (u, v), v)


def _uvv(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvv")
    return Channels(v, (u, v), u)


def _uuw(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uuw")
    if u != v:
        raise ExpansionError(f"weights uuw needs equal multiplicities, got {u} and {v}")
    if w is None:
        raise ExpansionError("weights uuw needs output multiplicities (write them in '-> …')")
    return Channels(w, (u, w), u)


def _uvuv(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvuv")
    return Channels(u * v, (u, v), 1)


def _channelwise(shape: Callable[[int], tuple[int, ...] | None], mode: str) -> Callable:
    def rule(muls: Sequence[int], w: int | None) -> Channels:
        u = max(muls)
        if any(m not in (1, u) for m in muls):
            raise ExpansionError(
                f"{mode} couples channel by channel: multiplicities must agree or be 1, "
                f"got {', '.join(map(str, muls))}"
            )
        return Channels(u, shape(u), 1)

    return rule


MODE_RULES: dict[str, Callable[[Sequence[int], int | None], Channels]] = {
    "uvw": _uvw,
    "uvu": _uvu,
    "uvv": _uvv,
    "uuw": _uuw,
    "uvuv": _uvuv,
    "uuu": _channelwise(lambda u: (u,), "uuu"),
    "path": _channelwise(lambda u: (), "weights path"),
    "none": _channelwise(lambda u: None, "a fuse without weights"),
}

# Modes whose output multiplicity is read from the declared output (or the filter).
OUT_MUL_FROM_LAYOUT = ("uvw", "uuw")


def chains(irs: Sequence[Irrep]) -> Iterator[tuple[Irrep, ...]]:
    """Every labelling of the left-to-right chain ((a ⊗ b) ⊗ c) ⊗ …; last label = output."""
    frontier: list[tuple[Irrep, ...]] = [(irs[0],)]
    for ir in irs[1:]:
        frontier = [(*c, k) for c in frontier for k in c[-1] * ir]
    for c in frontier:
        yield c[1:]


@dataclass(frozen=True)
class LocalPath:
    """One path of one fuse node, before normalisation and weight offsets."""

    inputs: tuple[int, ...]
    irs: tuple[Irrep, ...]
    muls: tuple[int, ...]
    labels: tuple[Irrep, ...]
    out: Irrep
    out_entry: int
    channels: Channels


def _out_entries(out: Irrep, layout: Irreps | None) -> list[tuple[int, int | None]]:
    if layout is None:
        return [(-1, None)]
    return [(i, e.mul) for i, e in enumerate(layout) if e.ir == out]


def expand_fuse(
    operands: Sequence[Irreps],
    mode: str,
    keep: Irreps | None,
    layout: Irreps | None,
) -> tuple[list[LocalPath], Irreps]:
    """All paths of one fuse node and the layout of its result.

    Args:
        operands: irreps of each operand, in coupling order.
        mode: the weight mode (a key of :data:`MODE_RULES`).
        keep: the ``-> …`` filter: labels kept (and ``w`` multiplicities), or ``None``.
        layout: the declared output irreps when this node is the diagram's output: paths are
            routed into every entry with their label and summed, as e3nn's irreps_out;
            ``None`` for an intermediate, which gets one entry per path.

    Raises:
        ExpansionError: when multiplicities do not fit the mode.
    """
    rule = MODE_RULES[mode]
    paths: list[LocalPath] = []
    entries: list[MulIr] = []
    for idx in itertools.product(*(range(len(x)) for x in operands)):
        irs = tuple(operands[k][i].ir for k, i in enumerate(idx))
        muls = tuple(operands[k][i].mul for k, i in enumerate(idx))
        for chain in chains(irs):
            out = chain[-1]
            if keep is not None and keep.count(out) == 0:
                continue
            for entry, declared in _out_entries(out, layout):
                w = declared if layout is not None else _filter_mul(keep, out)
                ch = rule(muls, w if mode in OUT_MUL_FROM_LAYOUT else None)
                if declared is not None and ch.out_mul != declared:
                    raise ExpansionError(
                        f"{_describe(irs, out)} gives {ch.out_mul} channels "
                        f"but the output declares {declared}x{out}"
                    )
                if layout is None:
                    entry = len(entries)
                    entries.append(MulIr(ch.out_mul, out))
                paths.append(LocalPath(idx, irs, muls, chain[:-1], out, entry, ch))
    return paths, (layout if layout is not None else Irreps(tuple(entries)))


def _filter_mul(keep: Irreps | None, out: Irrep) -> int | None:
    if keep is None:
        return None
    muls = [e.mul for e in keep if e.ir == out]
    return muls[0] if muls else None


def _describe(irs: Sequence[Irrep], out: Irrep) -> str:
    return " ⊗ ".join(map(str, irs)) + f" → {out}"


def describe_path(irs: Sequence[Irrep], labels: Sequence[Irrep], out: Irrep) -> str:
    """``1o ⊗ 2e → 1o``; with internal labels ``(1o ⊗ 1o → 2e) ⊗ 1o → 1o``."""
    steps = zip(irs[1:], (*labels, out))
    ir, k = next(steps)
    text = f"{irs[0]} ⊗ {ir} → {k}"
    for ir, k in steps:
        text = f"({text}) ⊗ {ir} → {k}"
    return text


# ---- the Paths layer: every path of a diagram, normalised, with its weight slice --------
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


def _alpha_irrep(irs: Sequence[Irrep], labels: Sequence[Irrep], norm: str) -> float:
    """e3nn's irrep normalisation, step by step along the coupling chain."""
    if norm == "none":
        return 1.0
    alpha, left = 1.0, irs[0]
    for ir, k in zip(irs[1:], labels):
        alpha *= k.dim if norm == "component" else left.dim * ir.dim
        left = k
    return alpha


def _node_paths(d: Diagram, k: int, norm: tuple[str, str], start: int) -> list[Path]:
    node = d.nodes[k]
    node = dataclasses.replace(node, args=node.coupled_args)
    layout = d.irreps_out if k == len(d.nodes) - 1 else None
    local, _ = expand_fuse([d.operand_irreps(a) for a in node.args], node.mode, node.keep, layout)
    if layout is not None:  # an intermediate's layout has one entry per path: keep them all
        from fusiondsl.passes.symmetric import (
            prune_node,  # repeated operands: independent paths only
        )

        local = prune_node(d, node, local)
    totals: dict[int, int] = {}
    counts: dict[int, int] = {}
    for lp in local:
        totals[lp.out_entry] = totals.get(lp.out_entry, 0) + lp.channels.num_elements
        counts[lp.out_entry] = counts.get(lp.out_entry, 0) + 1
    out, offset = [], 0
    for i, lp in enumerate(local):
        alpha = _alpha_irrep(lp.irs, (*lp.labels, lp.out), norm[0])
        x = {"element": totals[lp.out_entry],
             "path": lp.channels.num_elements * counts[lp.out_entry], "none": 1}[norm[1]]
        alpha = alpha / x if x > 0 else alpha
        shape = lp.channels.weight_shape
        out.append(Path(start + i, k, lp.inputs, lp.irs, lp.muls, lp.labels, lp.out,
                        lp.out_entry, lp.channels.out_mul, node.mode, shape, offset,
                        math.sqrt(alpha)))
        offset += math.prod(shape) if shape is not None else 0
    return out


def _linear_blocks(d: Diagram, k: int, path_norm: str) -> list[LinearBlock]:
    node = d.nodes[k]
    source = d.operand_irreps(node.args[0])
    blocks, offset = [], 0
    for o, out in enumerate(node.irreps):
        ins = [(i, m) for i, m in enumerate(source) if m.ir == out.ir]
        fan_in = sum(m.mul for _, m in ins)
        for i, m in ins:
            x = {"element": fan_in, "path": m.mul * len(ins), "none": 1}[path_norm]
            blocks.append(LinearBlock(k, i, o, out.ir, m.mul, out.mul, offset, 1 / math.sqrt(x)))
            offset += m.mul * out.mul
    return blocks


def expand(
    d: Diagram,
    irrep_normalization: IrrepNormalization = "component",
    path_normalization: PathNormalization = "element",
) -> Paths:
    """Expand every fuse and linear node of a checked diagram into paths and blocks."""
    paths: list[Path] = []
    linears: list[LinearBlock] = []
    numel: list[int] = []
    for k, node in enumerate(d.nodes):
        if node.op == "fuse":
            new = _node_paths(d, k, (irrep_normalization, path_normalization), len(paths))
            paths += new
            numel.append(sum(p.weight_numel for p in new))
        elif node.op == "linear":
            blocks = _linear_blocks(d, k, path_normalization)
            linears += blocks
            numel.append(sum(b.weight_numel for b in blocks))
        else:
            numel.append(0)
    return Paths(d, tuple(paths), tuple(linears), tuple(numel),
                 irrep_normalization, path_normalization)

"""The sparse cost model: FLOPs from nonzeros, bytes moved, peak intermediate memory.

Every count is a formula in the batch size ``B`` and the channel multiplicities (one symbol
per operand whose entries share a multiplicity, e.g. ``mul_h``). Each formula is written once,
over any numbers, and evaluated two ways: :meth:`Cost.at` with exact Python integers and
fractions (what the planner ranks strategies by), and :attr:`Cost.formulas` as sympy
expressions, so that a report can say how a plan scales. sympy is imported only for the
latter: it takes ~0.4 s to load, several times a warm compile. A roofline estimate (FLOPs at
a sustained rate, bytes at a bandwidth, a fixed cost per operation) ranks the strategies.

>>> import fusiondsl
>>> from fusiondsl.passes.expand import expand
>>> from fusiondsl.plan.planner import make_plan
>>> d = fusiondsl.loads("diagram d(x: 4x1o, y: 1o) -> z: 4x0e { z = fuse(x, y) weights uvu }")
>>> cost = make_plan(expand(d.diagram())).node_costs[0]["per-path"]
>>> cost.at(10)["flops"], cost.flops
(320.0, 8*B*mul_x*mul_y)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from fusiondsl.core.coupling import chain_nnz
from fusiondsl.core.irreps import Group
from fusiondsl.ir.diagram import FuseNode
from fusiondsl.ir.paths import Path, Paths
from fusiondsl.plan.contraction import PLANNING_BATCH, Contraction
from fusiondsl.plan.grouped import GroupedNode

if TYPE_CHECKING:
    import sympy

BYTES = 4  # float32

# Roofline constants of the project's 2-core CPU (float32, 2 threads), measured with
# benchmarks/bench_machine.py. A large GEMM sustains ~170 GFLOP/s, but what matters is the
# rate each strategy's kernels reach: per-path einsums are z-batched products of tiny tensors
# (~3 GFLOP/s), the grouped strategy's bmm/GEMMs ~20 GFLOP/s. Elementwise traffic ~7 GB/s;
# one torch op costs ~15 µs to dispatch.
ROOFLINE = {"bytes_per_s": 7e9, "seconds_per_op": 15e-6}
RATES = {"per-path": 3e9, "grouped": 2e10}

Num = Any
"""A count: an ``int`` or ``Fraction`` when evaluated, a sympy expression in a formula."""
Counts = tuple[Num, Num, Num, Num]
"""FLOPs from nonzeros, dense FLOPs, bytes moved, peak intermediate (bytes), in that order."""
COUNTS = ("flops", "dense_flops", "bytes", "peak")


def __getattr__(name: str) -> Any:
    """``B``, the batch-size symbol, made on first use (so that importing this is cheap)."""
    if name == "B":
        return batch_symbol()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def batch_symbol() -> sympy.Symbol:
    """The sympy symbol ``B`` of the batch size in cost formulas."""
    import sympy

    return sympy.Symbol("B", positive=True, integer=True)


def _integer(symbolic: bool) -> Callable[[int], Num]:
    """The constructor of integer constants: ``int`` (numbers) or ``sympy.Integer``."""
    if not symbolic:
        return int
    import sympy

    return sympy.Integer  # type: ignore[no-any-return]


def _scaled(flops: int, batch: Num, symbolic: bool) -> Num:
    """FLOPs opt_einsum counted at the planning batch, at ``batch`` (a ``Fraction``: exact)."""
    if not symbolic:
        return Fraction(flops * batch, PLANNING_BATCH)
    import sympy

    return sympy.Integer(flops) * batch / PLANNING_BATCH


def _max(*exprs: Num) -> Num:
    """A max that also works on formulas: flatten, drop duplicates and zeros, never simplify."""
    if all(isinstance(e, (int, Fraction)) for e in exprs):
        return max(exprs, default=0)
    import sympy

    terms: list[Any] = []
    for e in exprs:
        for t in (e.args if isinstance(e, sympy.Max) else (e,)):
            if t != 0 and t not in terms:
                terms.append(t)
    if not terms:
        return sympy.Integer(0)
    return terms[0] if len(terms) == 1 else sympy.Max(*terms, evaluate=False)


@dataclass(frozen=True)
class Cost:
    """Cost of one strategy for one node (or a whole diagram when summed).

    Subclasses hold plain data and implement :meth:`counts` once for both numbers and
    formulas; ``flops``, ``dense_flops``, ``bytes`` and ``peak`` are the sympy formulas.
    """

    strategy: str
    ops: int

    def counts(self, batch: Num, symbolic: bool) -> Counts:
        """FLOPs, dense FLOPs, bytes, peak at ``batch`` (a number, or ``B`` if symbolic)."""
        raise NotImplementedError

    def at(self, batch: int) -> dict[str, float]:
        """Numbers at a batch size: flops, dense_flops, bytes, peak (bytes), ops, seconds."""
        out = {k: float(v) for k, v in zip(COUNTS, self.counts(batch, symbolic=False))}
        out["ops"] = float(self.ops)
        out["seconds"] = (out["dense_flops"] / RATES[self.strategy]
                          + out["bytes"] / ROOFLINE["bytes_per_s"]
                          + self.ops * ROOFLINE["seconds_per_op"])
        return out

    @functools.cached_property
    def formulas(self) -> dict[str, sympy.Expr]:
        """The counts as sympy expressions in ``B`` and the multiplicity symbols."""
        return dict(zip(COUNTS, self.counts(batch_symbol(), symbolic=True)))

    @property
    def flops(self) -> sympy.Expr:
        """FLOPs counted from the nonzeros of the coupling tensors (a formula)."""
        return self.formulas["flops"]

    @property
    def dense_flops(self) -> sympy.Expr:
        """FLOPs the dense kernels actually execute (a formula)."""
        return self.formulas["dense_flops"]

    @property
    def bytes(self) -> sympy.Expr:
        """Bytes read and written (a formula)."""
        return self.formulas["bytes"]

    @property
    def peak(self) -> sympy.Expr:
        """Largest intermediate tensor in bytes (a formula)."""
        return self.formulas["peak"]

    def __add__(self, other: Cost) -> Cost:
        return SumCost(self.strategy, self.ops + other.ops, (*_parts(self), *_parts(other)))


def _parts(cost: Cost) -> tuple[Cost, ...]:
    return cost.parts if isinstance(cost, SumCost) else (cost,)


@dataclass(frozen=True)
class SumCost(Cost):
    """The cost of several nodes: counts add up, peaks take the maximum."""

    parts: tuple[Cost, ...]

    def counts(self, batch: Num, symbolic: bool) -> Counts:
        """Column sums of the parts' counts; the largest peak."""
        rows = [part.counts(batch, symbolic) for part in self.parts]
        flops, dense, nbytes = (sum((r[i] for r in rows[1:]), rows[0][i]) for i in range(3))
        return flops, dense, nbytes, _max(*(r[3] for r in rows))


@dataclass(frozen=True)
class OperandMuls:
    """The multiplicities of one operand of a node, and its symbol ``mul_x`` if uniform."""

    name: str
    muls: tuple[int, ...]

    def values(self, symbolic: bool) -> dict[int, Num]:
        """Multiplicity → itself (numbers), or → its symbol (formulas; ``Integer`` if mixed)."""
        if not symbolic:
            return {m: m for m in self.muls}
        import sympy

        if len(self.muls) == 1:
            return {self.muls[0]: sympy.Symbol(self.name, positive=True, integer=True)}
        return {m: sympy.Integer(m) for m in self.muls}


def operand_muls(paths: Paths, node: int) -> tuple[OperandMuls, ...]:
    """Per operand of a node, in coupling order: its multiplicities and symbol name."""
    d = paths.diagram
    n = d.nodes[node]
    if not isinstance(n, FuseNode):
        raise TypeError(f"node {node} of {d.name} is a {type(n).__name__}, not a fuse")
    out = []
    for arg in n.coupled_args:
        name = d.operand_name(arg).split("[")[0].lstrip("_")
        muls = tuple(sorted({m.mul for m in d.operand_irreps(arg)}))
        out.append(OperandMuls(f"mul_{name}", muls))
    return tuple(out)


def path_nnz(group: Group, p: Path) -> list[int]:
    """Nonzeros of each coupling step of a path."""
    return chain_nnz(group, p.irs, (*p.labels, p.out))


def path_flops(p: Path, muls: list[Num], out_mul: Num, nnz: list[int],
               batch: Num = None) -> Num:
    """FLOPs of one path counted from the nonzeros of its coupling tensors (``batch``: ``B``)."""
    b = batch_symbol() if batch is None else batch
    k = p.out.dim
    u = muls[0]
    v = muls[1] if len(muls) > 1 else 1
    weighted = int(p.weight_shape is not None)
    rules = {
        "uvw": lambda: 2 * u * v * nnz[0] + 2 * u * v * out_mul * k,
        "uvu": lambda: 2 * u * v * nnz[0] + 2 * u * v * k * weighted,
        "uvv": lambda: 2 * u * v * nnz[0] + 2 * u * v * k * weighted,
        "uuw": lambda: 2 * u * nnz[0] + 2 * u * out_mul * k,
        "uvuv": lambda: 2 * u * v * nnz[0] + u * v * k * weighted,
    }
    if p.mode in rules:
        return b * rules[p.mode]()
    channels = _max(*muls)
    return b * channels * (2 * sum(nnz) + (2 * k if weighted else 0))


def contraction_traffic(c: Contraction, sizes: dict[str, Num]) -> tuple[Num, Num]:
    """Bytes read and written by the pairwise steps of a contraction, and the peak tensor."""
    total: Num = 0
    peaks = set()
    for step in c.steps:
        ins, out = step.equation.split("->")
        size = math.prod(sizes[letter] for letter in out)
        total += sum(math.prod(sizes[letter] for letter in s) for s in ins.split(",")) + size
        peaks.add(size)
    return BYTES * total, BYTES * _max(*peaks)


def _letter_sizes(c: Contraction, muls: list[Num], out_mul: int, batch: Num,
                  integer: Callable[[int], Num]) -> dict[str, Num]:
    sizes: dict[str, Num] = {}
    for o in c.operands:
        for letter, n in zip(o.subscripts, o.shape):
            sizes.setdefault(letter, integer(n))
    sizes["z"] = batch
    for letter, mul in zip("uv", muls):
        if letter in sizes:
            sizes[letter] = mul
    if "w" in sizes:
        sizes["w"] = integer(out_mul)
    return sizes


@dataclass(frozen=True)
class PerPathCost(Cost):
    """The per-path strategy of one node: every path its own einsum (e3nn's way)."""

    paths: tuple[Path, ...] = field(repr=False)
    contractions: tuple[Contraction, ...] = field(repr=False)
    nnz: tuple[tuple[int, ...], ...] = field(repr=False)
    operands: tuple[OperandMuls, ...]

    def counts(self, batch: Num, symbolic: bool) -> Counts:
        """Sums over the paths; dense FLOPs are opt_einsum's, scaled from the planning batch."""
        integer = _integer(symbolic)
        syms = [o.values(symbolic) for o in self.operands]
        flops = traffic = peak = integer(0)
        for p, c, nnz in zip(self.paths, self.contractions, self.nnz):
            muls = [syms[i][m] for i, m in enumerate(p.muls)]
            flops += path_flops(p, muls, integer(p.out_mul), list(nnz), batch)
            t, pk = contraction_traffic(c, _letter_sizes(c, muls, p.out_mul, batch, integer))
            traffic += t
            peak = _max(peak, pk)
        dense = _scaled(sum(c.flops for c in self.contractions), batch, symbolic)
        return flops, dense, traffic, peak


def per_path_cost(paths: Paths, node: int, contractions: tuple[Contraction, ...]) -> Cost:
    """The per-path strategy: every path its own einsum (e3nn's way)."""
    mine = tuple(p for p in paths.paths if p.node == node)
    nnz = tuple(tuple(path_nnz(paths.diagram.group, p)) for p in mine)
    ops = sum(len(c.steps) + 1 for c in contractions)
    return PerPathCost("per-path", ops, mine, tuple(contractions), nnz,
                       operand_muls(paths, node))


@dataclass(frozen=True)
class GroupedCost(Cost):
    """The grouped strategy of one node: per output entry, a GEMM, a bmm, a reduction."""

    grouped: GroupedNode = field(repr=False)
    mode: str
    nnz: tuple[int, ...]
    operand: OperandMuls

    def counts(self, batch: Num, symbolic: bool) -> Counts:
        """Sums over the output groups, plus operand 1's entries laid side by side once."""
        b, g = batch, self.grouped
        u = self.operand.values(symbolic)[g.mul]
        d1, d2 = g.dims
        flops = dense = traffic = peak = _integer(symbolic)(0)
        for grp, nnz in zip(g.groups, self.nnz):
            kp = grp.dim * grp.num_paths
            w = grp.paths[0].out_mul
            reduce = 2 * b * kp * u * w if self.mode == "uvw" else 2 * b * u * kp
            flops += 2 * b * u * nnz + reduce
            dense += 2 * b * d2 * d1 * kp + 2 * b * u * d1 * kp + reduce
            traffic += BYTES * (b * d2 + 3 * b * d1 * kp + b * u * d1 + 2 * b * u * kp
                                + b * u * grp.dim * (w if self.mode == "uvw" else 1))
            peak = _max(peak, BYTES * b * u * kp, BYTES * b * d1 * kp)
        traffic += BYTES * 2 * b * u * d1
        return flops, dense, traffic, peak


def grouped_cost(paths: Paths, g: GroupedNode) -> Cost:
    """The grouped strategy: per output entry, one GEMM with y, one bmm, one reduction."""
    nnz = tuple(sum(int(np.count_nonzero(grp.coupling[..., n])) for n in range(grp.num_paths))
                for grp in g.groups)
    node = paths.diagram.nodes[g.node]
    if not isinstance(node, FuseNode):
        raise TypeError(f"node {g.node} is a {type(node).__name__}, not a fuse")
    return GroupedCost("grouped", 1 + 5 * len(g.groups), g, node.mode, nnz,
                       operand_muls(paths, g.node)[0])


def fmt(x: float) -> str:
    """Engineering notation for reports: 1.23M, 4.5G."""
    if x == 0:
        return "0"
    exp = min(4, max(0, int(math.log10(abs(x)) // 3)))
    return f"{x / 10 ** (3 * exp):.3g}{['', 'k', 'M', 'G', 'T'][exp]}"

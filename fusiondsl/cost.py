"""The sparse cost model: FLOPs from nonzeros, bytes moved, peak intermediate memory.

Every count is a sympy expression in the batch size ``B`` and the channel multiplicities
(one symbol per operand whose entries share a multiplicity, e.g. ``mul_h``), so a report can
say how a plan scales; :meth:`Cost.at` substitutes numbers. A roofline estimate (FLOPs at a
sustained rate, bytes at a bandwidth, a fixed cost per operation) ranks the strategies.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from fusiondsl.expand import Path, Paths
from fusiondsl.lower.coefficients import fuse_coupling
from fusiondsl.plan import Contraction
from fusiondsl.plan_grouped import GroupedNode

B = sympy.Symbol("B", positive=True, integer=True)
BYTES = 4  # float32

# Roofline constants of the project's 2-core CPU (float32, 2 threads), measured with
# benchmarks/bench_machine.py. A large GEMM sustains ~170 GFLOP/s, but what matters is the
# rate each strategy's kernels reach: per-path einsums are z-batched products of tiny tensors
# (~3 GFLOP/s), the grouped strategy's bmm/GEMMs ~20 GFLOP/s. Elementwise traffic ~7 GB/s;
# one torch op costs ~15 µs to dispatch.
ROOFLINE = {"bytes_per_s": 7e9, "seconds_per_op": 15e-6}
RATES = {"per-path": 3e9, "grouped": 2e10}


@dataclass(frozen=True)
class Cost:
    """Cost of one strategy for one node (or a whole diagram when summed)."""

    strategy: str
    flops: sympy.Expr
    dense_flops: sympy.Expr
    bytes: sympy.Expr
    peak: sympy.Expr
    ops: int
    values: tuple[tuple[sympy.Symbol, int], ...] = ()

    def at(self, batch: int) -> dict[str, float]:
        """Numbers at a batch size: flops, dense_flops, bytes, peak (bytes), ops, seconds."""
        symbols = (B, *(s for s, _ in self.values))
        args = (batch, *(v for _, v in self.values))
        out = {k: float(_numeric(getattr(self, k), symbols)(*args))
               for k in ("flops", "dense_flops", "bytes", "peak")}
        out["ops"] = float(self.ops)
        out["seconds"] = (out["dense_flops"] / RATES[self.strategy]
                          + out["bytes"] / ROOFLINE["bytes_per_s"]
                          + self.ops * ROOFLINE["seconds_per_op"])
        return out

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.strategy, self.flops + other.flops, self.dense_flops + other.dense_flops,
                    self.bytes + other.bytes, _max(self.peak, other.peak),
                    self.ops + other.ops, tuple(dict(self.values + other.values).items()))


@functools.lru_cache(maxsize=4096)
def _numeric(expr: sympy.Expr, symbols: tuple[sympy.Symbol, ...]) -> Callable[..., float]:
    """A plain-Python function of the symbols (sympy's subs re-simplifies Max: too slow)."""
    return sympy.lambdify(symbols, expr, modules=[{"Max": max}, "math"])  # type: ignore[no-any-return]


def _max(*exprs: sympy.Expr) -> sympy.Expr:
    """A Max that stays cheap: flatten, drop duplicates and zeros, never simplify."""
    terms: list[sympy.Expr] = []
    for e in exprs:
        for t in (e.args if isinstance(e, sympy.Max) else (e,)):
            if t != 0 and t not in terms:
                terms.append(t)
    if not terms:
        return sympy.Integer(0)
    return terms[0] if len(terms) == 1 else sympy.Max(*terms, evaluate=False)


def mul_symbols(paths: Paths, node: int) -> list[dict[int, sympy.Expr]]:
    """Per operand of a node: multiplicity value → symbol (``mul_x``) when uniform."""
    from fusiondsl.hoist import coupling_order

    d = paths.diagram
    out = []
    n = d.nodes[node]
    for arg in (n.args[i] for i in coupling_order(n)):  # type: ignore[union-attr]
        irreps = d.operand_irreps(arg)
        muls = {m.mul for m in irreps}
        name = d.operand_name(arg).split("[")[0].lstrip("_")
        out.append({m: sympy.Symbol(f"mul_{name}", positive=True, integer=True) for m in muls}
                   if len(muls) == 1 else {m: sympy.Integer(m) for m in muls})
    return out


def _nnz(group: str, p: Path) -> list[int]:
    """Nonzeros of each coupling step of a path."""
    out, left = [], p.irs[0]
    for ir, k in zip(p.irs[1:], (*p.labels, p.out)):
        out.append(int(np.count_nonzero(fuse_coupling(group, left, ir, k).values)))  # type: ignore[arg-type]
        left = k
    return out


def path_flops(p: Path, muls: list[sympy.Expr], out_mul: sympy.Expr, nnz: list[int]) -> sympy.Expr:
    """FLOPs of one path counted from the nonzeros of its coupling tensors."""
    k = p.out.dim
    u = muls[0]
    v = muls[1] if len(muls) > 1 else 1
    weighted = int(p.weight_shape is not None)
    rules = {
        "uvw": 2 * u * v * nnz[0] + 2 * u * v * out_mul * k,
        "uvu": 2 * u * v * nnz[0] + 2 * u * v * k * weighted,
        "uvv": 2 * u * v * nnz[0] + 2 * u * v * k * weighted,
        "uuw": 2 * u * nnz[0] + 2 * u * out_mul * k,
        "uvuv": 2 * u * v * nnz[0] + u * v * k * weighted,
    }
    if p.mode in rules:
        return B * rules[p.mode]
    channels = _max(*muls)
    return B * channels * (2 * sum(nnz) + (2 * k if weighted else 0))


def _symbolic_size(subscripts: str, sizes: dict[str, sympy.Expr]) -> sympy.Expr:
    return sympy.Mul(*(sizes[c] for c in subscripts))


def contraction_traffic(c: Contraction, sizes: dict[str, sympy.Expr]) -> tuple:
    """Bytes read and written by the pairwise steps of a contraction, and the peak tensor."""
    total, peaks = sympy.Integer(0), set()
    for step in c.steps:
        ins, out = step.equation.split("->")
        size = _symbolic_size(out, sizes)
        total += sum(_symbolic_size(s, sizes) for s in ins.split(",")) + size
        peaks.add(size)
    return BYTES * total, BYTES * _max(*peaks)


def per_path_cost(paths: Paths, node: int, contractions: tuple[Contraction, ...]) -> Cost:
    """The per-path strategy: every path its own einsum (e3nn's way)."""
    from fusiondsl.plan import PLANNING_BATCH

    d = paths.diagram
    syms = mul_symbols(paths, node)
    flops = dense = traffic = sympy.Integer(0)
    peak: sympy.Expr = sympy.Integer(0)
    values: dict[sympy.Symbol, int] = {}
    mine = [p for p in paths.paths if p.node == node]
    for p, c in zip(mine, contractions):
        muls = [syms[i][m] for i, m in enumerate(p.muls)]
        values.update({s: m for i, m in enumerate(p.muls) if isinstance(s := syms[i][m],
                                                                        sympy.Symbol)})
        flops += path_flops(p, muls, sympy.Integer(p.out_mul), _nnz(d.group, p))
        dense += sympy.Integer(c.flops) * B / PLANNING_BATCH
        sizes = _letter_sizes(c, muls, p.out_mul)
        t, pk = contraction_traffic(c, sizes)
        traffic += t
        peak = _max(peak, pk)
    ops = sum(len(c.steps) + 1 for c in contractions)
    return Cost("per-path", flops, dense, traffic, peak, ops, tuple(values.items()))


def _letter_sizes(c: Contraction, muls: list[sympy.Expr], out_mul: int) -> dict[str, sympy.Expr]:
    sizes: dict[str, sympy.Expr] = {}
    for o in c.operands:
        for letter, n in zip(o.subscripts, o.shape):
            sizes.setdefault(letter, sympy.Integer(n))
    sizes["z"] = B
    channel = dict(zip("uv", muls))
    for letter, sym in channel.items():
        if letter in sizes:
            sizes[letter] = sym
    if "w" in sizes:
        sizes["w"] = sympy.Integer(out_mul)
    return sizes


def grouped_cost(paths: Paths, g: GroupedNode) -> Cost:
    """The grouped strategy: per output entry, one GEMM with y, one bmm, one reduction."""
    syms = mul_symbols(paths, g.node)
    u = syms[0][g.mul]
    d1, d2 = g.dims
    mode = paths.diagram.nodes[g.node].mode
    flops = dense = traffic = sympy.Integer(0)
    peak: sympy.Expr = sympy.Integer(0)
    for grp in g.groups:
        kp = grp.dim * grp.num_paths
        w = grp.paths[0].out_mul
        reduce = 2 * B * kp * u * w if mode == "uvw" else 2 * B * u * kp
        nnz = sum(int(np.count_nonzero(grp.coupling[..., n])) for n in range(grp.num_paths))
        flops += 2 * B * u * nnz + reduce
        dense += 2 * B * d2 * d1 * kp + 2 * B * u * d1 * kp + reduce
        traffic += BYTES * (B * d2 + 3 * B * d1 * kp + B * u * d1 + 2 * B * u * kp
                            + B * u * grp.dim * (w if mode == "uvw" else 1))
        peak = _max(peak, BYTES * B * u * kp, BYTES * B * d1 * kp)
    traffic += BYTES * 2 * B * u * d1  # operand 1 entries side by side, once
    values = ((u, g.mul),) if isinstance(u, sympy.Symbol) else ()
    return Cost("grouped", flops, dense, traffic, peak, 1 + 5 * len(g.groups), values)


def fmt(x: float) -> str:
    """Engineering notation for reports: 1.23M, 4.5G."""
    if x == 0:
        return "0"
    exp = min(4, max(0, int(math.log10(abs(x)) // 3)))
    return f"{x / 10 ** (3 * exp):.3g}{['', 'k', 'M', 'G', 'T'][exp]}"

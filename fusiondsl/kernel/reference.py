"""A slow reference executor of the kernel IR in plain torch: what table-driven kernels follow.

It reads nothing but the kernel IR: segments slice the flat inputs, each path gathers the
nonzeros of its coupling tables, multiplies and ``index_add``s them into the label of the
next step, contracts channel letters with its weight slice by ``einsum`` and adds the
result, times its normalisation, into its output segment. Gates, neighbour sums, hoisted
prefixes and finals, F-move weight mixing, ``cat`` and ``linear`` follow the IR's steps as
written, so that a value equal to a compiled layer's shows the IR describes the plan fully.

Inputs are ``[rows, dim]`` (no broadcasting of batch shapes: the layers do that before any
kernel runs); a neighbourhood block takes ``edge_index`` after its legs, as the layers do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from fusiondsl.kernel.exact import Exact, round_exact
from fusiondsl.kernel.ir import (
    CatKernel,
    FuseKernel,
    GraphKernelIR,
    KernelIR,
    KernelPath,
    LinearKernel,
    NodeKernel,
    Operand,
    WeightSlice,
)

Entries = list[torch.Tensor]  # one [rows, mul, dim] tensor per segment


@dataclass
class _Run:
    """The state of one evaluation: inputs, weights, the graph, and each node's result."""

    ir: KernelIR
    legs: Sequence[torch.Tensor]
    internal: torch.Tensor | None
    external: torch.Tensor | None
    edge_index: torch.Tensor | None
    results: list[Entries | None] = field(default_factory=list)

    @property
    def dtype(self) -> torch.dtype:
        return self.legs[0].dtype

    @property
    def num_nodes(self) -> int:
        rows = [x.shape[0] for x, leg in zip(self.legs, self.ir.legs) if leg.domain == "node"]
        return rows[0] if rows else 0

    def scalar(self, x: Exact) -> torch.Tensor:
        """An exact factor rounded once to the run's dtype."""
        return round_exact([x], self.dtype)[0].to(self.legs[0].device)

    def values(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A table's ``[nnz, 3]`` indices and its values in the run's dtype."""
        t = self.ir.table(name)
        device = self.legs[0].device
        return t.index_tensor(device), t.values(self.dtype).to(device)

    def entries(self, op: Operand, gather: bool = True) -> Entries:
        """An operand's segments as ``[rows, mul, dim]``, gathered at ``i``/``j`` if asked."""
        if op.source == "leg":
            flat = self.legs[op.index]
            out = [flat[:, s.offset:s.stop].reshape(flat.shape[0], s.mul, s.dim)
                   for s in op.segments]
        else:
            got = self.results[op.index]
            if got is None:
                raise ValueError(f"node {op.index} is absorbed by an F-move and has no value")
            out = got
        if gather and op.at and self.edge_index is not None:
            rows = self.edge_index[0 if op.at == "i" else 1]
            out = [x.index_select(0, rows) for x in out]
        return out

    def weights(self, w: WeightSlice) -> torch.Tensor:
        """A weight slice, ``shape`` (internal) or ``[rows, *shape]`` (external)."""
        vector = self.external if w.vector == "external" else self.internal
        if vector is None:
            raise ValueError(f"the kernel IR reads {w.vector} weights: pass them")
        if w.vector == "external":
            return vector[:, w.start:w.stop].reshape(-1, *w.shape)
        return vector[w.start:w.stop].reshape(w.shape)

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_j: each edge's row added into its receiver's."""
        assert self.edge_index is not None
        out = x.new_zeros((self.num_nodes, *x.shape[1:]))
        return out.index_add(0, self.edge_index[0], x)


def chain(run: _Run, p: KernelPath, xs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, str]:
    """Couple a path's operands left to right over the nonzeros of each step's table.

    Returns:
        ``[rows, *channels, 2l+1]`` and its channel letters (union of the operands').
    """
    left, letters = _operand(xs[0], p.channels[0]), p.channels[0]
    for step, name in enumerate(p.tables):
        right, rl = _operand(xs[step + 1], p.channels[step + 1]), p.channels[step + 1]
        idx, val = run.values(name)
        both = letters + "".join(c for c in rl if c not in letters)
        prod = torch.einsum(f"z{letters}n,z{rl}n,n->z{both}n", left[..., idx[:, 0]],
                            right[..., idx[:, 1]], val)
        dim = run.ir.table(name).shape[2]
        left = prod.new_zeros((*prod.shape[:-1], dim)).index_add(-1, idx[:, 2], prod)
        letters = both
    return left, letters


def _operand(x: torch.Tensor, letters: str) -> torch.Tensor:
    """``[rows, mul, dim]``, or ``[rows, dim]`` for a broadcast (one-channel) operand."""
    return x if letters else x[:, 0]


def path_value(run: _Run, p: KernelPath, xs: Sequence[torch.Tensor],
               w: torch.Tensor | None = None, external: bool = False) -> torch.Tensor:
    """One path's term ``[rows, out channels, 2l+1]``: chain, weights, normalisation.

    ``w`` replaces the path's own weight slice (the F-move's mixed weights).
    """
    t, letters = chain(run, p, xs)
    if w is None and p.weights is not None:
        w, external = run.weights(p.weights), p.weights.vector == "external"
    if w is None or p.weight_channels is None:
        t = torch.einsum(f"z{letters}k->z{p.out_channels}k", t)
    else:
        wl = ("z" if external else "") + p.weight_channels
        t = torch.einsum(f"z{letters}k,{wl}->z{p.out_channels}k", t, w)
    t = t.reshape(t.shape[0], math.prod(t.shape[1:-1]), t.shape[-1])
    return t * run.scalar(p.normalisation)


def _add(out: list[torch.Tensor | None], i: int, t: torch.Tensor) -> None:
    out[i] = t if out[i] is None else out[i] + t


def _gated(run: _Run, n: FuseKernel, t: torch.Tensor) -> torch.Tensor:
    for g in n.gates:
        t = t * run.entries(g)[0]
    return t


def _done(out: list[torch.Tensor | None], n: NodeKernel) -> Entries:
    missing = [i for i, t in enumerate(out) if t is None]
    if missing:
        raise ValueError(f"node {n.name!r}: no path writes segment {missing[0]}")
    return out  # type: ignore[return-value]


def _fuse(run: _Run, n: FuseKernel) -> Entries | None:
    if n.absorbed:
        return None
    if n.hoist is not None:
        return _hoisted(run, n)
    xs = [run.entries(o) for o in n.operands]
    out: list[torch.Tensor | None] = [None] * len(n.out)
    for p in n.paths:
        _add(out, p.out, _gated(run, n, path_value(run, p, [x[i] for x, i in zip(xs, p.inputs)])))
    if n.aggregate:
        out = [run.scatter(t) if t is not None else None for t in out]
    return _done(out, n)


def _mixed(run: _Run, n: FuseKernel, r: int) -> tuple[torch.Tensor | None, Exact]:
    """The F-move's mixed weights of final ``r`` (``None`` without weights) and Σ values."""
    h = n.hoist
    assert h is not None
    total, w = Exact(), None
    by_index = {p.index: p for p in n.paths}
    for index, value in h.mix[r]:
        total = total + value
        ws = by_index[index].weights
        if ws is not None:
            term = run.weights(ws) * run.scalar(value)
            w = term if w is None else w + term
    return w, total


def _hoisted(run: _Run, n: FuseKernel) -> Entries:
    """Prefixes per edge (gated, summed), then finals per node with the centre."""
    h = n.hoist
    assert h is not None
    edge = [run.entries(o) for o in h.edge_operands]
    sums = [run.scatter(_gated(run, n, path_value(run, p, [x[i] for x, i in
                                                           zip(edge, p.inputs)])))
            for p in h.prefixes]
    centre = run.entries(h.centre, gather=False)
    reads = (centre, sums) if h.centre_first else (sums, centre)
    out: list[torch.Tensor | None] = [None] * len(n.out)
    for r, f in enumerate(h.finals):
        xs = [reads[0][f.inputs[0]], reads[1][f.inputs[1]]]
        if not h.mix:
            _add(out, f.out, path_value(run, f, xs))
            continue
        w, total = _mixed(run, n, r)
        t = path_value(run, f, xs, w)
        _add(out, f.out, t if w is not None else t * run.scalar(total))
    return _done(out, n)


def _cat(run: _Run, n: CatKernel) -> Entries:
    return [x for o in n.operands for x in run.entries(o)]


def _linear(run: _Run, n: LinearKernel) -> Entries:
    xs = run.entries(n.operand)
    out: list[torch.Tensor | None] = [None] * len(n.out)
    for b in n.blocks:
        t = torch.einsum("zui,uw->zwi", xs[b.inp], run.weights(b.weights))
        _add(out, b.out, t * run.scalar(b.normalisation))
    return _done(out, n)


RULES = {FuseKernel: _fuse, CatKernel: _cat, LinearKernel: _linear}


def evaluate(ir: KernelIR, args: Sequence[torch.Tensor],
             internal: torch.Tensor | None = None) -> torch.Tensor:
    """Evaluate a kernel IR on a layer's positional arguments (legs, edge_index, weights).

    Args:
        ir: a tree diagram's or neighbourhood block's kernel IR.
        args: as a compiled layer takes them: one ``[rows, dim]`` tensor per leg, then
            ``edge_index`` for a neighbourhood block, then the external weights if any.
        internal: the internal weight vector (a layer's ``weight``), if the IR has one.
    """
    legs = list(args[:len(ir.legs)])
    rest = list(args[len(ir.legs):])
    edge_index = rest.pop(0) if ir.neighbourhood else None
    external = rest.pop(0) if ir.external_numel else None
    if any(x.dim() != 2 for x in legs):
        raise ValueError("the reference executor takes [rows, dim] inputs")
    run = _Run(ir, legs, internal, external, edge_index)
    for n in ir.nodes:
        run.results.append(RULES[type(n)](run, n))  # type: ignore[operator]
    last = run.results[-1]
    assert last is not None
    return torch.cat([t.reshape(t.shape[0], -1) for t in last], dim=1)


def evaluate_graph(ir: GraphKernelIR, args: Sequence[torch.Tensor],
                   dtype: torch.dtype | None = None) -> torch.Tensor:
    """Evaluate a graph's one contraction (dense tables) on its open legs ``[rows, mul*dim]``."""
    dtype = args[0].dtype if args else dtype or torch.get_default_dtype()
    legs = {leg.name: (leg, x) for leg, x in zip(ir.inputs, args)}
    ops = []
    for f in ir.factors:
        if f.kind == "table":
            ops.append(ir.table(f.name).dense(dtype))
            continue
        leg, x = legs[f.name]
        shape = (leg.mul, leg.dim) if len(f.subscripts) == 3 else (leg.dim,)
        ops.append(x.reshape(x.shape[0], *shape))
    result = torch.einsum(ir.equation, *ops)
    if not args:
        return result
    flat = ir.output is not None or "u" in ir.output_subscripts
    return result.reshape(result.shape[0], -1) if flat else result.reshape(result.shape[0])

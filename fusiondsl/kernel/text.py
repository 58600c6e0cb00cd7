"""The printed kernel IR: one line per path, then every coefficient table with exact values.

A path line reads ``path 3: 1o ⊗ 2e → 1o  uvw  x:1 y:2 → z:1  [u v → w | uvw]  w[96:192]
×0.57735 (1/3*sqrt(3))  w3j_1_2_1``: the coupling, the connection mode, the segment read in
each operand and written in the result, the channel letters (``·`` for a broadcast operand),
the weight slice (``w`` internal, ``weight`` external per sample), the normalisation (float,
then exact) and the table of each coupling step.
"""

from __future__ import annotations

from fusiondsl.kernel import ir
from fusiondsl.kernel.exact import Exact, Table
from fusiondsl.kernel.ir import (
    CatKernel,
    FuseKernel,
    GraphKernelIR,
    Hoist,
    KernelIR,
    KernelPath,
    LinearKernel,
    Operand,
    Segment,
    WeightSlice,
)

WIDTH = 96


def _segments(segs: tuple[Segment, ...]) -> str:
    return ", ".join(f"{i}=[{s.offset}:{s.stop}] {s.mul}x{s.ir}" for i, s in enumerate(segs))


def _name(op: Operand) -> str:
    return f"{op.name}[{op.at}]" if op.at else op.name


def _weights(w: WeightSlice | None) -> str:
    if w is None:
        return "-"
    return f"{'w' if w.vector == 'internal' else 'weight'}[{w.start}:{w.stop}]"


def _factor(x: Exact) -> str:
    return f"×{float(x):.6g} ({x})"


def path_line(p: KernelPath, reads: list[str], out: str, kind: str = "path") -> str:
    """One path: coupling, mode, segments, channel letters, weights, factor, tables."""
    ins = " ".join(f"{name}:{i}" for name, i in zip(reads, p.inputs))
    letters = " ".join(c or "·" for c in p.channels) + f" → {p.out_channels or '·'}"
    if p.weight_channels is not None:
        letters += f" | {p.weight_channels or '·'}"
    return (f"{kind} {p.index}: {p.describe()}  {p.mode}  {ins} → {out}:{p.out}  [{letters}]  "
            f"{_weights(p.weights)}  {_factor(p.normalisation)}  {' '.join(p.tables)}")


def _hoist(h: Hoist, out: str) -> list[str]:
    edge = [_name(o) for o in h.edge_operands]
    lines = [f"  hoist {h.kind}: per edge {' ⊗ '.join(edge)}, gated and summed over j; "
             f"per node with {_name(h.centre)}" + (f"; absorbs node {h.absorbs}"
                                                   if h.absorbs is not None else "")]
    lines.append(f"  sums {_segments(h.sums)}")
    lines += ["    " + path_line(p, edge, "sum", "prefix") for p in h.prefixes]
    reads = [_name(h.centre), "sum"] if h.centre_first else ["sum", _name(h.centre)]
    for r, p in enumerate(h.finals):
        lines.append("    " + path_line(p, reads, out, "final"))
        if h.mix:
            terms = ", ".join(f"path {i} × {v}" for i, v in h.mix[r])
            lines.append(f"      mixed weights = Σ {terms}")
    return lines


def _fuse(n: FuseKernel) -> list[str]:
    extra = " external" if n.external else ""
    head = (f"node {n.node}: {n.name} = {'sum_j ' if n.aggregate else ''}fuse("
            f"{', '.join(_name(o) for o in n.operands)})  domain {n.domain}  "
            f"{n.weight_numel} weights{extra}  order {n.coupling_order}  strategy {n.strategy}")
    lines = [head + ("  (absorbed: not computed)" if n.absorbed else "")]
    if n.gates:
        lines.append(f"  gates {', '.join(_name(g) for g in n.gates)}")
    lines.append(f"  out {_segments(n.out)}")
    lines += [f"  group {n.name}:{k}: paths {', '.join(map(str, g))}"
              for k, g in enumerate(n.groups)]
    reads = [_name(o) for o in n.operands]
    lines += ["  " + path_line(p, reads, n.name) for p in n.paths]
    if n.hoist is not None:
        lines += _hoist(n.hoist, n.name)
    return lines


def _cat(n: CatKernel) -> list[str]:
    return [f"node {n.node}: {n.name} = cat({', '.join(_name(o) for o in n.operands)})  "
            f"domain {n.domain}", f"  out {_segments(n.out)}"]


def _linear(n: LinearKernel) -> list[str]:
    lines = [f"node {n.node}: {n.name} = linear({_name(n.operand)})  domain {n.domain}",
             f"  out {_segments(n.out)}"]
    lines += [f"  block {b.ir}: {_name(n.operand)}:{b.inp} → {n.name}:{b.out}  "
              f"{b.mul_in} → {b.mul_out}  {_weights(b.weights)}  {_factor(b.normalisation)}"
              for b in n.blocks]
    return lines


_NODE_TEXT = {FuseKernel: _fuse, CatKernel: _cat, LinearKernel: _linear}


def table_lines(t: Table) -> list[str]:
    """A table's header and its nonzeros, wrapped."""
    lines = [f"table {t.name} {list(t.shape)}: {_count(t.nnz, 'nonzero')}; {t.doc}"]
    row = " "
    for idx, v in zip(t.indices, t.exact):
        item = f" ({','.join(map(str, idx))}) {v}"
        if len(row) + len(item) > WIDTH:
            lines.append(row)
            row = " "
        row += item
    return [*lines, row] if row.strip() else lines


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def kernel_text(ir: KernelIR) -> str:
    """The printout of a tree diagram's kernel IR."""
    num_paths = sum(len(n.paths) for n in ir.nodes if isinstance(n, FuseKernel))
    lines = [f"# kernel IR of {ir.name!r} (group {ir.group}): {_count(len(ir.nodes), 'node')}, "
             f"{_count(num_paths, 'path')}, {ir.internal_numel} internal + "
             f"{ir.external_numel} external weights, {_count(len(ir.tables), 'table')}",
             f"# irrep_normalization={ir.irrep_normalization}, "
             f"path_normalization={ir.path_normalization}"
             + ("; a neighbourhood block: legs, then edge_index" if ir.neighbourhood else "")]
    lines += [f"leg {leg.name}: {leg.domain}  {_segments(leg.segments)}" for leg in ir.legs]
    for n in ir.nodes:
        lines += _NODE_TEXT[type(n)](n)  # type: ignore[operator]
    lines.append(f"output {ir.out_name} = node {len(ir.nodes) - 1}")
    for t in ir.tables:
        lines += table_lines(t)
    return "\n".join(lines) + "\n"


def graph_text(ir: GraphKernelIR) -> str:
    """The printout of a graph's kernel IR."""
    lines = [f"# kernel IR of graph {ir.name!r} (group {ir.group}): one contraction of "
             f"{_count(len(ir.factors), 'factor')}, {_count(len(ir.tables), 'table')}"]
    lines += [f"in {leg.name}: {leg.mul}x{leg.ir}" for leg in ir.inputs]
    if ir.output is not None:
        lines.append(f"out {ir.output.name}: {ir.output.mul}x{ir.output.ir}")
    lines += [f"factor {f.kind} {f.name} {f.subscripts}" for f in ir.factors]
    lines.append(f"contraction {ir.equation}")
    for t in ir.tables:
        lines += table_lines(t)
    return "\n".join(lines) + "\n"


ir.install("kernel_text", kernel_text)
ir.install("graph_text", graph_text)

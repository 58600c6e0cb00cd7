"""The ``forward`` of a generated Triton or C layer: one block per node, in diagram order.

Fuse nodes call their kernels through the generated module's ``_fuse``
(:func:`fusiondsl.backends.triton.runtime.fuse` or :func:`fusiondsl.backends.c.runtime.fuse`); the
writer reads only ``plan``, ``d`` and ``sets`` of the lowering, so both backends share it.
The rest is torch, differentiable to any order: the batch flattening of trees; for
neighbourhood blocks the gathers ``h[i]``/``h[j]`` (``index_select``), the gates (a
channel-wise multiply), the sums over neighbours (``index_add``) and the F-move's weight mixing
(a matrix product); ``cat`` (a concatenation) and ``linear`` (e3nn's ``Linear``: one
``einsum`` per block).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.pysource import DTYPES, class_name, emit_exact_apply, pyname
from fusiondsl.backends.units import HoistedSum, absorbed_by, coupled_args
from fusiondsl.core.irreps import Irreps
from fusiondsl.ir.diagram import CatNode, FuseNode, LinearNode, Operand

if TYPE_CHECKING:
    from fusiondsl.backends.c.lower import CLowering
    from fusiondsl.backends.triton.lower import TritonLowering


class ForwardWriter:
    """Writes ``forward`` for one diagram's plan (one method per node kind)."""

    def __init__(self, low: TritonLowering | CLowering, em: Emitter) -> None:
        self.low, self.em, self.d, self.plan = low, em, low.d, low.plan
        self.gathered: set[str] = set()
        self.taken = {pyname(leg.name) for leg in self.d.legs}
        self.taken |= {self.name(Operand("node", k)) for k in range(len(self.d.nodes))}

    def name(self, op: Operand) -> str:
        """The variable of a leg or node result (not gathered)."""
        return pyname(self.d.operand_name(Operand(op.kind, op.index)))

    def value(self, op: Operand) -> str:
        """The variable of an operand, gathered per edge (emitted once) when read at i or j."""
        base = self.name(op)
        if not op.at:
            return base
        name = f"{base}_{op.at}"
        while name in self.taken and name not in self.gathered:
            name += "_"
        if name not in self.gathered:
            self.gathered.add(name)
            self.taken.add(name)
            index, who = ("receivers", "centre i") if op.at == "i" else ("senders", "neighbour j")
            self.em.line(f"{name} = {base}.index_select(0, {index})  # {base} at the {who}, "
                         "per edge")
        return name

    # ---- the method ----------------------------------------------------------------------
    def write(self) -> None:
        """``def forward(…)``: prologue, one block per node, the result."""
        d, em = self.d, self.em
        args = [pyname(leg.name) for leg in d.legs]
        ext = self.plan.external_numel
        if d.is_neighbourhood:
            args.append("edge_index")
        em.line(f"def forward(self, {', '.join(args)}, weight=None):")
        with em.indent():
            if d.is_neighbourhood:
                em.line(f'"""Node tensors [num_nodes, dim], edge tensors [num_edges, dim] and '
                        f'edge_index [2, num_edges] (receiver i, sender j){self._ext_doc()}."""')
            else:
                em.line(f'"""Inputs in e3nn layout: {", ".join(args)}'
                        f'{" and external weights" if ext else ""}."""')
            self.external_check()
            (self.graph_prologue if d.is_neighbourhood else self.batch_prologue)()
            spaced = any(not self.plain(k) for k in range(len(d.nodes)))
            for k, node in enumerate(d.nodes):
                if spaced:
                    em.line()
                _BLOCKS[type(node)](self, k, node)
            out = self.name(Operand("node", len(d.nodes) - 1))
            if spaced:
                em.line()
            if d.is_neighbourhood:
                em.line(f"return {out}")
            else:
                em.line(f"return {out}.reshape(batch + ({d.irreps_out.dim},))")

    def plain(self, k: int) -> bool:
        """Whether node ``k`` is a fuse node evaluated as written, with no graph step."""
        node = self.d.nodes[k]
        return (isinstance(node, FuseNode) and not node.aggregate and not node.gates
                and not any(a.at for a in node.args))

    def _ext_doc(self) -> str:
        n = self.plan.external_numel
        return f", external weights [num_edges, {n}]" if n else ""

    def external_check(self) -> None:
        """A clear error when external weights are missing."""
        ext = self.plan.external_numel
        if ext:
            self.em.line("if weight is None:")
            with self.em.indent():
                self.em.line(f'raise TypeError("this layer takes external weights: '
                             f'pass weight [..., {ext}]")')

    def batch_prologue(self) -> None:
        """Trees: broadcast the leading batch shapes and flatten them into rows."""
        em, d, ext = self.em, self.d, self.plan.external_numel
        args = [pyname(leg.name) for leg in d.legs]
        shapes = [f"{a}.shape[:-1]" for a in args] + (["weight.shape[:-1]"] if ext else [])
        em.line(f"batch = torch.broadcast_shapes({', '.join(shapes)})")
        for a, leg in zip(args, d.legs):
            em.line(f"{a} = {a}.expand(batch + ({leg.irreps.dim},)).reshape(-1, "
                    f"{leg.irreps.dim})")
        if ext:
            em.line(f"weight = weight.expand(batch + ({ext},)).reshape(-1, {ext})")

    def graph_prologue(self) -> None:
        """Neighbourhood blocks: receivers and senders; the node count for the sums."""
        node_legs = [leg for leg in self.d.legs if leg.domain == "node"] or list(self.d.legs)
        self.em.line("receivers, senders = edge_index[0], edge_index[1]")
        self.em.line(f"num_nodes = {pyname(node_legs[0].name)}.shape[0]")

    # ---- fuse nodes ----------------------------------------------------------------------
    def weight(self, k: int, numel: int, external: bool) -> str:
        """The weight slice of node ``k``."""
        start = self.plan.weight_offsets[k]
        if external:
            return f"weight[:, {start}:{start + numel}]"
        return f"self.weight[{start}:{start + numel}]"

    def fuse(self, k: int, node: FuseNode) -> None:
        """A fuse node: as written, hoisted, or absorbed by an F-move."""
        em, d = self.em, self.d
        name = self.name(Operand("node", k))
        em.comment(f"{name} = {d._fuse_text(node)}  ({len(self.plan.node_paths[k])} paths)")
        outer = absorbed_by(self.plan, k)
        if outer is not None:
            em.comment(f"not computed per edge: {self.name(Operand('node', outer))} below "
                       "recouples it by an F-move")
            return
        h = self.low.hoisted[k]
        if h is not None:
            self.hoisted(k, node, h)
            return
        info = self.low.sets[k][0]
        operands = [self.value(a) for a in coupled_args(node)]
        weight = self.weight(k, info.weight_numel, info.external) if info.weighted else "None"
        em.line(f"{name} = _fuse(kernels_{info.name}, ({', '.join(operands)},), {weight})")
        self.gates(name, node, info.out)
        if node.aggregate:
            em.line(f"{name} = _scatter_sum({name}, receivers, num_nodes)  # Σ_j into centre i")

    def gates(self, name: str, node: FuseNode, layout: Irreps) -> None:
        """``* g``: each channel of the per-edge result times the edge scalar of that channel."""
        for g in node.gates:
            entries = tuple((m.mul, m.ir.dim) for m in layout)
            self.em.line(f"{name} = _gate({name}, {self.value(g)}, {entries!r})")

    def hoisted(self, k: int, node: FuseNode, h: HoistedSum) -> None:
        """A hoisted sum: prefixes per edge, gated and summed; final couplings per node."""
        em = self.em
        pre, fin = h.prefix, h.final
        names = " ⊗ ".join(self.d.operand_name(a) for a in h.prefix_args)
        centre = f"{self.d.operand_name(h.centre)}[i]"
        weight = "None"
        if h.fmove is not None:
            a, b, c = (self.d.operand_name(op) for op in h.fmove.operands)
            em.comment(f"hoisted by an F-move: ({a} ⊗ {b} → k) ⊗ {c} → J = Σ_k' M[k, k'] "
                       f"{a} ⊗ ({b} ⊗ {c} → k') → J, M the 6j recoupling matrix")
            weight = self.mixed_weights(k, h)
        em.comment(f"hoisted: {names} per edge ({len(pre.paths)} prefixes), gated and summed "
                   f"over j; {centre} couples once per node ({len(fin.paths)} "
                   f"{'terms' if h.fmove else 'paths'})")
        operands = [self.value(a) for a in h.prefix_args]
        em.line(f"{pre.name} = _fuse(kernels_{pre.name}, ({', '.join(operands)},), None)")
        self.gates(pre.name, node, pre.out)
        em.line(f"{pre.name} = _scatter_sum({pre.name}, receivers, num_nodes)")
        if h.fmove is None:
            weight = self.weight(k, fin.weight_numel, False) if fin.weighted else "None"
        args = (self.name(h.centre), pre.name) if h.centre_first else (pre.name,
                                                                       self.name(h.centre))
        em.line(f"{fin.name} = _fuse(kernels_{fin.name}, ({', '.join(args)},), {weight})")

    def mixed_weights(self, k: int, h: HoistedSum) -> str:
        """``m_w = fmove_m @ weights``: the weights of the final terms, from the parameters."""
        fm = h.fmove
        assert fm is not None
        shape = fm.left[0].weight_shape
        if shape is None:
            return "None"
        name = h.final.name
        start = self.plan.weight_offsets[k]
        numel = len(fm.left) * fm.left[0].weight_numel
        dims = ", ".join(map(str, (len(fm.left), *shape)))
        self.em.comment(f"mixed weights: row r = Σ_p fmove_{name}[r, p] · (weights of path p), "
                        "so that the parameters stay those of the unhoisted layer")
        self.em.line(f"{name}_w = (self.fmove_{name} @ self.weight[{start}:{start + numel}]"
                     f".view({dims})).reshape(-1)")
        return f"{name}_w"

    # ---- cat and linear ------------------------------------------------------------------
    def cat(self, k: int, node: CatNode) -> None:
        """Concatenation along channels: the operands' entries one after another."""
        name = self.name(Operand("node", k))
        self.em.comment(f"{name} = {self.d._fuse_text(node)}: entries one after another")
        parts = ", ".join(self.value(a) for a in node.args)
        self.em.line(f"{name} = torch.cat([{parts}], dim=1)")

    def linear(self, k: int, node: LinearNode) -> None:
        """e3nn's ``Linear``: per output entry, the blocks of its label, then the entries."""
        em, d = self.em, self.d
        name = self.name(Operand("node", k))
        src = self.value(node.args[0])
        layout = d.operand_irreps(node.args[0])
        em.comment(f"{name} = {d._fuse_text(node)}: channel mixing per irrep (block-diagonal)")
        parts = []
        for e, m in enumerate(node.irreps):
            blocks = [b for b in self.plan.node_linears[k] if b.out_entry == e]
            em.comment(f"{m}: from entr{'y' if len(blocks) == 1 else 'ies'} "
                       f"{', '.join(str(b.in_entry) for b in blocks)} of {src}")
            terms = []
            for b in blocks:
                start, stop = layout.slices[b.in_entry]
                w0 = self.plan.weight_offsets[k] + b.weight_offset
                terms.append(f"{b.coefficient!r} * torch.einsum('zui,uw->zwi', {src}[:, "
                             f"{start}:{stop}].reshape(-1, {b.mul_in}, {m.ir.dim}), "
                             f"self.weight[{w0}:{w0 + b.weight_numel}].view({b.mul_in}, "
                             f"{b.mul_out}))")
            part = f"{name}_{e}"
            zero = f"{src}.new_zeros({src}.shape[0], {m.mul}, {m.ir.dim})"
            em.line(f"{part} = {terms[0] if terms else zero}")
            for t in terms[1:]:
                em.line(f"{part} = {part} + {t}")
            parts.append(f"{part}.flatten(1)")
        em.line(f"{name} = torch.cat([{', '.join(parts)}], dim=1)")


_BLOCKS: dict[type, Callable[[ForwardWriter, int, Any], None]] = {
    FuseNode: ForwardWriter.fuse, CatNode: ForwardWriter.cat,
    LinearNode: ForwardWriter.linear}


def write_layer_class(low: TritonLowering | CLowering, em: Emitter, kernels: str) -> None:
    """The layer class of a kernel backend: the einsum layer's attributes, weights, buffers."""
    d, plan = low.d, low.plan
    em.line()
    em.line()
    em.line(f"class {class_name(d.name)}(torch.nn.Module):")
    with em.indent():
        em.line(f'"""Layer for diagram {d.name!r} ({kernels}): {plan.paths.num_paths} paths."""')
        em.line()
        em.line(f"irreps_in = {tuple(str(leg.irreps) for leg in d.legs)!r}")
        em.line(f"irreps_out = {str(d.irreps_out)!r}")
        em.line(f"weight_numel = {plan.internal_numel + plan.external_numel}")
        em.line(f"internal_weight_numel = {plan.internal_numel}")
        em.line(f"external_weight_numel = {plan.external_numel}")
        em.line()
        em.line("def __init__(self):")
        with em.indent():
            em.line("super().__init__()")
            for name, _ in low.fmoves:
                em.line(f'self.register_buffer("fmove_{name}", _sparse(*FMOVE_{name.upper()})'
                        f".to({DTYPES['real']}), persistent=False)")
            if plan.internal_numel:
                em.line(f"self.weight = torch.nn.Parameter(torch.randn({plan.internal_numel})"
                        f".to({DTYPES['real']}))")
        em.line()
        emit_exact_apply(em, [f"fmove_{name}" for name, _ in low.fmoves])
        ForwardWriter(low, em).write()

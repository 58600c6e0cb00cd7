"""Checks for tree diagrams: names, domains, weight modes, channels and reachable labels."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from fusiondsl.core.coupling import BINARY_MODES, WEIGHT_MODES, ExpansionError, expand_fuse
from fusiondsl.core.diagnostics import Span
from fusiondsl.core.irreps import Irreps, MulIr
from fusiondsl.front import ast
from fusiondsl.front.limits import advice, chain_size, limit
from fusiondsl.front.validate_text import known_names, labels_text, why_unreached
from fusiondsl.ir.diagram import (
    CatNode,
    Diagram,
    FuseNode,
    Leg,
    LinearNode,
    Node,
    Operand,
    coupling_order,
)

if TYPE_CHECKING:
    from fusiondsl.front.validate import Checker

FUNCTIONS = ("linear", "cat")


class _Tree:
    """State while checking one diagram: its legs, nodes built so far, names in scope."""

    def __init__(self, chk: Checker, decl: ast.DiagramDecl) -> None:
        self.chk, self.decl = chk, decl
        self.legs: list[Leg] = []
        self.nodes: list[Node] = []
        self.scope: dict[str, Operand] = {}
        self.defined_at: dict[str, Span] = {}
        self.used: set[tuple[str, int]] = set()
        self.later = {a.target: a.span for a in decl.body}
        self.out_irreps: Irreps | None = None
        self.user_names = {leg.name for leg in decl.legs} | set(self.later)
        self.num_weights = 0

    # ---- names ---------------------------------------------------------------------------
    def declare_legs(self) -> None:
        for leg in self.decl.legs:
            irreps = self.chk.irreps(leg.irreps)
            if leg.name in self.scope:
                line = self.defined_at[leg.name].line
                self.chk.error(f"leg {leg.name!r} is already declared on line {line}", leg.span)
                continue
            self.scope[leg.name] = Operand("leg", len(self.legs))
            self.defined_at[leg.name] = leg.span
            domain = "edge" if leg.domain == "edge" else "node"
            self.legs.append(Leg(leg.name, irreps or Irreps(), domain, leg.span))

    def domain(self, op: Operand) -> str:
        return self.legs[op.index].domain if op.kind == "leg" else self.nodes[op.index].domain

    def irreps_of(self, op: Operand) -> Irreps:
        return self.legs[op.index].irreps if op.kind == "leg" else self.nodes[op.index].irreps

    def ref(self, r: ast.Ref, in_sum: bool) -> Operand | None:
        op = self.scope.get(r.name)
        if op is None:
            if r.name in self.defined_at:  # its assignment failed and was reported already
                return None
            if r.name in self.later:
                line = self.later[r.name].line
                self.chk.error(f"{r.name!r} is used before it is defined on line {line}", r.span)
            else:
                self.chk.error(f"unknown name {r.name!r}", r.span, known_names(self.scope))
            return None
        self.used.add((op.kind, op.index))
        return self._check_index(r, op, in_sum)

    def _check_index(self, r: ast.Ref, op: Operand, in_sum: bool) -> Operand | None:
        err = self.chk.error
        if r.index not in (None, "i", "j"):
            err(f"index [{r.index}] must be [i] (the centre) or [j] (the neighbour)", r.span)
        elif self.domain(op) == "edge":
            if r.index:
                err(f"edge value {r.name!r} lives on the bond ij: do not index it", r.span)
            elif not in_sum:
                err(f"edge value {r.name!r} can only be used inside sum_j", r.span)
            else:
                return op
        elif in_sum and r.index is None:
            err(f"inside sum_j, read {r.name!r} at the centre {r.name}[i] or the neighbour "
                f"{r.name}[j]", r.span)
        elif not in_sum and r.index == "j":
            err(f"{r.name}[j] reads a neighbour: only inside sum_j", r.span)
        elif op.kind == "node" and r.index == "j":
            err(f"{r.name!r} is computed in this diagram; it cannot be read at a neighbour",
                r.span, "sum over neighbours first, or read an input leg at [j]")
        else:
            return Operand(op.kind, op.index, r.index if in_sum else None)
        return None

    # ---- expressions ---------------------------------------------------------------------
    def expr(self, e: Any, target: str | None, in_sum: bool) -> Operand | None:
        handlers: dict[type, Callable[..., Operand | None]] = {
            ast.Ref: lambda e, t, s: self.ref(e, s),
            ast.Fuse: self.fuse,
            ast.SumJ: self.sum_j,
            ast.Call: self.call,
        }
        return handlers[type(e)](e, target, in_sum)

    def add(self, node: Node) -> Operand:
        self.nodes.append(node)
        return Operand("node", len(self.nodes) - 1)

    def name_for(self, target: str | None, prefix: str) -> str:
        """A user's target, or a fresh ``_fN``/``_cN`` that no name in the diagram has."""
        if target is not None:
            return target
        n, taken = len(self.nodes), self.user_names
        while f"_{prefix}{n}" in taken:
            n += 1
        return f"_{prefix}{n}"

    def layout_for(self, target: str | None) -> Irreps | None:
        return self.out_irreps if target == self.decl.out_name else None

    def operands(self, args: tuple[Any, ...], in_sum: bool) -> list[Operand] | None:
        ops = [self.expr(a, None, in_sum) for a in args]
        self.used.update((o.kind, o.index) for o in ops if o is not None)
        return None if any(o is None for o in ops) else ops  # type: ignore[return-value]

    def sum_j(self, e: ast.SumJ, target: str | None, in_sum: bool) -> Operand | None:
        if in_sum:
            self.chk.error("sum_j cannot be nested: an edge term is summed once", e.span)
            self.operands(e.body.args, True)  # still mark its legs as used
            return None
        return self.fuse(e.body, target, True, aggregate=True)

    def call(self, e: ast.Call, target: str | None, in_sum: bool) -> Operand | None:
        ops = self.operands(e.args, in_sum)
        if e.func not in FUNCTIONS:
            self.chk.error(f"unknown function {e.func!r}: use fuse, linear or cat", e.span)
            return None
        if ops is None:
            return None
        return (self.linear if e.func == "linear" else self.cat)(e, ops, target, in_sum)

    def cat(self, e: ast.Call, ops: list[Operand], target: str | None, in_sum: bool) -> Any:
        irreps = Irreps(tuple(m for o in ops for m in self.irreps_of(o)))
        domains = {self.domain(o) for o in ops}
        layout = self.layout_for(target)
        if layout is not None and layout != irreps:
            self.chk.error(f"cat gives {irreps} but the output declares {layout}", e.span,
                           "mix channels with linear(cat(…)) to reach the declared irreps")
            return None
        domain = "edge" if "edge" in domains else "node"
        return self.add(CatNode(self.name_for(target, "c"), tuple(ops), irreps, domain, e.span))

    def linear(self, e: ast.Call, ops: list[Operand], target: str | None, in_sum: bool) -> Any:
        if len(ops) != 1:
            self.chk.error(f"linear takes one operand, got {len(ops)}", e.span,
                           "concatenate first: linear(cat(a, b))")
            return None
        source = self.irreps_of(ops[0])
        layout = self.layout_for(target) or source.simplify()
        missing = [str(m.ir) for m in layout if source.count(m.ir) == 0]
        if missing:
            self.chk.error(f"linear cannot produce {', '.join(missing)}: no input has that label",
                           e.span, f"its input is {source}")
            return None
        name = self.name_for(target, "l")
        return self.add(LinearNode(name, tuple(ops), layout, self.domain(ops[0]), e.span))

    def fuse(
        self, e: ast.Fuse, target: str | None, in_sum: bool, aggregate: bool = False
    ) -> Operand | None:
        mark = self.chk.mark()
        if len(e.args) < 2:
            self.chk.error(f"fuse needs at least two operands, got {len(e.args)}", e.span)
        ops = self.operands(e.args, in_sum)
        mode, external = self.weights(e, len(e.args))
        keep = self.keep(e)
        gates = [self.ref(g, in_sum) for g in e.gates]
        if ops is None or self.chk.failed_since(mark) or None in gates:
            return None
        layout = self.layout_for(target)
        order = coupling_order(tuple(ops), e.ordered, aggregate)
        operands = [self.irreps_of(ops[i]) for i in order]
        if not self.within_limits(e, operands, keep, layout):
            return None
        try:
            paths, irreps = expand_fuse(operands, mode, keep, layout)
        except ExpansionError as err:
            self.chk.error(str(err), e.span)
            return None
        if not self.weights_fit(e, paths):
            return None
        if not self.reachable(e, paths, keep, layout, irreps):
            return None
        domain = "edge" if in_sum and not aggregate else "node"
        node = FuseNode(self.name_for(target, "f"), tuple(ops), e.ordered, mode, external,
                        keep, irreps, tuple(gates), aggregate, domain, e.span)  # type: ignore[arg-type]
        if not self.gates_fit(node, e):
            return None
        return self.add(node)

    def within_limits(self, e: ast.Fuse, operands: list[Irreps], keep: Irreps | None,
                      layout: Irreps | None) -> bool:
        """Count the paths before listing them: a fuse too large to build is refused."""
        num_paths, largest = chain_size(operands, keep, layout)
        if largest > 2 * limit("MAX_L"):
            self.chk.error(f"this fuse couples up to spin {Fraction(largest, 2)}, above the "
                           f"limit of {limit('MAX_L')}", e.span, advice("MAX_L"))
            return False
        if num_paths > limit("MAX_PATHS"):
            self.chk.error(f"this fuse has {num_paths:,} paths, more than the limit of "
                           f"{limit('MAX_PATHS'):,}", e.span,
                           "filter intermediate labels with '-> …', couple fewer operands, or "
                           + advice("MAX_PATHS"))
            return False
        return True

    def weights_fit(self, e: ast.Fuse, paths: list) -> bool:
        """The diagram's weights so far stay within the limit."""
        self.num_weights += sum(math.prod(p.channels.weight_shape or (0,)) for p in paths)
        if self.num_weights > limit("MAX_WEIGHTS"):
            self.chk.error(f"the diagram needs {self.num_weights:,} weights by this fuse, more "
                           f"than the limit of {limit('MAX_WEIGHTS'):,}", e.span,
                           advice("MAX_WEIGHTS"))
            return False
        return True

    def weights(self, e: ast.Fuse, num_args: int) -> tuple[str, bool]:
        if len(e.weights) > 1:
            self.chk.error("a fuse takes one weights clause", e.weights[1].span)
        if not e.weights:
            return "none", False
        w = e.weights[0]
        if w.mode not in WEIGHT_MODES:
            self.chk.error(f"unknown weight mode {w.mode!r}: use one of {', '.join(WEIGHT_MODES)}",
                           w.span)
        elif w.mode in BINARY_MODES and num_args != 2:
            self.chk.error(f"weights {w.mode} couples exactly two operands, this fuse has "
                           f"{num_args}", w.span, "use uuu (channel-wise) for n-ary fusion")
        elif w.mode == "none" and w.external:
            self.chk.error("weights none has no weights to make external", w.span)
        return w.mode, w.external

    def keep(self, e: ast.Fuse) -> Irreps | None:
        if len(e.filters) > 1:
            self.chk.error("a fuse takes one '->' filter", e.filters[1].span)
        return self.chk.irreps(e.filters[0]) if e.filters else None

    def reachable(self, e: ast.Fuse, paths: list, keep: Irreps | None,
                  layout: Irreps | None, irreps: Irreps) -> bool:
        got = {p.out for p in paths}
        coupled = _coupled_labels(self, e)  # before any filter: what the operands can give
        avail = "couplings give: " + labels_text(coupled if coupled is not None else got)
        if keep is not None:
            for ir in keep.labels:
                if ir not in got:
                    why = (f"the couplings give {ir}, but the declared output {layout} drops it"
                           if layout is not None and coupled and ir in coupled else
                           why_unreached(self.chk.group, ir, coupled))
                    self.chk.error(f"no path of this fuse reaches {ir}", e.filters[0].span,
                                   why, avail)
                    return False
        if layout is not None:
            used = {p.out_entry for p in paths}
            for i, m in enumerate(layout):
                if i not in used:
                    kept = (f"the filter '-> {keep}' keeps only {labels_text(set(keep.labels))}"
                            if keep is not None and m.ir not in keep.labels else
                            why_unreached(self.chk.group, m.ir, coupled))
                    self.chk.error(f"declared output {m} is reached by no path",
                                   self.decl.out_irreps.span, avail, kept)
                    return False
        if not paths:
            self.chk.error("this fuse has no admissible coupling", e.span, avail)
            return False
        return True

    def gates_fit(self, node: FuseNode, e: ast.Fuse) -> bool:
        for g, r in zip(node.gates, e.gates, strict=True):
            irreps = self.irreps_of(g)
            muls = {m.mul for m in node.irreps}
            if any(m.ir.j2 != 0 or m.ir.p == -1 for m in irreps) or len(irreps) != 1:
                self.chk.error(f"gate {r.name!r} must be one block of invariant scalars such as "
                               f"16x0e, got {irreps}", r.span)
                return False
            if muls != {irreps[0].mul} and irreps[0].mul != 1:
                self.chk.error(f"gate {r.name!r} has {irreps[0].mul} channels, the fuse gives "
                               f"{', '.join(map(str, sorted(muls)))}", r.span)
                return False
        return True

    # ---- the diagram ---------------------------------------------------------------------
    def assign(self, a: ast.Assign) -> None:
        if a.target in self.defined_at:
            line = self.defined_at[a.target].line
            self.chk.error(f"{a.target!r} is already defined on line {line}", a.span)
            return
        op = None
        if isinstance(a.value, ast.Ref):
            self.chk.error(f"{a.target!r} = {a.value.name}: an assignment must compute "
                           "something (fuse, sum_j, linear or cat)", a.span)
            self.ref(a.value, False)  # still mark it as used
        else:
            op = self.expr(a.value, a.target, False)
        self.defined_at[a.target] = a.span
        self.later.pop(a.target, None)
        if op is not None:
            self.scope[a.target] = op

    def finish(self) -> None:
        decl, err = self.decl, self.chk.error
        out = self.scope.get(decl.out_name)
        if out is None and decl.out_name not in self.defined_at:
            err(f"output {decl.out_name!r} is never assigned", decl.out_span)
        for i, leg in enumerate(self.legs):
            if ("leg", i) not in self.used:
                err(f"input leg {leg.name!r} is never used", leg.span)
        for k, node in enumerate(self.nodes):
            if node.name != decl.out_name and ("node", k) not in self.used:
                err(f"result {node.name!r} is never used", self.defined_at.get(node.name,
                                                                               node.span))
        if any(getattr(n, "aggregate", False) for n in self.nodes):
            for node in self.nodes:
                if (getattr(node, "external", False) and not node.aggregate
                        and node.domain == "node"):
                    err(f"{node.name!r} has external weights but is computed per node in a "
                        "neighbourhood block, whose external weights are per edge", node.span,
                        "make its weights internal, or compute it inside sum_j")
        if out is not None and (out.index != len(self.nodes) - 1):
            err(f"output {decl.out_name!r} must be the last result computed", decl.out_span)


def _coupled_labels(tree: _Tree, e: ast.Fuse) -> set[Any] | None:
    """Every label the operands of ``e`` couple to, ignoring filters and the declared output.

    The set is folded operand by operand (``{a ⊗ b}`` then ``⊗ c`` …), so it costs a product
    of label counts, never the number of paths. ``None`` if an operand cannot be resolved.
    """
    labels: set[Any] | None = None
    for arg in e.args:
        irreps = _operand_irreps(tree, arg)
        if irreps is None:
            return None
        here = set(irreps.labels)
        labels = here if labels is None else {c for a in labels for b in here for c in a * b}
    return labels


def _operand_irreps(tree: _Tree, arg: Any) -> Irreps | None:
    """The irreps of one operand: a name in scope, or the node built for a nested expression."""
    if isinstance(arg, ast.Ref):
        op = tree.scope.get(arg.name)
        return tree.irreps_of(op) if op is not None else None
    span = arg.body.span if isinstance(arg, ast.SumJ) else arg.span
    node = next((n for n in reversed(tree.nodes) if n.span == span), None)
    return node.irreps if node is not None else None


def check_diagram(chk: Checker, decl: ast.DiagramDecl) -> Diagram | None:
    """Check one tree diagram; ``None`` (errors recorded on ``chk``) when it fails."""
    mark = chk.mark()
    tree = _Tree(chk, decl)
    tree.declare_legs()
    tree.out_irreps = chk.irreps(decl.out_irreps)
    if decl.out_name in tree.scope:
        chk.error(f"output {decl.out_name!r} has the name of an input leg", decl.out_span)
    if tree.out_irreps is None or chk.failed_since(mark):
        return None
    for a in decl.body:
        tree.assign(a)
    tree.finish()
    if chk.failed_since(mark):
        return None
    return Diagram(decl.name, chk.group, tuple(tree.legs), tuple(tree.nodes), decl.out_name,
                   tree.out_irreps, decl.span)


__all__ = ["FUNCTIONS", "MulIr", "check_diagram"]

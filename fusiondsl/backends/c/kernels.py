"""C kernel source for one fuse node and one role: the node's closed diagram cut at a leg.

The same contraction as the Triton kernels (:mod:`fusiondsl.backends.triton.kernels`), written
as plain C for the CPU. One function per role (``out`` is the forward pass, ``x1`` the
gradient with respect to the second operand, ``w`` the weight gradient); each loops over the
batch rows ``z`` in parallel (OpenMP). Per row, every operand entry the kernel reads is
copied into a local ``[component][channel]`` array, so that the loops over channels (the
e3nn mode letters ``u``, ``v``, ``w``) run over contiguous memory and gcc vectorises them;
the coupling tree is unrolled over its nonzero coefficients, one local array per message,
and the target's entries are accumulated locally and written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fusiondsl.backends.c.support import (
    CUnsupportedError,
    Ref,
    cname,
    index,
    signature,
    span,
    sum_line,
    update_line,
)
from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import Channels, NodeInfo, Tree, channels, tree
from fusiondsl.ir.paths import Path


@dataclass
class _Path:
    p: Path
    ch: Channels
    tree: Tree


# Batch rows per tile (internal weights are read once per tile): 4 measured 1.3-2.5x slower.
ROWS_PER_TILE = 1


class CKernelWriter:
    """Writes the C function of one node for one target role."""

    def __init__(self, node: NodeInfo, target: str) -> None:
        self.node, self.target = node, target
        self.loads = Emitter()
        self.em = Emitter()
        self.leaves: dict[tuple[str, int], str] = {}
        self.accs: dict[int, tuple[str, str]] = {}
        self.acc_prefix = "acc"
        self.prologue = Emitter()  # before the row loop: transposed weight copies
        self.prologue.depth = 1
        self.freed: list[str] = []
        self.subst: dict[str, list[Ref | None]] = {}
        self.tile = ROWS_PER_TILE if node.weighted and not node.external else 1

    @property
    def fn_name(self) -> str:
        """``o_out`` (forward of node ``o``), ``o_x1``, ``o_w``."""
        return f"{self.node.name}_{self.target}"

    @property
    def summed(self) -> bool:
        """Whether the kernel writes per-thread partial sums (internal weight gradient)."""
        return self.target == "w" and not self.node.external

    def describe(self) -> str:
        """The function's comment: which derivative of which node, and its result layout."""
        n, t = self.node, self.target
        what = {"out": "forward", "w": "weight gradient"}.get(t, f"gradient w.r.t. operand {t}")
        rows = "[num_threads, " if self.summed else "[Z, "
        return f"{n.name}: {what} ({len(n.paths)} paths); result {rows}{n.width(t)}]."

    # ---- the function --------------------------------------------------------------------
    def render(self) -> str:
        """The C function."""
        self.em.depth = self.loads.depth = 3 if self.summed else 2
        for p in self.node.paths:
            self.path(p)
        if self.target != "w":
            self.store()
        out = Emitter()
        inputs = [f"const real *restrict {cname(r)}" for r in self.node.roles
                  if r != self.target]
        out.line(f"/* {self.describe()} */")
        params = [*inputs, "real *restrict result", "int64_t Z", "int num_threads"]
        out.lines.extend(signature(self.fn_name, params))
        out.line("{")
        with out.indent():
            out.line(f"enum {{ R = {self.tile} }};  /* batch rows per tile */")
        out.lines.extend(self.prologue.lines)
        with out.indent():
            self.rows(out)
            for name in self.freed:
                out.line(f"free({name});")
        out.line("}")
        return out.source()

    def rows(self, out: Emitter) -> None:
        """The parallel loop over batch rows, around the row body."""
        if self.summed:
            out.line("#pragma omp parallel num_threads(num_threads)")
            out.line("{")
            with out.indent():
                out.line(f"real *restrict dw = result + (int64_t)omp_get_thread_num() * "
                         f"{self.node.weight_numel};")
                out.line("#pragma omp for schedule(static)")
                self.row_loop(out)
            out.line("}")
        else:
            out.line("#pragma omp parallel for num_threads(num_threads) schedule(static)")
            self.row_loop(out)

    def row_loop(self, out: Emitter) -> None:
        """``for z0``: a tile of rows: leaf copies, paths, the store of the target's rows."""
        out.line("for (int64_t z0 = 0; z0 < Z; z0 += R) {")
        with out.indent():
            out.line("const int nr = Z - z0 < R ? (int)(Z - z0) : R;  /* rows in this tile */")
            numel = self.node.weight_numel
            if self.node.external and self.target != "w":  # external weights: R is 1
                out.line(f"const real *weightz = weight + z0 * {numel};")
            if self.target == "w" and not self.summed:
                out.line(f"real *resultz = result + z0 * {numel};")
                out.line(f"memset(resultz, 0, {numel} * sizeof(real));")
        out.lines.extend(self.loads.lines)
        out.lines.extend(self.em.lines)
        out.line("}")

    # ---- leaves and loops ----------------------------------------------------------------
    def leaf(self, st: _Path, role: str, m: int) -> Ref:
        """Component ``m`` of a batch role's entry, copied once per row to ``[m][channel]``."""
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        layout = self.node.out if role == "out" else self.node.operands[int(role[1:])]
        name = f"{role}_{entry}"
        if (role, entry) not in self.leaves:
            self.leaves[role, entry] = name
            mul, dim = layout[entry].mul, layout[entry].ir.dim
            start = layout.slices[entry][0]
            em = self.loads
            em.line(f"real {name}[R][{dim}][{mul}];  /* {role} entry {entry}: {layout[entry]} */")
            em.line("for (int r = 0; r < R; ++r)")
            em.line(f"    for (int c = 0; c < {mul}; ++c)")
            em.line(f"        for (int m = 0; m < {dim}; ++m)")
            em.line(f"            {name}[r][m][c] = r < nr ? {cname(role)}[(z0 + r) * "
                    f"{layout.dim} + {start} + c * {dim} + m] : 0;")
        letters = st.ch.of(role)
        return Ref(f"{name}[r][{m}]", span(letters, st.ch.sizes), letters)

    @contextmanager
    def loops(self, letters: str, sizes: dict[str, int],
              em: Emitter | None = None) -> Iterator[None]:
        """Nested ``for`` loops over channel letters, outermost first."""
        em = em or self.em
        for x in letters:
            bound = "R" if x == "r" else sizes[x]
            em.line(f"for (int {x} = 0; {x} < {bound}; ++{x}) {{")
            em.depth += 1
        yield
        for _ in letters:
            em.depth -= 1
            em.line("}")

    @staticmethod
    def at(ref: Ref, sizes: dict[str, int]) -> str:
        """``array[index]`` of a reference at the current loop variables."""
        return f"{ref.array}[{index(ref.layout, sizes)}]"

    # ---- one path ------------------------------------------------------------------------
    def path(self, p: Path) -> None:
        """One path: its tree contracted toward the target leg, then weights and reduction."""
        st = _Path(p, channels(p), tree(self.node.group, p))
        self.em.line()
        shape = "×".join(map(str, p.muls)) + f" → {p.out_mul}"
        self.em.line(f"/* path {p.index}: {p.describe()} ({p.mode}, {shape}) */")
        self.em.line("{  /* a block: its arrays' stack space is reused by the next path */")
        with self.em.indent():
            if self.target == "w":
                self.weight_gradient(st)
            else:
                folded = self.fold(st)
                self.subst = {"out": folded} if folded else {}
                root = self.message(st, self.target, st.tree.leaf_vertex(self.target))
                self.finish(st, root, weighted=folded is None)
        self.em.line("}")

    def message(self, st: _Path, edge: str, vertex: int | None) -> list[Ref | None]:
        """Components of the value on ``edge`` contracted from the side of ``vertex``."""
        if vertex is None:
            if edge in self.subst:
                return self.subst[edge]
            return [self.leaf(st, edge, m) for m in range(st.tree.dims[edge])]
        (e1, e2), values = st.tree.toward(vertex, edge)
        a = self.message(st, e1, st.tree.across(e1, vertex))
        b = self.message(st, e2, st.tree.across(e2, vertex))
        sizes = st.ch.sizes
        letters = span({x for r in (*a, *b) if r for x in r.letters}, sizes)
        name = f"p{st.p.index}_{edge}"
        comps: list[tuple[int, list[tuple[float, list[str]]]]] = []
        pairs = [(i, j, ai, bj) for i, ai in enumerate(a) if ai for j, bj in enumerate(b) if bj]
        for c in range(st.tree.dims[edge]):
            terms = [(float(values[i, j, c]), [self.at(ai, sizes), self.at(bj, sizes)])
                     for i, j, ai, bj in pairs if abs(values[i, j, c]) > 1e-15]
            if terms:
                comps.append((c, terms))
        size = math.prod(sizes[x] for x in letters)
        self.em.line(f"real {name}[R][{st.tree.dims[edge]}][{size}];  "
                     f"/* {st.tree.labels[edge]} */")
        with self.loops("r" + letters, sizes):
            for c, terms in comps:
                sum_line(self.em, f"{name}[r][{c}][{index(letters, sizes)}]", terms)
        present = {c for c, _ in comps}
        return [Ref(f"{name}[r][{c}]", letters, letters) if c in present else None
                for c in range(st.tree.dims[edge])]

    # ---- the contraction with the weights ------------------------------------------------
    def inner_letter(self, st: _Path, target: str, letters: str, weighted: bool) -> str:
        """The innermost loop's letter.

        A target letter of the weights when they are internal (a vector multiply-add, on a
        transposed copy if need be), else the weights' fastest letter.
        """
        sizes = st.ch.sizes
        w_letters = span(st.ch.weight or "", sizes) if weighted else ""
        if w_letters and not self.node.external:
            shared = [x for x in st.ch.weight or "" if x in span(target, sizes)]
            if shared:
                return shared[-1]
        return (w_letters or span(target, sizes) or letters)[-1:]

    def weight_ref(self, st: _Path, inner: str) -> Ref:
        """This path's weight block, or its copy with ``inner`` as the fastest letter."""
        letters, sizes = st.ch.weight or "", st.ch.sizes
        base = "weightz" if self.node.external else "weight"
        ref = Ref(f"({base} + {st.p.weight_offset})", span(letters, sizes), letters)
        if self.node.external or not inner or inner not in ref.letters or ref.letters[-1] == inner:
            return ref
        layout = "".join(x for x in letters if x != inner) + inner
        name = f"w{st.p.index}_{layout}"
        size = math.prod(sizes[x] for x in letters)
        em = self.prologue
        em.line(f"real *{name} = malloc({size} * sizeof(real));  "
                f"/* path {st.p.index}'s weights as [{']['.join(layout)}] */")
        with self.loops(ref.letters, sizes, em):
            em.line(f"{name}[{index(layout, sizes)}] = {self.at(ref, sizes)};")
        self.freed.append(name)
        return Ref(name, ref.letters, layout)

    def contraction(self, st: _Path, updates: list[tuple[str, list[list[Ref]]]],
                    target: str, letters: str, inner: str, coef: str | None) -> None:
        """``dest += coef * Σ products`` per update, summing the letters the target lacks.

        The innermost loop runs over ``inner``: a target letter gives a vector multiply-add,
        a summed one a vector reduction.
        """
        sizes = st.ch.sizes
        outer = "".join(x for x in letters if x != inner)
        if all("[r]" in dest for dest, _ in updates):
            outer += "r"  # the tile's rows just outside the inner loop: weights reused
        else:  # a weight gradient: the tile's rows are summed, unrolled
            updates = [(dest, [[Ref(r.array.replace("[r]", f"[{i}]"), r.letters, r.layout)
                                for r in prod] for i in range(self.tile) for prod in prods])
                       for dest, prods in updates]
        with self.loops(outer, sizes):
            if not inner or inner in target:
                with self.loops(inner, sizes):
                    for dest, prods in updates:
                        # factors the inner loop does not change first: gcc hoists them
                        terms = [" * ".join(([coef] if coef else []) + [
                            self.at(r, sizes) for r in sorted(prod, key=lambda r: inner in
                                                              r.letters)
                        ]) for prod in prods]
                        update_line(self.em, dest, terms)
                return
            rows = [(dest, " + ".join(" * ".join(self.at(r, sizes) for r in prod)
                                      for prod in prods)) for dest, prods in updates]
            scale = f"{coef} * " if coef else ""
            if not outer:  # a block of its own, so the sums' names stay local
                self.em.line("{")
                self.em.depth += 1
            sums = [f"s{i}" for i in range(len(rows))]
            self.em.line(f"real {' = 0, '.join(sums)} = 0;")
            self.em.line(f"#pragma omp simd reduction(+:{', '.join(sums)})")
            with self.loops(inner, sizes):
                for s, (_, expr) in zip(sums, rows):
                    self.em.line(f"{s} += {expr};")
            for s, (dest, _) in zip(sums, rows):
                self.em.line(f"{dest} += {scale}{s};")
            if not outer:
                self.em.depth -= 1
                self.em.line("}")

    def fold(self, st: _Path) -> list[Ref | None] | None:
        """The result's cotangent times the weights, when that contracts a channel letter.

        For an operand's gradient in ``uvw`` mode, ``Σ_w W[u,v,w] out[w]`` first (a
        matrix-vector product per component) keeps the rest of the tree over ``u, v`` only,
        instead of an outer product over ``u, w``. ``None`` when nothing would be summed.
        """
        sizes = st.ch.sizes
        if st.ch.weight is None or "w" not in self.node.roles or self.target in ("out", "w"):
            return None
        others = {x for r in self.node.roles if r not in ("out", "w") for x in st.ch.of(r)}
        summed = span(set(st.ch.out) - others, sizes)
        if not summed:
            return None
        kept = span(set(st.ch.weight) - set(summed), sizes)
        letters = span(set(st.ch.weight) | set(st.ch.out), sizes)
        dim = st.tree.dims["out"]
        name = f"f{st.p.index}"
        self.em.line(f"real {name}[R][{dim}][{math.prod(sizes[x] for x in kept)}] = {{0}};  "
                     f"/* out ⊗ weights, summed over {summed} */")
        inner = self.inner_letter(st, kept, letters, True)
        w = self.weight_ref(st, inner)
        updates = [(f"{name}[r][{k}][{index(kept, sizes)}]", [[w, self.leaf(st, "out", k)]])
                   for k in range(dim)]
        self.contraction(st, updates, kept, letters, inner, None)
        return [Ref(f"{name}[r][{k}]", kept, kept) for k in range(dim)]

    def finish(self, st: _Path, root: list[Ref | None], weighted: bool) -> None:
        """Multiply by the weights (unless folded), sum the channels the target lacks."""
        present = [(m, r) for m, r in enumerate(root) if r]
        if not present:
            return
        target = st.ch.of(self.target)
        acc = self.accumulator(st, target)
        sizes = st.ch.sizes
        weighted = weighted and st.ch.weight is not None and "w" in self.node.roles
        w_letters = set(st.ch.weight or "") if weighted else set()
        letters = span({x for _, r in present for x in r.letters} | w_letters | set(target),
                       sizes)
        inner = self.inner_letter(st, target, letters, weighted)
        w = self.weight_ref(st, inner) if weighted else None
        updates = [(f"{acc}[r][{m}][{index(target, sizes)}]", [[r, w] if w else [r]])
                   for m, r in present]
        self.contraction(st, updates, target, letters, inner, f"K({st.p.coefficient!r})")

    def accumulator(self, st: _Path, letters: str) -> str:
        """The local ``acc_<entry>[component][channel]`` array this path adds into."""
        role = self.target
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        shape = "".join(f"{x}{st.ch.sizes[x]}" for x in letters)
        if entry in self.accs:
            if self.accs[entry][1] != shape:
                raise CUnsupportedError.construct(
                    f"paths into one entry with different channel shapes ({self.node.name})",
                    self.node.name)
        else:
            layout = self.node.out if role == "out" else self.node.operands[int(role[1:])]
            name = f"{self.acc_prefix}_{entry}"
            self.accs[entry] = (name, shape)
            self.loads.line(f"real {name}[R][{layout[entry].ir.dim}][{layout[entry].mul}] = {{0}};")
        return self.accs[entry][0]

    def store(self, result: str = "result") -> None:
        """Write the target's row: accumulated entries transposed back, other entries zero."""
        em = self.em
        layout = self.node.out if self.target == "out" else self.node.operands[int(self.target[1:])]
        em.line()
        em.line("/* write the result rows (entries no path reaches are zero) */")
        em.line("for (int r = 0; r < nr; ++r) {")
        with em.indent():
            em.line(f"real *resultz = {result} + (z0 + r) * {layout.dim};")
            for entry, mul_ir in enumerate(layout):
                start, dim, mul = layout.slices[entry][0], mul_ir.ir.dim, mul_ir.mul
                if entry not in self.accs:
                    em.line(f"memset(resultz + {start}, 0, {mul * dim} * sizeof(real));")
                    continue
                name = self.accs[entry][0]
                em.line(f"for (int c = 0; c < {mul}; ++c)")
                em.line(f"    for (int m = 0; m < {dim}; ++m)")
                em.line(f"        resultz[{start} + c * {dim} + m] = {name}[r][m][c];")
        em.line("}")

    def weight_gradient(self, st: _Path) -> None:
        """Close the diagram with the result's cotangent; sum what the weights lack."""
        root = self.message(st, "out", st.tree.leaf_vertex("out"))
        prods = [[r, self.leaf(st, "out", m)] for m, r in enumerate(root) if r]
        if not prods or st.ch.weight is None:
            return
        sizes = st.ch.sizes
        weight = st.ch.weight or ""
        letters = span({x for prod in prods for r in prod for x in r.letters} | set(weight),
                       sizes)
        base = "dw" if self.summed else "resultz"
        dest = f"{base}[{st.p.weight_offset} + {index(weight, sizes)}]"
        inner = (span(weight, sizes) or letters)[-1:]
        self.contraction(st, [(dest, prods)], weight, letters, inner,
                         f"K({st.p.coefficient!r})")

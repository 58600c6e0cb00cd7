"""C kernel source for one fuse node and one role: the node's closed diagram cut at a leg.

The same contraction as the Triton kernels (:mod:`fusiondsl.backends.triton.kernels`), written
as plain C for the CPU. One function per role (``out`` is the forward pass, ``x1`` the
gradient with respect to the second operand, ``w`` the weight gradient); each loops over the
batch rows ``z`` in parallel (OpenMP). Per row, every operand entry the kernel reads is
copied into a local ``[component][channel]`` array, so that the loops over channels (the
e3nn mode letters ``u``, ``v``, ``w``) run over contiguous memory and gcc vectorises them.
Each coupling vertex is a loop over its coefficient table (:mod:`fusiondsl.backends.c.tables`,
emitted once per file), one local array per message; the target's entries are accumulated
locally and written once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from fusiondsl.backends.c.support import (
    Msg,
    Ref,
    cname,
    index,
    signature,
    span,
)
from fusiondsl.backends.c.tables import FIELDS, CTables, stored
from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import Channels, NodeInfo, Tree, channels, tree
from fusiondsl.ir.paths import Path


@dataclass
class _Path:
    p: Path
    ch: Channels
    tree: Tree


# Batch rows per tile (internal weights are read once per tile): 4 measured 1.3-2.5x slower;
# 2 or 4 for the weight gradient alone, no faster (tenth session: fctp, conv, so3 within 5%).
ROWS_PER_TILE = 1
# The C file's header says how many loop nests over u, v and w its functions have, in these
# words (auto's first-build rule weighs them: nn/layers.c_too_slow_to_build).
DEEP_NESTS = "loop nests over u, v and w"
# Table loops are unrolled by gcc up to this many nonzeros (the table is constant data).
UNROLL = 128


class CKernelWriter:
    """Writes the C function of one node for one target role."""

    def __init__(self, node: NodeInfo, target: str, tables: CTables | None = None) -> None:
        self.node, self.target = node, target
        self.tables = tables or CTables()
        self.loads = Emitter()
        self.em = Emitter()
        self.leaves: dict[tuple[str, int], str] = {}
        self.accs: dict[int, str] = {}
        self.acc_prefix = "acc"
        self.prologue = Emitter()  # before the row loop: transposed weight copies
        self.prologue.depth = 1
        self.wt_size = 0  # reals in ``wt``, the transposed weight copies
        self.subst: dict[str, Msg] = {}
        self.tile = ROWS_PER_TILE if node.weighted and not node.external else 1
        self.deep_nests = 0  # loop nests over u, v and w: what gcc takes longest to build

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
        out.lines.extend(self.prologue_lines())
        with out.indent():
            self.rows(out)
            if self.wt_size:
                out.line("free(wt);")
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
            if self.tile == 1:
                out.line("const int r = 0;  /* the tile's one row */")
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
    def leaf(self, st: _Path, role: str) -> Msg:
        """A batch role's entry, copied once per row to ``[component][channel]``."""
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        layout = self.node.out if role == "out" else self.node.operands[int(role[1:])]
        name = f"{role}_{entry}"
        if (role, entry) not in self.leaves:
            self.leaves[role, entry] = name
            mul, dim = layout[entry].mul, layout[entry].ir.dim
            start = layout.slices[entry][0]
            em = self.loads
            em.line(f"real {name}[R][{dim}][{mul}];  /* {role} entry {entry}: {layout[entry]} */")
            em.line(f"LOAD_ENTRY({name}, {cname(role)}, {self.loaded(role)}, {layout.dim}, "
                    f"{start}, {mul}, {dim});")
        letters = st.ch.of(role)
        return Msg(name, span(letters, st.ch.sizes), letters, st.tree.dims[role])

    def loaded(self, role: str) -> str:
        """A C condition under which a role's rows are read (else zeros); here always."""
        return "1"

    @contextmanager
    def loops(self, letters: str, sizes: dict[str, int],
              em: Emitter | None = None) -> Iterator[None]:
        """Nested ``for`` loops over channel letters, outermost first."""
        em = em or self.em
        if self.tile == 1:
            letters = letters.replace("r", "")  # the row is `r = 0`
        if not letters:
            yield
            return
        self.count_nest(letters)
        em.line(" ".join(f"for (int {x} = 0; {x} < {'R' if x == 'r' else sizes[x]}; ++{x})"
                         for x in letters) + " {")
        em.depth += 1
        yield
        em.depth -= 1
        em.line("}")

    def count_nest(self, letters: str) -> None:
        """Count a loop nest over u, v and w at once (see :data:`DEEP_NESTS`)."""
        self.deep_nests += set("uvw") <= set(letters)

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
        self.em.line(f"{{  /* path {p.index}: {p.describe()} ({p.mode}, {shape}) */")
        with self.em.indent():
            if self.target == "w":
                self.weight_gradient(st)
            else:
                leg = self.forward_leg(st) if self.target == "out" else "out"
                folded = self.fold(st, leg) if leg else None
                self.subst = {leg: folded} if folded else {}
                root = self.message(st, self.target, st.tree.leaf_vertex(self.target))
                self.finish(st, root, weighted=folded is None)
        self.em.line("}")

    def message(self, st: _Path, edge: str, vertex: int | None) -> Msg:
        """The value on ``edge`` contracted from the side of ``vertex``: a loop over a table."""
        if vertex is None:
            return self.subst.get(edge) or self.leaf(st, edge)
        v = st.tree.vertices[vertex]
        j = v.edges.index(edge)
        (e1, e2), _ = st.tree.toward(vertex, edge)
        a = self.message(st, e1, st.tree.across(e1, vertex))
        b = self.message(st, e2, st.tree.across(e2, vertex))
        sizes = st.ch.sizes
        letters = span(set(a.letters) | set(b.letters), sizes)
        labels = [st.tree.labels[e] for e in v.edges]
        table, nnz = self.tables.table(v.coupling.values,
                                       f"{labels[0]} ⊗ {labels[1]} → {labels[2]}")
        fa, fb = (f for i, f in enumerate(FIELDS) if i != j)
        name = f"p{st.p.index}_{edge}"
        dim = st.tree.dims[edge]
        size = math.prod(sizes[x] for x in letters)
        em = self.em
        em.line(f"real {name}[R][{dim}][{size}];  /* {st.tree.labels[edge]}, from {table}: "
                f"{e1} ⊗ {e2} → {edge} */")
        with self.loops("r" + letters[:-1], sizes):
            if letters:  # channels outside, nonzeros inside: the sums stay in registers
                em.line("#pragma omp simd")
            with self.loops(letters[-1:], sizes):
                at = f"{name}[r][{{}}][{index(letters, sizes)}]"
                # unrolled here: gcc's own complete peeling stops at 4 trips (runtime.PEEL)
                unroll = f'_Pragma("GCC unroll {dim}") ' if dim > 1 else ""
                em.line(f"{unroll}for (int c = 0; c < {dim}; ++c) {at.format('c')} = 0;")
                em.line(f"#pragma GCC unroll {UNROLL}  /* gcc folds the indices and values */")
                em.line(f"for (int t = 0; t < {nnz}; ++t)")
                em.line(f"    {at.format(f'{table}[t].{FIELDS[j]}')} += {table}[t].v * "
                        f"{self.at(a.at(f'{table}[t].{fa}'), sizes)} * "
                        f"{self.at(b.at(f'{table}[t].{fb}'), sizes)};")
        return Msg(name, letters, letters, dim)

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
        layout = "".join(x for x in ref.letters if x != inner) + inner
        name = f"w{st.p.index}_{layout}"
        k = ref.letters.index(inner)
        before, after = (math.prod(sizes[x] for x in part)
                         for part in (ref.letters[:k], ref.letters[k + 1:]))
        self.prologue.line(f"real *{name} = wt + {self.wt_size};  move_inner({name}, {ref.array}, "
                           f"{before}, {sizes[inner]}, {after});  "
                           f"/* path {st.p.index}'s weights as [{']['.join(layout)}] */")
        self.wt_size += before * sizes[inner] * after
        return Ref(name, ref.letters, layout)

    def prologue_lines(self) -> list[str]:
        """Before the row loop: one buffer for the weight copies, then the copies."""
        if not self.wt_size:
            return self.prologue.lines
        head = Emitter()
        head.depth = 1
        # 64-byte aligned (whole cache lines, so a vector load never straddles two): with
        # malloc's 16 bytes, fctp's operand gradients ran 1.7x slower in some processes.
        head.line(f"real *wt = aligned_alloc(64, ({self.wt_size} * sizeof(real) + 63) / 64 * 64);"
                  "  /* weight blocks, copied with the inner loop's letter fastest */")
        return head.lines + self.prologue.lines

    def contraction(self, st: _Path, dest: str, prods: list[list[Ref]], target: str,
                    letters: str, inner: str, coef: str | None, dim: int) -> None:
        """``dest += coef * Σ products`` for components ``m < dim``; target-less letters summed.

        The innermost loop runs over ``inner``: a target letter gives a vector multiply-add,
        a summed one a vector reduction. Inside it, a loop over the components ``m`` that gcc
        unrolls (so a weight row is loaded once for all of them); a reduction into one sum
        per component has a line per component instead.
        """
        sizes = st.ch.sizes
        outer = "".join(x for x in letters if x != inner)
        if "[r]" in dest:
            outer += "r"  # the tile's rows just outside the inner loop: weights reused
        else:  # a weight gradient: the tile's rows are summed, unrolled
            prods = [[Ref(r.array.replace("[r]", f"[{i}]"), r.letters, r.layout) for r in prod]
                     for i in range(self.tile) for prod in prods]
        # factors the inner loop does not change first: gcc hoists them
        expr = " + ".join(" * ".join(self.at(r, sizes) for r in sorted(
            prod, key=lambda r: inner in r.letters)) for prod in prods)
        if len(prods) > 1:  # the scale multiplies the whole sum, not its first term
            expr = f"({expr})"
        reduction = bool(inner) and inner not in target
        components = 0 if dim == 1 else dim  # the bound of the loop over m (0: none)
        if not components:
            rows = [(dest.replace("[m]", "[0]"), expr.replace("[m]", "[0]"))]
        elif reduction and "[m]" in dest:  # one sum per component
            rows = [(dest.replace("[m]", f"[{k}]"), expr.replace("[m]", f"[{k}]"))
                    for k in range(dim)]
            components = 0
        else:
            rows = [(dest, expr)]
        self.update(rows, outer, inner if reduction else "", inner, sizes,
                    f"{coef} * " if coef else "", components)

    def update(self, rows: list[tuple[str, str]], outer: str, summed: str, inner: str,
               sizes: dict[str, int], scale: str, components: int) -> None:
        """The loops of :meth:`contraction`: ``dest += scale * term`` per row.

        ``summed`` is the inner letter when it is reduced (then one sum per row, added in
        after its loop); ``components`` the bound of an innermost loop over ``m``.
        """
        em = self.em
        if summed:
            self.reduce(rows, outer, inner, sizes, scale, components)
        elif components or not inner:
            with self.loops(outer + inner, sizes):
                for dest, term in rows:
                    self.component_loop(dest, scale + term, components)
        else:
            # Without a loop over m inside, gcc 12 vectorised the outer letter instead, as a
            # sum with shuffles per element: fctp's three 0e paths took 40% of its forward.
            self.count_nest(outer + inner)
            with self.loops(outer, sizes):
                for dest, term in rows:
                    em.line("#pragma omp simd")
                    em.line(f"for (int {inner} = 0; {inner} < {sizes[inner]}; ++{inner}) "
                            f"{dest} += {scale}{term};")

    def component_loop(self, dest: str, term: str, components: int) -> None:
        """``dest += term``, in a loop over ``m < components`` that gcc unrolls (if any)."""
        if components:
            self.em.line(f"#pragma GCC unroll {components}")
            self.em.line(f"for (int m = 0; m < {components}; ++m) {dest} += {term};")
        else:
            self.em.line(f"{dest} += {term};")

    def reduce(self, rows: list[tuple[str, str]], outer: str, inner: str,
               sizes: dict[str, int], scale: str, components: int) -> None:
        """:meth:`update` when the inner letter is summed: one sum per row, added in after."""
        em = self.em
        with self.loops(outer, sizes):
            if not outer:  # a block of its own, so the sums' names stay local
                em.line("{")
                em.depth += 1
            sums = [f"s{i}" for i in range(len(rows))]
            em.line(f"real {' = 0, '.join(sums)} = 0;")
            em.line(f"#pragma omp simd reduction(+:{', '.join(sums)})")
            with self.loops(inner, sizes):
                for sum_, (_, term) in zip(sums, rows):
                    self.component_loop(sum_, term, components)
            for sum_, (dest, _) in zip(sums, rows):
                em.line(f"{dest} += {scale}{sum_};")
            if not outer:
                em.depth -= 1
                em.line("}")

    def folded_letters(self, st: _Path, leg: str) -> tuple[str, str] | None:
        """``(summed, kept)`` letters of the weights contracted with ``leg`` first, or None.

        ``None`` when that would sum no letter (nothing gained).
        """
        sizes = st.ch.sizes
        if st.ch.weight is None or "w" not in self.node.roles or leg == self.target:
            return None
        others = {x for r in self.node.roles if r not in (leg, "w") for x in st.ch.of(r)}
        summed = span(set(st.ch.of(leg)) - others, sizes)
        if not summed:
            return None
        return summed, span((set(st.ch.weight) | set(st.ch.of(leg))) - set(summed), sizes)

    def fold(self, st: _Path, leg: str) -> Msg | None:
        """The weights times one leg (``out``'s cotangent, or an operand), or ``None``.

        Summed over the channel letters no other role has; ``None`` when none would be.

        For an operand's gradient in ``uvw`` mode, ``Σ_w W[u,v,w] out[w]`` first (a
        matrix-vector product per component) keeps the rest of the tree over ``u, v`` only,
        instead of an outer product over ``u, w``. The forward folds an operand when that is
        cheaper (:meth:`forward_leg`).
        """
        found = self.folded_letters(st, leg)
        if found is None:
            return None
        summed, kept = found
        sizes = st.ch.sizes
        letters = span(set(st.ch.weight or "") | set(st.ch.of(leg)), sizes)
        dim = st.tree.dims[leg]
        name = f"f{st.p.index}"
        self.em.line(f"real {name}[R][{dim}][{math.prod(sizes[x] for x in kept)}] = {{0}};  "
                     f"/* {leg} ⊗ weights, summed over {summed} */")
        inner = self.inner_letter(st, kept, letters, True)
        w = self.weight_ref(st, inner)
        dest = f"{name}[r][m][{index(kept, sizes)}]"
        self.contraction(st, dest, [[w, self.leaf(st, leg).at("m")]], kept, letters, inner,
                         None, dim)
        return Msg(name, kept, kept, dim)

    def size(self, st: _Path, *roles: str | set[str]) -> int:
        """How many channel combinations the letters of ``roles`` (or letter sets) span."""
        letters = set().union(*(st.ch.of(r) if isinstance(r, str) else r for r in roles))
        return math.prod(st.ch.sizes[x] for x in letters)

    def nonzeros(self, st: _Path) -> int:
        """The coupling's nonzeros (one vertex)."""
        return int(np.count_nonzero(stored(st.tree.vertices[0].coupling.values)))

    def forward_leg(self, st: _Path) -> str | None:
        """The operand the forward contracts with the weights first, or ``None`` (last).

        One coupling vertex, weights ``W[u,v,w]``: ``Σ_uv W (x0 ⊗ x1)`` costs u·v·w times the
        result's components, ``(Σ_u W x0) ⊗ x1`` u·v·w times x0's: ``1o ⊗ 1o → 2e`` does 3
        instead of 5 per weight; ``2e ⊗ 1o → 1o`` keeps the weights last (3 rather than 5).
        The fold is taken when it saves a quarter of the path's multiply-adds, by this count.
        """
        if len(st.tree.vertices) != 1 or st.ch.weight is None or "w" not in self.node.roles:
            return None
        nnz, dims = self.nonzeros(st), st.tree.dims
        x0, x1 = "x0", "x1"
        last = (self.size(st, x0, x1) * nnz
                + self.size(st, x0, x1, "w", "out") * dims["out"])
        best, leg = 0.75 * last, None
        for first, other in ((x0, x1), (x1, x0)):
            found = self.folded_letters(st, first)
            if found is None:
                continue
            kept = set(found[1])
            cost = (self.size(st, "w", first) * dims[first]
                    + self.size(st, kept, other) * nnz
                    + self.size(st, kept, other, "out") * dims["out"])
            if cost < best:
                best, leg = cost, first
        return leg

    def finish(self, st: _Path, root: Msg, weighted: bool) -> None:
        """Multiply by the weights (unless folded), sum the channels the target lacks."""
        target = st.ch.of(self.target)
        acc = self.accumulator(st)
        sizes = st.ch.sizes
        weighted = weighted and st.ch.weight is not None and "w" in self.node.roles
        w_letters = set(st.ch.weight or "") if weighted else set()
        letters = span(set(root.letters) | w_letters | set(target), sizes)
        inner = self.inner_letter(st, target, letters, weighted)
        prod = [root.at("m"), *([self.weight_ref(st, inner)] if weighted else [])]
        self.contraction(st, f"{acc}[r][m][{index(target, sizes)}]", [prod], target, letters,
                         inner, f"K({st.p.coefficient!r})", root.dim)

    def accumulator(self, st: _Path) -> str:
        """The local ``acc_<entry>[component][channel]`` array this path adds into.

        The array has the entry's full ``[dim][mul]`` shape whatever the path's mode, so
        paths of different modes into one entry (``uvw`` and ``uvu``) simply both add in.
        """
        role = self.target
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        if entry not in self.accs:
            layout = self.node.out if role == "out" else self.node.operands[int(role[1:])]
            name = f"{self.acc_prefix}_{entry}"
            self.accs[entry] = name
            self.loads.line(f"real {name}[R][{layout[entry].ir.dim}][{layout[entry].mul}] = {{0}};")
        return self.accs[entry]

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
                em.line(f"STORE_ENTRY(resultz + {start}, {self.accs[entry]}[r], {mul}, {dim});")
        em.line("}")

    def closing_leg(self, st: _Path) -> str:
        """The leg the weight gradient closes on: the result's cotangent, or an operand.

        An operand (one coupling vertex) when its fewer components save a quarter of the
        multiply-adds.
        """
        if len(st.tree.vertices) != 1:
            return "out"
        nnz, dims = self.nonzeros(st), st.tree.dims
        legs = ("x0", "x1", "out")

        def cost(leg: str) -> int:
            a, b = (r for r in legs if r != leg)
            return self.size(st, a, b) * nnz + self.size(st, a, b, leg, "w") * dims[leg]

        best = min(("x0", "x1"), key=cost)
        return best if cost(best) < 0.75 * cost("out") else "out"

    def weight_gradient(self, st: _Path) -> None:
        """Close the diagram with one leg (:meth:`closing_leg`); sum what the weights lack."""
        if st.ch.weight is None:
            return
        leg = self.closing_leg(st)
        root = self.message(st, leg, st.tree.leaf_vertex(leg))
        out = self.leaf(st, leg)
        sizes = st.ch.sizes
        weight = st.ch.weight or ""
        letters = span(set(root.letters) | set(out.letters) | set(weight), sizes)
        base = "dw" if self.summed else "resultz"
        dest = f"{base}[{st.p.weight_offset} + {index(weight, sizes)}]"
        inner = (span(weight, sizes) or letters)[-1:]
        self.contraction(st, dest, [[root.at("m"), out.at("m")]], weight, letters, inner,
                         f"K({st.p.coefficient!r})", root.dim)

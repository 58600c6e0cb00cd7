"""Triton kernel source for one fuse node and one role: the node's closed diagram cut at a leg.

A kernel for role ``out`` is the forward pass; for ``x1`` the gradient with respect to the
second operand (its inputs: the other operands, the cotangent of the result, the weights);
for ``w`` the weight gradient. All are the same tree of coupling vertices rooted at another
leg, unrolled over the coefficients' nonzeros: each product one multiply-add on a tile of
``[BLOCK_Z, u, v, w]`` channels. One program per block of batch rows (and per block of
the target's channels); ``uvw``-style channel mixing goes through ``tl.dot`` when the
tile shapes allow it on a GPU (every dimension ≥ 16), through broadcast-multiply-sum
otherwise.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import (
    AXES,
    Channels,
    NodeInfo,
    Tree,
    TritonUnsupportedError,
    channels,
    flat_index,
    next_pow2,
    term_text,
    tree,
)
from fusiondsl.ir.paths import Path

MAX_BLOCK_C = 32
DOT_MIN = 16  # tl.dot needs every dimension ≥ 16 on a GPU


@dataclass
class _Path:
    """Per-path state while writing one kernel."""

    p: Path
    ch: Channels
    tree: Tree
    blocked: str | None
    names: dict[str, str] = field(default_factory=dict)


def _axis_index(letter: str) -> str:
    return "[" + ", ".join(":" if AXES[letter] == i else "None" for i in range(4)) + "]"


class KernelWriter:
    """Writes the kernel of one node for one target role."""

    def __init__(self, node: NodeInfo, target: str) -> None:
        self.node, self.target = node, target
        self.em = Emitter()
        self.defined: set[str] = set()
        self.tiles: dict[tuple, str] = {}
        self.messages: dict[tuple, list[str | None]] = {}
        self.accs: dict[tuple[int, int], tuple[str, tuple, str, str]] = {}
        sizes = [self._blocked_size(p) for p in node.paths]
        top = max(sizes, default=0)
        self.block_c = min(next_pow2(top), MAX_BLOCK_C) if top else 1
        self.grid_c = -(-top // self.block_c) if top else 1

    @property
    def fn_name(self) -> str:
        """``o_out`` (forward of node ``o``), ``o_x1``, ``o_w``."""
        return f"{self.node.name}_{self.target}"

    def _blocked_size(self, p: Path) -> int:
        letters = channels(p).of(self.target)
        return channels(p).sizes[letters] if self.target != "w" and len(letters) == 1 else 0

    # ---- kernel text ---------------------------------------------------------------------
    def render(self) -> str:
        """The ``@triton.jit`` function."""
        body = Emitter()
        self.em = body
        with body.indent():
            self.prologue()
            for p in self.node.paths:
                self.path(p)
            self.store_accumulators()
        head = Emitter()
        inputs = [f"{r}_ptr" for r in self.node.roles if r != self.target]
        head.line("@triton.jit")
        head.line(f"def {self.fn_name}({', '.join(inputs)}, result_ptr, Z, ACC: tl.constexpr, "
                  "USE_DOT: tl.constexpr, BLOCK_Z: tl.constexpr, BLOCK_C: tl.constexpr):")
        with head.indent():
            head.line(f'"""{self.describe()}"""')
        return head.source() + body.source()

    def describe(self) -> str:
        """The kernel's docstring: which derivative of which node."""
        n, t = self.node, self.target
        what = {"out": "forward", "w": "weight gradient"}.get(t, f"gradient w.r.t. operand {t}")
        grid = f"grid (cdiv(Z, BLOCK_Z), {self.grid_c}), BLOCK_C = {self.block_c}"
        return f"{n.name}: {what} ({len(n.paths)} paths); {grid}."

    def prologue(self) -> None:
        """Program ids and the batch rows of this program."""
        em = self.em
        em.line("pid_z = tl.program_id(0)")
        em.line("pid_c = tl.program_id(1)")
        em.line("z = pid_z * BLOCK_Z + tl.arange(0, BLOCK_Z)[:, None, None, None]")
        em.line("zmask = z < Z")
        em.line("z = z.to(tl.int64)")

    # ---- channel ranges and leaves -------------------------------------------------------
    def letter_names(self, st: _Path) -> None:
        """Define (once per kernel) the channel ranges a path uses: ``u4``, ``w_b``."""
        used = {x for r in self.node.roles for x in st.ch.of(r)}
        for letter in sorted(used):
            if letter == st.blocked:
                name = f"{letter}_b"
                expr = f"pid_c * BLOCK_C + tl.arange(0, BLOCK_C){_axis_index(letter)}"
            else:
                size = next_pow2(st.ch.sizes[letter])
                name = f"{letter}{size}"
                expr = f"tl.arange(0, {size}){_axis_index(letter)}"
            self.define(name, expr)
            st.names[letter] = name

    def define(self, name: str, expr: str) -> None:
        """Emit ``name = expr`` unless this kernel already has it."""
        if name not in self.defined:
            self.defined.add(name)
            self.em.line(f"{name} = {expr}")

    def padded(self, st: _Path, letter: str) -> int:
        """Padded extent of a letter's axis in this path's tiles."""
        return self.block_c if letter == st.blocked else next_pow2(st.ch.sizes[letter])

    def masks(self, st: _Path, letters: str) -> list[str]:
        """Range checks for the letters whose axis is padded or blocked."""
        return [f"({st.names[x]} < {st.ch.sizes[x]})" for x in letters
                if x == st.blocked or next_pow2(st.ch.sizes[x]) != st.ch.sizes[x]]

    def address(self, st: _Path, role: str, m: int) -> tuple[str, str]:
        """Offset and mask of component ``m`` of a batch role's entry in this path."""
        p, letters = st.p, st.ch.of(role)
        layout = self.node.out if role == "out" else self.node.operands[int(role[1:])]
        entry = p.out_entry if role == "out" else p.inputs[int(role[1:])]
        dim = layout[entry].ir.dim
        offset = f"z * {layout.dim} + {layout.slices[entry][0] + m}"
        c = flat_index(letters, st.ch.sizes, st.names)
        if c:
            offset += f" + ({c})" + (f" * {dim}" if dim != 1 else "")
        return offset, " & ".join(["zmask", *self.masks(st, letters)])

    def leaf(self, st: _Path, role: str, m: int) -> str:
        """A loaded tile of one component of a batch role (loaded once per kernel)."""
        offset, mask = self.address(st, role, m)
        key = (role, offset, mask)
        if key not in self.tiles:
            entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
            base = f"{role}_{entry}_{m}"
            name = base if base not in self.defined else f"{base}_{len(self.tiles)}"
            self.tiles[key] = name
            self.define(name, f"tl.load({role}_ptr + {offset}, mask={mask}, other=0.0).to(ACC)")
        return self.tiles[key]

    # ---- one path ------------------------------------------------------------------------
    def path(self, p: Path) -> None:
        """One path: its tree contracted toward the target leg, then weights and reduction."""
        ch = channels(p)
        letters = ch.of(self.target)
        blocked = letters if self.target != "w" and len(letters) == 1 else None
        st = _Path(p, ch, tree(self.node.group, p), blocked)
        self.em.line()
        shape = "×".join(map(str, p.muls)) + f" → {p.out_mul}"
        self.em.comment(f"path {p.index}: {p.describe()} ({p.mode}, {shape})")
        self.letter_names(st)
        if self.target == "w":
            self.weight_gradient(st)
            return
        root = self.message(st, self.target, st.tree.leaf_vertex(self.target))
        self.finish(st, root)

    def subtree(self, st: _Path, edge: str, vertex: int | None) -> tuple:
        """What the value on ``edge`` from ``vertex``'s side depends on (a memo key)."""
        if vertex is None:
            entry = st.p.out_entry if edge == "out" else st.p.inputs[int(edge[1:])]
            return (edge, entry)
        (e1, e2), _ = st.tree.toward(vertex, edge)
        return (edge, st.tree.labels[edge],
                self.subtree(st, e1, st.tree.across(e1, vertex)),
                self.subtree(st, e2, st.tree.across(e2, vertex)))

    def message(self, st: _Path, edge: str, vertex: int | None) -> list[str | None]:
        """Components of the value on ``edge`` contracted from the side of ``vertex``.

        Paths that share a subtree (the same entries and labels, as the first couplings of
        an n-ary fusion often do) share its value: it is computed once per kernel.
        """
        if vertex is None:
            return [self.leaf(st, edge, m) for m in range(st.tree.dims[edge])]
        key = (self.subtree(st, edge, vertex), tuple(sorted(st.names.items())))
        if key not in self.messages:
            self.messages[key] = self.contract_vertex(st, edge, vertex)
        return self.messages[key]

    def contract_vertex(self, st: _Path, edge: str, vertex: int) -> list[str | None]:
        """Emit the value on ``edge``: one multiply-add per nonzero coefficient of ``vertex``."""
        (e1, e2), values = st.tree.toward(vertex, edge)
        a = self.message(st, e1, st.tree.across(e1, vertex))
        b = self.message(st, e2, st.tree.across(e2, vertex))
        out: list[str | None] = []
        for c in range(st.tree.dims[edge]):
            terms = [(float(values[i, j, c]), [a[i], b[j]])
                     for i in range(len(a)) for j in range(len(b))
                     if abs(values[i, j, c]) > 1e-15 and a[i] and b[j]]
            out.append(self.sum_line(f"p{st.p.index}_{edge}_{c}", terms) if terms else None)
        return out

    def sum_line(self, name: str, terms: list[tuple[float, list]]) -> str:
        """Emit ``name = c1 * a * b + c2 * …`` (one term per line when there are several)."""
        texts = [term_text(v, f, i == 0) for i, (v, f) in enumerate(terms)]
        if len(texts) == 1:
            self.em.line(f"{name} = {texts[0]}")
            return name
        self.em.line(f"{name} = (")
        with self.em.indent():
            for t in texts:
                self.em.line(t)
        self.em.line(")")
        return name

    def weight_tile(self, st: _Path) -> str:
        """Load this path's weight block as a broadcastable tile (``[1 or BLOCK_Z, u, v, w]``)."""
        letters = st.ch.weight or ""
        offset = f"{st.p.weight_offset}"
        c = flat_index(letters, st.ch.sizes, st.names)
        offset += f" + {c}" if c else ""
        masks = self.masks(st, letters)
        if self.node.external:
            offset = f"z * {self.node.weight_numel} + {offset}"
            masks = ["zmask", *masks]
        mask = f", mask={' & '.join(masks)}, other=0.0" if masks else ""
        name = f"wt{st.p.index}"
        self.em.line(f"{name} = tl.load(w_ptr + {offset}{mask}).to(ACC)")
        return name

    def reduce(self, expr: str, axes: list[int]) -> str:
        """Nested ``tl.sum`` over axes (kept as size 1, so tiles stay 4-d)."""
        for axis in sorted(axes, reverse=True):
            expr = f"tl.sum({expr}, axis={axis}, keep_dims=True)"
        return expr

    # ---- target: an operand or the result ------------------------------------------------
    def finish(self, st: _Path, root: list[str | None]) -> None:
        """Multiply by the weights, sum the channels the target lacks, accumulate."""
        present = [(m, r) for m, r in enumerate(root) if r]
        if not present:
            return
        roles = [r for r in self.node.roles if r not in (self.target, "w")]
        leaf_letters = {x for r in roles for x in st.ch.of(r)}
        weight = st.ch.weight if "w" in self.node.roles else None
        target = st.ch.of(self.target)
        axes = [AXES[x] for x in (leaf_letters | set(weight or "")) - set(target)]
        coef = repr(st.p.coefficient)
        firsts = [self.register(st, m) for m, _ in present]
        dot = self.dot_shape(st, leaf_letters, weight, target)
        if dot is not None:
            self.em.line("if USE_DOT:")
            with self.em.indent():
                w2 = self.weight_matrix(st, dot[0], target)
                for (m, r), first in zip(present, firsts):
                    prod = (f"tl.dot(tl.reshape({r}, (BLOCK_Z, {dot[1]})), {w2}, "
                            f'input_precision="ieee")')
                    self.accumulate(st, m, first, f"{coef} * tl.reshape({prod}, {dot[2]})")
            self.em.line("else:")
        with self.em.indent() if dot is not None else contextlib.nullcontext():
            w = self.weight_tile(st) if weight is not None else None
            for (m, r), first in zip(present, firsts):
                expr = f"{r} * {w}" if w else r
                self.accumulate(st, m, first, f"{coef} * {self.reduce(expr, axes)}")

    def dot_shape(self, st: _Path, leaves: set[str], weight: str | None,
                  target: str) -> tuple[str, int, str] | None:
        """``(letters summed, their padded size, result shape)`` when ``tl.dot`` applies."""
        if weight is None or self.node.external or len(target) != 1 or target not in weight:
            return None
        summed = "".join(sorted(set(weight) - {target}, key=AXES.get))
        if not summed or set(summed) != leaves:
            return None
        k = math.prod(self.padded(st, x) for x in summed)
        n = self.padded(st, target)
        if k < DOT_MIN or n < DOT_MIN:
            return None
        dims = ["BLOCK_Z"] + ["1"] * 3
        dims[AXES[target]] = "BLOCK_C" if target == st.blocked else str(n)
        return summed, k, f"({', '.join(dims)})"

    def weight_matrix(self, st: _Path, summed: str, target: str) -> str:
        """The weight block as a ``[summed channels, target channels]`` matrix for tl.dot."""
        weight, sizes, idx = st.ch.weight or "", st.ch.sizes, st.p.index
        k = math.prod(self.padded(st, x) for x in summed)
        self.em.line(f"r{idx} = tl.arange(0, {k})[:, None]")
        cols = ("pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]" if target == st.blocked
                else f"tl.arange(0, {self.padded(st, target)})[None, :]")
        self.em.line(f"c{idx} = {cols}")
        index, masks = {target: f"c{idx}"}, []
        for i, x in enumerate(summed):
            inner = math.prod(self.padded(st, y) for y in summed[i + 1 :])
            index[x] = f"(r{idx} // {inner} % {self.padded(st, x)})"
        for x in weight:
            if self.padded(st, x) != sizes[x] or x == st.blocked:
                masks.append(f"({index[x]} < {sizes[x]})")
        offset = f"{st.p.weight_offset} + {flat_index(weight, sizes, index)}"
        mask = f", mask={' & '.join(masks)}, other=0.0" if masks else ""
        self.em.line(f"wt{idx}_2d = tl.load(w_ptr + {offset}{mask}).to(ACC)")
        return f"wt{idx}_2d"

    def register(self, st: _Path, m: int) -> bool:
        """Note that this path adds into component ``m`` of its target entry; first time?"""
        role = self.target
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        letters = st.ch.of(role)
        shape = (letters, tuple(self.padded(st, x) for x in letters))
        offset, mask = self.address(st, role, m)
        if (entry, m) in self.accs:
            if self.accs[entry, m][1] != shape:
                raise TritonUnsupportedError.construct(
                    f"paths into one entry with different channel shapes ({self.node.name})",
                    self.node.name)
            return False
        self.accs[entry, m] = (f"acc_{entry}_{m}", shape, offset, mask)
        return True

    def accumulate(self, st: _Path, m: int, first: bool, expr: str) -> None:
        """``acc = expr`` (first path into it) or ``acc = acc + expr``."""
        role = self.target
        entry = st.p.out_entry if role == "out" else st.p.inputs[int(role[1:])]
        name = self.accs[entry, m][0]
        self.em.line(f"{name} = {expr}" if first else f"{name} = {name} + {expr}")

    def store_accumulators(self) -> None:
        """Write every accumulated component of the target once."""
        if self.accs:
            self.em.line()
            self.em.comment("write the result (entries no path reaches stay zero)")
        for name, _, offset, mask in self.accs.values():
            self.em.line(f"tl.store(result_ptr + {offset}, {name}, mask={mask})")

    # ---- target: the weights -------------------------------------------------------------
    def weight_gradient(self, st: _Path) -> None:
        """Close the diagram with the result's cotangent; sum what the weights lack."""
        root = self.message(st, "out", st.tree.leaf_vertex("out"))
        terms = [(1.0, [r, self.leaf(st, "out", m)]) for m, r in enumerate(root) if r]
        if not terms:
            return
        closed = self.sum_line(f"p{st.p.index}_closed", terms)
        weight = st.ch.weight or ""
        batch = {x for r in self.node.roles if r != "w" for x in st.ch.of(r)}
        axes = [AXES[x] for x in batch - set(weight)]
        c = flat_index(weight, st.ch.sizes, st.names)
        offset = f"{st.p.weight_offset}" + (f" + {c}" if c else "")
        masks = self.masks(st, weight)
        if self.node.external:
            row, masks = f"z * {self.node.weight_numel}", ["zmask", *masks]
        else:
            axes.append(0)
            self.define("origin", "tl.zeros((1, 1, 1, 1), dtype=tl.int64)")
            row = f"origin + pid_z * {self.node.weight_numel}"
        value = f"{st.p.coefficient!r} * {self.reduce(closed, axes)}"
        mask = f", mask={' & '.join(masks)}" if masks else ""
        self.em.line(f"tl.store(result_ptr + {row} + {offset}, {value}{mask})")


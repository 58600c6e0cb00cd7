"""Triton kernel source for one fuse node and one role: the node's closed diagram cut at a leg.

A kernel for role ``out`` is the forward pass; for ``x1`` the gradient with respect to the
second operand (its inputs: the other operands, the cotangent of the result, the weights);
for ``w`` the weight gradient. The kernels are *table-driven*: the node's paths are grouped
into classes of equal channel shapes (mode letters and multiplicities), and each class is one
runtime loop over its rows of the path table (:mod:`fusiondsl.backends.triton.tables`). Per
path and target component ``k``, a runtime loop over that component's coefficient entries
accumulates ``coef * leaf * leaf …`` on a ``[BLOCK_Z, u, v, w]`` tile in registers; then the
weights mix the channels (``tl.dot`` when the shapes allow it on a GPU, every dimension
≥ 16; broadcast-multiply-sum otherwise), and the tile is added into the target once. So
kernel source and JIT work grow with the number of classes, not with paths or nonzeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import (
    AXES,
    Channels,
    NodeInfo,
    channels,
    flat_index,
    next_pow2,
)
from fusiondsl.ir.paths import Path

MAX_BLOCK_C = 32
DOT_MIN = 16  # tl.dot needs every dimension ≥ 16 on a GPU


@dataclass(frozen=True)
class PathClass:
    """Paths of one node with equal channel letters and sizes: rows ``start:stop`` of its table."""

    ch: Channels
    paths: tuple[Path, ...]
    start: int

    @property
    def stop(self) -> int:
        """One past the class's last row in the path table."""
        return self.start + len(self.paths)

    def describe(self) -> str:
        """``uvw, u=4 v=1 w=4: rows 0-2 (paths 0, 1, 2)``."""
        p = self.paths[0]
        used = sorted({x for x in (*self.ch.operands, self.ch.out, self.ch.weight or "")
                       for x in x})
        sizes = " ".join(f"{x}={self.ch.sizes[x]}" for x in used) or "1 channel"
        ids = ", ".join(str(q.index) for q in self.paths)
        return f"{p.mode}, {sizes}: rows {self.start}-{self.stop - 1} (paths {ids})"


def _class_key(ch: Channels) -> tuple:
    used = {x for x in (*ch.operands, ch.out, ch.weight or "") for x in x}
    return (ch.operands, ch.out, ch.weight, tuple(sorted((x, ch.sizes[x]) for x in used)))


def path_classes(node: NodeInfo) -> list[PathClass]:
    """The node's paths grouped by channel shape (first appearance order); rows in that order."""
    groups: dict[tuple, list[Path]] = {}
    shapes: dict[tuple, Channels] = {}
    for p in node.paths:
        ch = channels(p)
        groups.setdefault(_class_key(ch), []).append(p)
        shapes.setdefault(_class_key(ch), ch)
    classes, start = [], 0
    for key, paths in groups.items():
        classes.append(PathClass(shapes[key], tuple(paths), start))
        start += len(paths)
    return classes


def _axis_index(letter: str) -> str:
    return "[" + ", ".join(":" if AXES[letter] == i else "None" for i in range(4)) + "]"


class KernelWriter:
    """Writes the kernel of one node for one target role."""

    def __init__(self, node: NodeInfo, target: str) -> None:
        self.node, self.target = node, target
        self.em = Emitter()
        self.defined: set[str] = set()
        self.classes = path_classes(node)
        self.batch = [r for r in node.roles if r != "w"]
        self.others = [r for r in self.batch if r != target]
        top = max((self._blocked_size(c.ch) for c in self.classes), default=0)
        self.block_c = min(next_pow2(top), MAX_BLOCK_C) if top else 1
        self.grid_c = -(-top // self.block_c) if top else 1

    @property
    def fn_name(self) -> str:
        """``o_out`` (forward of node ``o``), ``o_x1``, ``o_w``."""
        return f"{self.node.name}_{self.target}"

    def blocked(self, ch: Channels) -> str | None:
        """The target's channel letter, blocked by ``BLOCK_C`` (``None`` when not blocked)."""
        letters = ch.of(self.target)
        return letters if self.target != "w" and len(letters) == 1 else None

    def _blocked_size(self, ch: Channels) -> int:
        letter = self.blocked(ch)
        return ch.sizes[letter] if letter else 0

    # ---- kernel text ---------------------------------------------------------------------
    def render(self) -> str:
        """The ``@triton.jit`` function."""
        em = self.em = Emitter()
        inputs = [f"{r}_ptr" for r in self.node.roles if r != self.target]
        em.line("@triton.jit")
        em.line(f"def {self.fn_name}({', '.join(inputs)}, result_ptr, tab_ptr, idx_ptr, coef_ptr,")
        em.line("        Z, ACC: tl.constexpr, USE_DOT: tl.constexpr, BLOCK_Z: tl.constexpr,")
        em.line("        BLOCK_C: tl.constexpr, BLOCK_E: tl.constexpr):")
        with em.indent():
            em.line(f'"""{self.describe()}"""')
            self.prologue()
            for c in self.classes:
                self.path_class(c)
        return em.source()

    def describe(self) -> str:
        """The kernel's docstring: which derivative of which node."""
        n, t = self.node, self.target
        what = {"out": "forward", "w": "weight gradient"}.get(t, f"gradient w.r.t. operand {t}")
        grid = f"grid (cdiv(Z, BLOCK_Z), {self.grid_c}), BLOCK_C = {self.block_c}"
        classes = f"{len(self.classes)} class" + ("es" if len(self.classes) > 1 else "")
        return f"{n.name}: {what} ({len(n.paths)} paths, {classes}); {grid}."

    def prologue(self) -> None:
        """Program ids and the batch rows of this program."""
        em = self.em
        em.line("pid_z = tl.program_id(0)")
        em.line("pid_c = tl.program_id(1)")
        em.line("z = pid_z * BLOCK_Z + tl.arange(0, BLOCK_Z)[:, None, None, None]")
        em.line("zmask = z < Z")
        em.line("z = z.to(tl.int64)")
        if self.target == "w" and not self.node.external:
            em.line("origin = tl.zeros((1, 1, 1, 1), dtype=tl.int64)")

    def define(self, name: str, expr: str) -> None:
        """Emit ``name = expr`` unless this kernel already has it."""
        if name not in self.defined:
            self.defined.add(name)
            self.em.line(f"{name} = {expr}")

    # ---- one class of paths --------------------------------------------------------------
    def path_class(self, c: PathClass) -> None:
        """A runtime loop over the class's rows of the path table."""
        if self.target == "w" and c.ch.weight is None:
            return
        em = self.em
        em.line()
        em.comment(f"class {self.classes.index(c)}: {c.describe()}")
        names = self.letter_names(c)
        em.line(f"for q in range({c.start}, {self.bound(c)}):")
        with em.indent():
            self.row(c)
            if self.target == "w":
                self.weight_gradient(c, names)
            else:
                self.into_target(c, names)

    def bound(self, c: PathClass) -> str:
        """The loop's end: programs along the channel axis beyond the class's target skip it."""
        if self.grid_c == 1:
            return str(c.stop)
        letter = self.blocked(c.ch)
        cond = f"pid_c * BLOCK_C < {c.ch.sizes[letter]}" if letter else "pid_c == 0"
        self.em.line(f"stop = tl.where({cond}, {c.stop}, {c.start})")
        return "stop"

    def letter_names(self, c: PathClass) -> dict[str, str]:
        """Define (once per kernel) the channel ranges a class uses: ``u4``, ``w_b``."""
        names, blocked = {}, self.blocked(c.ch)
        used = {x for r in self.node.roles for x in c.ch.of(r)}
        for letter in sorted(used):
            if letter == blocked:
                name = f"{letter}_b"
                expr = f"pid_c * BLOCK_C + tl.arange(0, BLOCK_C){_axis_index(letter)}"
            else:
                size = next_pow2(c.ch.sizes[letter])
                name, expr = f"{letter}{size}", f"tl.arange(0, {size}){_axis_index(letter)}"
            self.define(name, expr)
            names[letter] = name
        return names

    def row(self, c: PathClass) -> None:
        """Read the path's descriptor: entry offsets and dimensions, weights, entry starts."""
        em, width = self.em, 2 * len(self.batch) + 3
        em.line(f"row = tab_ptr + q * {width}")
        for i, r in enumerate(self.batch):
            em.line(f"{r}_at = tl.load(row + {2 * i})")
            em.line(f"{r}_dim = tl.load(row + {2 * i + 1})")
        if "w" in self.node.roles and c.ch.weight is not None:
            em.line(f"w_at = tl.load(row + {width - 3})")
        em.line(f"first = tl.load(row + {width - 2})")

    def padded(self, c: PathClass, letter: str) -> int:
        """Padded extent of a letter's axis in this class's tiles."""
        return self.block_c if letter == self.blocked(c.ch) else next_pow2(c.ch.sizes[letter])

    def masks(self, c: PathClass, names: dict[str, str], letters: str) -> list[str]:
        """Range checks for the letters whose axis is padded or blocked."""
        return [f"({names[x]} < {c.ch.sizes[x]})" for x in letters
                if x == self.blocked(c.ch) or next_pow2(c.ch.sizes[x]) != c.ch.sizes[x]]

    def address(self, c: PathClass, names: dict[str, str], role: str,
                m: str) -> tuple[str, str]:
        """Offset and mask of component ``m`` (an expression) of a batch role's entry."""
        letters = c.ch.of(role)
        offset = f"z * {self.node.width(role)} + {role}_at + {m}"
        flat = flat_index(letters, c.ch.sizes, names)
        if flat:
            offset += f" + ({flat}) * {role}_dim"
        return offset, " & ".join(["zmask", *self.masks(c, names, letters)])

    def tile_shape(self, c: PathClass, roles: list[str]) -> str:
        """The broadcast shape of the product of the leaves of ``roles``."""
        dims = ["BLOCK_Z", "1", "1", "1"]
        for x in {x for r in roles for x in c.ch.of(r)}:
            dims[AXES[x]] = "BLOCK_C" if x == self.blocked(c.ch) else str(self.padded(c, x))
        return f"({', '.join(dims)})"

    def products(self, c: PathClass, names: dict[str, str], roles: list[str], k: str) -> None:
        """``t = Σ_e coef[e] · Π_r leaf_r[idx[e, r]]`` over the entries of component ``k``."""
        em = self.em
        em.line(f"lo = tl.load(tab_ptr + first + {k})")
        em.line(f"hi = tl.load(tab_ptr + first + {k} + 1)")
        em.line(f"t = tl.zeros({self.tile_shape(c, roles)}, dtype=ACC)")
        em.line("for e0 in range(lo, hi, BLOCK_E):")
        with em.indent():
            em.comment("BLOCK_E entries at once, on a leading axis summed away")
            em.line("e = e0 + tl.arange(0, BLOCK_E)[:, None, None, None, None]")
            em.line("emask = e < hi")
            em.line(f"ent = idx_ptr + e * {len(roles)}")
            factors = []
            for i, r in enumerate(roles):
                m = f"tl.load(ent + {i}, mask=emask, other=0)"
                offset, mask = self.address(c, names, r, m)
                em.line(f"{r} = tl.load({r}_ptr + {offset},")
                em.line(f"            mask=emask & {mask}, other=0.0).to(ACC)")
                factors.append(r)
            em.line("coef = tl.load(coef_ptr + e, mask=emask, other=0.0)")
            em.line(f"t += tl.sum(coef * {' * '.join(factors)}, axis=0)")

    @staticmethod
    def reduce(expr: str, axes: list[int]) -> str:
        """Nested ``tl.sum`` over axes (kept as size 1, so tiles stay 4-d)."""
        for axis in sorted(axes, reverse=True):
            expr = f"tl.sum({expr}, axis={axis}, keep_dims=True)"
        return expr

    # ---- target: an operand or the result ------------------------------------------------
    def into_target(self, c: PathClass, names: dict[str, str]) -> None:
        """Per target component: entries, weights, channel sums; add into the target once."""
        em, target = self.em, self.target
        weight = c.ch.weight if "w" in self.node.roles else None
        leaves = {x for r in self.others for x in c.ch.of(r)}
        axes = [AXES[x] for x in (leaves | set(weight or "")) - set(c.ch.of(target))]
        dot = self.dot_shape(c, leaves, weight)
        wt = None
        if dot is not None:
            em.line("if USE_DOT:")
            with em.indent():
                w2 = self.weight_matrix(c, names, dot[0])
            em.line("else:")
            with em.indent():
                wt = self.weight_tile(c, names)
        elif weight is not None:
            wt = self.weight_tile(c, names)
        em.line(f"for k in range(0, {target}_dim):")
        with em.indent():
            self.products(c, names, self.others, "k")
            expr = self.reduce(f"t * {wt}" if wt else "t", axes)
            if dot is not None:
                em.line("if USE_DOT:")
                with em.indent():
                    em.line(f"s = tl.dot(tl.reshape(t, (BLOCK_Z, {dot[1]})), {w2}, "
                            'input_precision="ieee")')
                    em.line(f"s = tl.reshape(s, {dot[2]})")
                em.line("else:")
                with em.indent():
                    em.line(f"s = {expr}")
            else:
                em.line(f"s = {expr}")
            offset, mask = self.address(c, names, target, "k")
            em.line(f"dst = result_ptr + {offset}")
            em.line(f"tl.store(dst, tl.load(dst, mask={mask}, other=0.0) + s, mask={mask})")
        em.comment("the next path may add into the same entry: its loads follow these stores")
        em.line("tl.debug_barrier()")

    def dot_shape(self, c: PathClass, leaves: set[str],
                  weight: str | None) -> tuple[str, int, str] | None:
        """``(letters summed, their padded size, result shape)`` when ``tl.dot`` applies."""
        target = c.ch.of(self.target)
        if weight is None or self.node.external or len(target) != 1 or target not in weight:
            return None
        summed = "".join(sorted(set(weight) - {target}, key=AXES.get))
        if not summed or set(summed) != leaves:
            return None
        k = math.prod(self.padded(c, x) for x in summed)
        n = self.padded(c, target)
        if k < DOT_MIN or n < DOT_MIN:
            return None
        dims = ["BLOCK_Z"] + ["1"] * 3
        dims[AXES[target]] = "BLOCK_C" if target == self.blocked(c.ch) else str(n)
        return summed, k, f"({', '.join(dims)})"

    def weight_tile(self, c: PathClass, names: dict[str, str]) -> str:
        """Load the path's weight block as a broadcastable tile (``[1 or BLOCK_Z, u, v, w]``)."""
        letters = c.ch.weight or ""
        offset = "w_at"
        flat = flat_index(letters, c.ch.sizes, names)
        offset += f" + {flat}" if flat else ""
        masks = self.masks(c, names, letters)
        if self.node.external:
            offset = f"z * {self.node.weight_numel} + {offset}"
            masks = ["zmask", *masks]
        mask = f", mask={' & '.join(masks)}, other=0.0" if masks else ""
        self.em.line(f"wt = tl.load(w_ptr + {offset}{mask}).to(ACC)")
        return "wt"

    def weight_matrix(self, c: PathClass, names: dict[str, str], summed: str) -> str:
        """The weight block as a ``[summed channels, target channels]`` matrix for tl.dot."""
        weight, sizes, target = c.ch.weight or "", c.ch.sizes, c.ch.of(self.target)
        blocked = self.blocked(c.ch)
        k = math.prod(self.padded(c, x) for x in summed)
        self.em.line(f"wr = tl.arange(0, {k})[:, None]")
        cols = ("pid_c * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]" if target == blocked
                else f"tl.arange(0, {self.padded(c, target)})[None, :]")
        self.em.line(f"wc = {cols}")
        index, masks = {target: "wc"}, []
        for i, x in enumerate(summed):
            inner = math.prod(self.padded(c, y) for y in summed[i + 1 :])
            index[x] = f"(wr // {inner} % {self.padded(c, x)})"
        for x in weight:
            if self.padded(c, x) != sizes[x] or x == blocked:
                masks.append(f"({index[x]} < {sizes[x]})")
        offset = f"w_at + {flat_index(weight, sizes, index)}"
        mask = f", mask={' & '.join(masks)}, other=0.0" if masks else ""
        self.em.line(f"w2 = tl.load(w_ptr + {offset}{mask}).to(ACC)")
        return "w2"

    # ---- target: the weights -------------------------------------------------------------
    def weight_gradient(self, c: PathClass, names: dict[str, str]) -> None:
        """Close the diagram with the result's cotangent; sum what the weights lack."""
        weight = c.ch.weight or ""
        self.products(c, names, self.batch, "0")
        letters = {x for r in self.batch for x in c.ch.of(r)}
        axes = [AXES[x] for x in letters - set(weight)]
        flat = flat_index(weight, c.ch.sizes, names)
        offset = "w_at" + (f" + {flat}" if flat else "")
        masks = self.masks(c, names, weight)
        if self.node.external:
            rows, masks = f"z * {self.node.weight_numel}", ["zmask", *masks]
        else:
            axes.append(0)
            rows = f"origin + pid_z * {self.node.weight_numel}"
        mask = f", mask={' & '.join(masks)}" if masks else ""
        self.em.line(f"tl.store(result_ptr + {rows} + {offset}, {self.reduce('t', axes)}{mask})")

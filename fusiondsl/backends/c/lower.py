"""C lowering: a tree diagram becomes generated C kernels wrapped in a torch module (CPU).

Each fuse node gets one C function per *role* of its closed diagram (``out``, ``x0``…,
``w``), written by :mod:`fusiondsl.backends.c.kernels`, as the Triton backend has one
``@triton.jit`` kernel per role. :func:`lower_c_source` renders the C file;
:func:`lower_c` a Python module that holds that source as ``C_SOURCE``, compiles it on import
(:func:`fusiondsl.backends.c.runtime.load_library`, cached on disk) and chains the nodes through
:func:`fusiondsl.backends.c.runtime.fuse`, whose autograd backward is again built from the same
kernels. Weights have the einsum layer's name and layout. See ``docs/cbackend.md``.
"""

from __future__ import annotations

import numpy as np

from fusiondsl.backends.c.joint import JointGradientWriter, has_joint
from fusiondsl.backends.c.kernels import DEEP_NESTS, CKernelWriter
from fusiondsl.backends.c.support import require_support
from fusiondsl.backends.c.tables import CTables
from fusiondsl.backends.emit import Emitter, safe_text
from fusiondsl.backends.forward import write_layer_class
from fusiondsl.backends.kernel_paths import NodeInfo
from fusiondsl.backends.names import user_text
from fusiondsl.backends.pysource import REGENERATE, emit_sparse_helper, render_literal
from fusiondsl.backends.units import hoisted_sum, kernel_sets, neighbourhood_notes, node_name
from fusiondsl.core.coupling import Coupling
from fusiondsl.core.version import __version__
from fusiondsl.kernel import kernel_ir
from fusiondsl.plan.planner import Plan

PRELUDE = """\
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

/* Compiled twice: -DREAL=float and -DREAL=double. */
#ifndef REAL
#define REAL double
#endif
typedef REAL real;
#define K(x) ((real)(x)) /* a coefficient, rounded to the kernel's precision */
/* Rows z0 … z0+R-1 of one entry (mul channels × dim components from column `start` of a
 * [Z, width] array) as the local array dst[R][dim][mul]; rows past nr, or all when !on, are
 * zero. A macro, so that gcc sees the same loops as if they were written out; the loops over
 * components are unrolled by request, as gcc's own complete peeling stops at 4 trips. */
#define LOAD_ENTRY(dst, src, on, width, start, mul, dim) \
    for (int r_ = 0; r_ < R; ++r_) \
        for (int c_ = 0; c_ < (mul); ++c_) \
            _Pragma("GCC unroll 16") for (int m_ = 0; m_ < (dim); ++m_) \
                (dst)[r_][m_][c_] = \
                    (on) && r_ < nr ? (src)[(z0 + r_) * (width) + (start) + c_ * (dim) + m_] : 0

/* One row acc[dim][mul] of a local array written back in the row's [mul][dim] layout. */
#define STORE_ENTRY(dst, acc, mul, dim) \
    for (int c_ = 0; c_ < (mul); ++c_) \
        _Pragma("GCC unroll 16") for (int m_ = 0; m_ < (dim); ++m_) \
            (dst)[c_ * (dim) + m_] = (acc)[m_][c_]

/* A weight block src[a][i][b] copied as dst[a][b][i]: one channel letter moved innermost. */
static inline void move_inner(real *restrict dst, const real *restrict src, int A, int I, int B)
{
    for (int a = 0; a < A; ++a)
        for (int i = 0; i < I; ++i)
            for (int b = 0; b < B; ++b)
                dst[(a * B + b) * I + i] = src[(a * I + i) * B + b];
}"""


class CLowering:
    """Renders one diagram's plan as C kernels and a Python module around them.

    Attributes ``plan``, ``d`` and ``sets`` (per node, its kernel sets:
    :func:`fusiondsl.backends.units.kernel_sets`) are what
    :class:`fusiondsl.backends.forward.ForwardWriter` reads to write ``forward``.
    """

    def __init__(self, plan: Plan, spec_name: str = "<string>") -> None:
        self.plan, self.d, self.spec_name = plan, plan.paths.diagram, safe_text(spec_name)
        self.ir = kernel_ir(plan)  # what the kernels are written from
        self.sets = [kernel_sets(self.ir, k) for k in range(len(self.d.nodes))]
        self.hoisted = [hoisted_sum(plan, sets, k) for k, sets in enumerate(self.sets)]
        self.nodes = [info for infos in self.sets for info in infos]
        self.fmoves = [(node_name(self.d, fm.node), fm) for fm in plan.fmoves
                       if fm is not None and fm.left[0].weight_shape is not None]

    def c_source(self) -> str:
        """The C file: header comment, prelude, one function per kernel set and role."""
        em, tables = Emitter(), CTables()
        self.c_header(em)
        cost_line = len(em.lines) - 2  # before "Do not edit" and the comment's end
        em.lines.extend(PRELUDE.split("\n"))
        top = len(em.lines)
        nests = 0
        for k, infos in enumerate(self.sets):
            for part, info in enumerate(infos):
                em.line()
                em.line(f"/* ---- {self.set_title(k, info, part)}  ({len(info.paths)} paths) */")
                for role in sorted(info.roles, key=lambda r: r != "out"):  # forward first
                    if has_joint(info) and role.startswith("x"):
                        continue  # <node>_xs gives any operand's gradient
                    em.line()
                    writer = CKernelWriter(info, role, tables)
                    em.lines.extend(writer.render().rstrip("\n").split("\n"))
                    nests += writer.deep_nests
                if has_joint(info):
                    em.line()
                    writer = JointGradientWriter(info, tables)
                    em.lines.extend(writer.render().rstrip("\n").split("\n"))
                    nests += writer.deep_nests
        em.lines[top:top] = tables.source_lines()
        em.lines.insert(cost_line, f" * Build cost: {nests} {DEEP_NESTS} (gcc's slowest part).")
        return em.source()

    def c_header(self, em: Emitter) -> None:
        """The C file's header comment: the diagram, its paths, the functions' naming."""
        d, paths = self.d, self.plan.paths
        em.line(f"/* Generated by fusiondsl {__version__} (c backend): diagram {d.name!r} "
                f"from {self.spec_name}.")
        em.line(" *")
        for text in user_text(d.to_text()).splitlines():
            em.line(f" *     {text}")
        em.line(" *")
        em.line(f" * {paths.num_paths} paths, {paths.weight_numel} weights; "
                f"irrep_normalization={paths.irrep_normalization}, "
                f"path_normalization={paths.path_normalization}.")
        em.line(" * Functions, one per node and role: <node>_out is the forward pass, <node>_x<i>")
        em.line(" * the gradient w.r.t. operand i, <node>_w the weight gradient; a node with two")
        em.line(" * operands or more has <node>_xs in their place: the gradients of the operands")
        em.line(" * its `want` bits name, one or several (docs/cbackend.md).")
        em.line(" * Rows are [Z, width] in e3nn's layout; per row, entries are copied to local")
        em.line(" * [component][channel] arrays so that the channel loops vectorise. Each path is")
        em.line(" * a { block }, so that its arrays' stack space is reused by the next path.")
        if d.is_neighbourhood:
            for text in neighbourhood_notes(self.plan):
                em.line(f" * {text}")
        em.line(f" * Do not edit: regenerate with `{REGENERATE}`.")
        em.line(" */")

    def set_title(self, k: int, info: NodeInfo, part: int) -> str:
        """What one kernel set computes (a hoisted sum has two: per edge, then per node)."""
        text = f"{info.name} = {self.d._fuse_text(self.d.nodes[k])}"
        if len(self.sets[k]) > 1:
            fmove = self.plan.fmoves[k] if self.plan.fmoves else None
            what = ("per edge, before the sum over j" if part == 0
                    else "per node, with the centre h[i]" + (", F-move terms" if fmove else ""))
            text = f"{info.name}: {node_name(self.d, k)} hoisted, {what}"
        return text

    def render(self) -> str:
        """The Python module: the C source, its kernel tables, the ``torch.nn.Module``."""
        d = self.d
        em = Emitter()
        em.line(f'"""Generated by fusiondsl {__version__} (c backend): diagram {d.name!r} '
                f"from {self.spec_name}.")
        em.line()
        em.line("The kernels are the C source below (C_SOURCE), compiled on import with the")
        em.line("system C compiler and cached; see docs/cbackend.md.")
        em.line(f"Do not edit: regenerate with `{REGENERATE}`.")
        em.line('"""')
        em.line()
        em.line("import torch")
        em.line()
        em.line("from fusiondsl.backends.c.runtime import NodeKernels, load_library")
        em.line("from fusiondsl.backends.c.runtime import fuse as _fuse")
        if d.is_neighbourhood or any(getattr(n, "gates", ()) for n in d.nodes):
            em.line("from fusiondsl.backends.graph_ops import gate as _gate")
        if d.is_neighbourhood:
            em.line("from fusiondsl.backends.graph_ops import scatter_sum as _scatter_sum")
        em.line()
        em.line('C_SOURCE = r"""')
        em.lines.extend(self.c_source().rstrip("\n").split("\n"))
        em.line('"""')
        em.line()
        em.line("_libraries = load_library(C_SOURCE)")
        for info in self.nodes:
            functions = {r: f"{info.name}_{r}" for r in info.roles
                         if not (has_joint(info) and r.startswith("x"))}
            if has_joint(info):
                functions["xs"] = f"{info.name}_xs"
            widths = tuple(info.width(r) for r in info.roles)
            em.line(f"kernels_{info.name} = NodeKernels(_libraries, {info.name!r}, "
                    f"{info.roles!r}, {widths!r}, {info.external!r}, {functions!r})")
        self.fmove_tables(em)
        self.module(em)
        return em.source()

    def fmove_tables(self, em: Emitter) -> None:
        """The F-moves' weight mixing matrices (mixed into the weights in ``forward``)."""
        if not self.fmoves:
            return
        em.line()
        em.line()
        emit_sparse_helper(em)
        for name, fm in self.fmoves:
            em.comment(f"F-move of {name}: {len(fm.finals)} weighted terms x {len(fm.left)} "
                       "paths, coefficient × 6j matrix M[k, k']")
            em.line(render_literal(Coupling(f"fmove_{name}", np.array(fm.mix, dtype=np.float64),
                                            "")))

    def module(self, em: Emitter) -> None:
        """The ``torch.nn.Module``: the einsum layer's attributes, weights and buffers."""
        write_layer_class(self, em, "C kernels")


def lower_c_source(plan: Plan, spec_name: str = "<string>") -> str:
    """The generated C file alone (what the gallery keeps as ``*.c.c``)."""
    require_support(plan.paths.diagram)
    return CLowering(plan, spec_name).c_source()


def lower_c(plan: Plan, spec_name: str = "<string>") -> str:
    """Generated Python source (with the C source inside) of a layer for one tree diagram.

    Raises:
        CUnsupportedError: for a construct the backend does not lower (see
            :func:`fusiondsl.backends.c.support.refusal`).
    """
    require_support(plan.paths.diagram)
    return CLowering(plan, spec_name).render()

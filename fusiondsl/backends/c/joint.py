"""One C function for the operand gradients of a fuse node: ``<node>_xs`` (two operands or more).

A backward pass through a node needs the gradients of all its operands. Toward any operand,
most of the work is multiplying the result's cotangent by the weights (the ``uvw`` fold,
:meth:`CKernelWriter.fold`); this function does it once per path and contracts it toward the
operands named in its ``want`` argument (bit ``i``: operand ``i``). ``want = 3`` is the joint
gradient (``want = 7`` for three operands; ``contract.JointGradient``); ``want = 1 << i`` is
what a kernel of operand ``i`` alone would compute, so these nodes have no ``<node>_x<i>``
functions: the C compiler builds each path's gradient code once instead of once per operand
(fctp, conv, nequip: 31-39% less C source, about half the first build's time;
``benchmarks/RESULTS.md``, 2026-12-03).
An operand's pointer, and the result pointer of a gradient not wanted, may be ``NULL`` when no
wanted gradient reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fusiondsl.backends.c.kernels import CKernelWriter, _Path
from fusiondsl.backends.c.support import cname, signature
from fusiondsl.backends.c.tables import CTables
from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import NodeInfo, channels, tree
from fusiondsl.ir.paths import Path


def has_joint(node: NodeInfo) -> bool:
    """Whether a node gets the joint gradient function (two operands or more)."""
    return len(node.operands) >= 2


def bit(role: str) -> int:
    """Operand ``x<i>``'s bit in ``want``."""
    return 1 << int(role[1:])


class JointGradientWriter(CKernelWriter):
    """Writes ``<node>_xs``: the gradients of all operands, results in ``result_x<i>``."""

    def __init__(self, node: NodeInfo, tables: CTables | None = None) -> None:
        super().__init__(node, "x0", tables)
        self.operand_roles = [r for r in node.roles if r.startswith("x")]
        self.accs_of: dict[str, dict[int, str]] = {r: {} for r in self.operand_roles}

    @property
    def fn_name(self) -> str:
        """``o_xs``."""
        return f"{self.node.name}_xs"

    def describe(self) -> str:
        """The function's comment."""
        n = self.node
        shapes = ", ".join(f"result_{r} [Z, {n.width(r)}]" for r in self.operand_roles)
        bits = ", ".join(f"{bit(r)}: {r}" for r in self.operand_roles)
        return (f"{n.name}: gradients w.r.t. the operands in want ({bits}; "
                f"{len(n.paths)} paths); {shapes}.")

    def render(self) -> str:
        """The C function."""
        self.em.depth = self.loads.depth = 2
        for p in self.node.paths:
            self.joint_path(p)
        for role in self.operand_roles:
            self.use(role)
            with self.wanted(role):
                self.store(f"result_{role}")
        out = Emitter()
        inputs = [f"const real *restrict {cname(r)}" for r in self.node.roles]
        results = [f"real *restrict result_{r}" for r in self.operand_roles]
        out.line(f"/* {self.describe()} */")
        out.lines.extend(signature(self.fn_name, [*inputs, *results, "int want", "int64_t Z",
                                                  "int num_threads"]))
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

    def loaded(self, role: str) -> str:
        """An operand's rows are read only for the other operands' gradients."""
        if role not in self.operand_roles:
            return "1"
        others = sum(bit(r) for r in self.operand_roles if r != role)
        return f"want & {others}"

    @contextmanager
    def wanted(self, role: str) -> Iterator[None]:
        """``if (want & bit) { … }`` around one operand's part."""
        self.em.line(f"if (want & {bit(role)}) {{  /* the gradient w.r.t. {role} */")
        with self.em.indent():
            yield
        self.em.line("}")

    def use(self, role: str) -> None:
        """Point the writer at one operand's gradient (its accumulators and names)."""
        self.target, self.accs, self.acc_prefix = role, self.accs_of[role], f"acc_{role}"

    def joint_path(self, p: Path) -> None:
        """One path: the folded cotangent once, then the tree toward each operand."""
        st = _Path(p, channels(p), tree(self.node.group, p))
        self.em.line()
        shape = "×".join(map(str, p.muls)) + f" → {p.out_mul}"
        self.em.line(f"{{  /* path {p.index}: {p.describe()} ({p.mode}, {shape}) */")
        with self.em.indent():
            self.use(self.operand_roles[0])
            folded = self.fold(st, "out")
            self.subst = {"out": folded} if folded else {}
            for role in self.operand_roles:
                self.use(role)
                with self.wanted(role):
                    root = self.message(st, role, st.tree.leaf_vertex(role))
                    self.finish(st, root, weighted=folded is None)
        self.em.line("}")

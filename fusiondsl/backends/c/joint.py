"""One C function for every operand gradient of a binary fuse node: ``<node>_xs``.

A backward pass through a node needs the gradients of all its operands. The per-role kernels
(``<node>_x0``, ``<node>_x1``) each multiply the result's cotangent by the weights first (the
``uvw`` fold, :meth:`CKernelWriter.fold`), which is most of their work; this function does it
once per path and contracts it toward both operands. It computes exactly what the two
per-role kernels compute, so autograd can use either (``c_runtime.JointGradient``).
"""

from __future__ import annotations

from fusiondsl.backends.c.kernels import CKernelWriter, _Path
from fusiondsl.backends.c.support import cname, signature
from fusiondsl.backends.c.tables import CTables
from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.kernel_paths import NodeInfo, channels, tree
from fusiondsl.ir.paths import Path


def has_joint(node: NodeInfo) -> bool:
    """Whether a node gets the joint gradient function (binary nodes)."""
    return len(node.operands) == 2


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
        return (f"{n.name}: gradients w.r.t. every operand ({len(n.paths)} paths), as "
                f"{' and '.join(f'{n.name}_{r}' for r in self.operand_roles)}; {shapes}.")

    def render(self) -> str:
        """The C function."""
        self.em.depth = self.loads.depth = 2
        for p in self.node.paths:
            self.joint_path(p)
        for role in self.operand_roles:
            self.use(role)
            self.store(f"result_{role}")
        out = Emitter()
        inputs = [f"const real *restrict {cname(r)}" for r in self.node.roles]
        results = [f"real *restrict result_{r}" for r in self.operand_roles]
        out.line(f"/* {self.describe()} */")
        out.lines.extend(signature(self.fn_name, [*inputs, *results, "int64_t Z",
                                                  "int num_threads"]))
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

    def use(self, role: str) -> None:
        """Point the writer at one operand's gradient (its accumulators and names)."""
        self.target, self.accs, self.acc_prefix = role, self.accs_of[role], f"acc_{role}"

    def joint_path(self, p: Path) -> None:
        """One path: the folded cotangent once, then the tree toward each operand."""
        st = _Path(p, channels(p), tree(self.node.group, p))
        self.em.line()
        shape = "×".join(map(str, p.muls)) + f" → {p.out_mul}"
        self.em.line(f"/* path {p.index}: {p.describe()} ({p.mode}, {shape}) */")
        self.em.line("{  /* a block: its arrays' stack space is reused by the next path */")
        with self.em.indent():
            self.use(self.operand_roles[0])
            folded = self.fold(st)
            self.subst = {"out": folded} if folded else {}
            for role in self.operand_roles:
                self.use(role)
                root = self.message(st, role, st.tree.leaf_vertex(role))
                self.finish(st, root, weighted=folded is None)
        self.em.line("}")

"""The kernel IR: what every backend reads (segments, path tables, exact coefficient tables).

>>> from fusiondsl import loads
>>> d = loads("diagram d(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) weights uvu }").diagram()
>>> print(build_kernel_ir(d).nodes[0].paths[0].describe())
1o ⊗ 1o → 0e
"""

from __future__ import annotations

from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.ir.paths import IrrepNormalization, PathNormalization
from fusiondsl.kernel import serial, text
from fusiondsl.kernel.build import KernelIRError, kernel_ir
from fusiondsl.kernel.build_graph import graph_kernel_ir
from fusiondsl.kernel.exact import Exact, Table
from fusiondsl.kernel.ir import GraphKernelIR, KernelIR
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import DEFAULT_BATCH, Strategy, make_plan


def build_kernel_ir(
    d: AnyDiagram,
    irrep_normalization: IrrepNormalization = "component",
    path_normalization: PathNormalization = "element",
    strategy: Strategy = "auto",
    batch: int = DEFAULT_BATCH,
    hoist: bool = True,
) -> KernelIR | GraphKernelIR:
    """Expand, plan (as a compile with these options does) and describe a checked diagram.

    Raises:
        KernelIRError: for a construct the kernel IR cannot describe yet (named).
    """
    if not isinstance(d, Diagram):
        return graph_kernel_ir(d)
    plan = make_plan(expand(d, irrep_normalization, path_normalization),
                     "auto" if strategy == "autotune" else strategy, batch, hoist)
    return kernel_ir(plan)


_HOOKED = (serial, text)  # each installed its functions on the IR types on import

__all__ = ["Exact", "GraphKernelIR", "KernelIR", "KernelIRError", "Table", "build_kernel_ir",
           "graph_kernel_ir", "kernel_ir"]

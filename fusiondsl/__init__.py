"""fusiondsl: a compiler for SU(2)/O(3) fusion diagrams.

Write a diagram as text, check it against the coupling rules, and compile it to an
equivariant ``torch.nn.Module`` (readable einsum code or Triton kernels).

>>> import fusiondsl
>>> prog = fusiondsl.loads("diagram tp(x: 8x1o, y: 1o) -> z: 8x0e + 8x1e { z = fuse(x, y) }")
>>> prog.names
['tp']
"""

from fusiondsl.diagnostics import FusionError, Span
from fusiondsl.irreps import Irrep, Irreps
from fusiondsl.program import Program, load, loads

__version__ = "0.1.0"
__all__ = [
    "FusionError",
    "Irrep",
    "Irreps",
    "Program",
    "Span",
    "__version__",
    "from_e3nn",
    "load",
    "loads",
]


def from_e3nn(tp: object, name: str = "e3nn_tp") -> object:
    """A compiled layer equal to an ``e3nn.o3.TensorProduct`` (see :mod:`fusiondsl.interop`)."""
    from fusiondsl.interop import from_e3nn as convert

    return convert(tp, name)

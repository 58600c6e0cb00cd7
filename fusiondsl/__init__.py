"""fusiondsl: a compiler for SU(2)/O(3) fusion diagrams.

Write a diagram as text, check it against the coupling rules, and compile it to an
equivariant ``torch.nn.Module`` (readable einsum code or Triton kernels).

>>> import fusiondsl
>>> prog = fusiondsl.loads("diagram tp(x: 8x1o, y: 1o) -> z: 8x0e + 8x1e { z = fuse(x, y) }")
>>> prog.names
['tp']
"""

from fusiondsl.core.diagnostics import FusionError, Span
from fusiondsl.core.irreps import Irrep, Irreps
from fusiondsl.core.version import __version__
from fusiondsl.nn.interop import from_e3nn, to_fd
from fusiondsl.nn.program import Program, load, loads
from fusiondsl.nn.swap import swap

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
    "swap",
    "to_fd",
]

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
from fusiondsl.nn.program import Program, load, loads

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
    "swap",
    "to_fd",
]


def from_e3nn(tp: object, name: str = "e3nn_tp", backend: str = "einsum",
              **options: object) -> object:
    """A compiled layer equal to an e3nn ``TensorProduct`` or ``Linear`` (see ``interop``)."""
    from fusiondsl.nn.interop import from_e3nn as convert

    return convert(tp, name, backend, **options)


def to_fd(tp: object, name: str = "e3nn_tp") -> str:
    """The ``.fd`` text of an e3nn layer, where the language can say it (see :func:`from_e3nn`)."""
    from fusiondsl.nn.interop import to_fd as text

    return text(tp, name)


def swap(model: object, backend: str = "einsum", **options: object) -> object:
    """Replace every e3nn ``TensorProduct``/``Linear`` in a model (see :mod:`fusiondsl.nn.swap`)."""
    from fusiondsl.nn.swap import swap as replace

    return replace(model, backend, **options)  # type: ignore[arg-type]

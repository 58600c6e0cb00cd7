"""e3nn interoperability: compile e3nn layers into equal fusiondsl layers, and read them as text.

``from_e3nn`` converts every ``o3.TensorProduct`` e3nn can build (``FullyConnectedTensorProduct``,
``ElementwiseTensorProduct``, ``FullTensorProduct``, ``TensorSquare`` in both its modes, any
instruction list, empty ones included) and ``o3.Linear``, with their weights carried over;
anything else is refused with one line naming it. ``to_fd`` prints the equivalent ``.fd``
text where the language can say it. e3nn is not a dependency: only the attributes of the
object given are read, and the coupling convention is measured from the e3nn release that
object comes from (:mod:`fusiondsl.nn.interop_convention`).

>>> import fusiondsl
>>> fusiondsl.from_e3nn(object())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
fusiondsl.nn.e3nn_kind.E3nnUnsupportedError: cannot convert object: not an e3nn TensorProduct, ...
"""

from __future__ import annotations

from typing import Any

import torch

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.nn.e3nn_kind import E3nnUnsupportedError, kind
from fusiondsl.nn.interop_convention import ConventionError
from fusiondsl.nn.interop_fd import fd_text
from fusiondsl.nn.interop_parts import BACKENDS, PLAN_OPTIONS
from fusiondsl.nn.interop_tp import irreps_from_e3nn

__all__ = ["E3nnUnsupportedError", "from_e3nn", "irreps_from_e3nn", "kind", "to_fd"]

def _options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use 'einsum', 'triton' or 'c'")
    for key in ("irrep_normalization", "path_normalization"):
        if key in options:
            raise ValueError(f"{key} is read from the e3nn layer (its coefficients are carried "
                             "over as they are); do not pass it to from_e3nn")
    unknown = sorted(set(options) - set(PLAN_OPTIONS))
    if unknown:
        raise TypeError(f"unknown compile option(s) {', '.join(unknown)}; "
                        f"known: backend, {', '.join(PLAN_OPTIONS)}")
    return options


def from_e3nn(obj: Any, name: str = "e3nn_tp", backend: str = "einsum",
              **options: Any) -> torch.nn.Module:
    """A compiled layer equal to an e3nn ``TensorProduct`` / ``TensorSquare`` / ``Linear``.

    The weights are carried over in e3nn's layout; the forward is e3nn's: ``layer(x, y)``,
    ``layer(x, y, weight)`` (shared or per-sample external weights), ``layer(x[, weight])``
    for a square, ``layer(x[, weight, bias])`` for a linear map. Output blocks that no
    instruction writes are zeros, as in e3nn; an empty instruction list is a zero layer.

    Args:
        obj: the e3nn module.
        name: the generated layer's name.
        backend: ``einsum``, ``c`` or ``triton`` (as :meth:`fusiondsl.Program.compile`); a
            backend that refuses mixed connection modes in one layer gets one layer per mode.
        **options: ``strategy``, ``batch``, ``hoist``, ``spec_name`` as for
            :meth:`fusiondsl.Program.compile`. The normalisation is the e3nn layer's own.

    Raises:
        E3nnUnsupportedError: (a ``ValueError``) for an object it cannot convert exactly.
        FusionError: when the chosen backend cannot lower the result.
    """
    options = _options(backend, options)
    what = kind(obj)
    if what is None:
        raise E3nnUnsupportedError(f"cannot convert {type(obj).__name__}: not an e3nn "
                                   "TensorProduct, TensorSquare or Linear")
    try:
        if what == "linear":
            from fusiondsl.nn.interop_linear import convert_linear

            return convert_linear(obj, name, backend, options)
        from fusiondsl.nn.interop_tp import convert_tensor_product

        return convert_tensor_product(obj, name, backend, options,
                                      1 if what == "tensor_square" else 2)
    except FusionError:
        raise
    except (ConventionError, ValueError) as err:
        raise E3nnUnsupportedError(f"cannot convert e3nn {type(obj).__name__}: {err}") from None


def to_fd(obj: Any, name: str = "e3nn_tp") -> str:
    """The ``.fd`` text of an e3nn layer, where the language can say it exactly.

    ``fusiondsl.loads(to_fd(tp)).compile(**opts)`` then equals ``tp`` (weights in the same
    layout), with ``opts`` the normalisation named in the text's first comment line.

    Raises:
        E3nnUnsupportedError: naming what the language cannot express (mixed connection modes,
            unweighted binary modes, output blocks no path reaches, custom path weights, …);
            ``from_e3nn`` still converts those.
    """
    return fd_text(obj, name).text

"""Which e3nn layer an object is, read from its class and attributes (e3nn is not imported)."""

from __future__ import annotations

from typing import Literal

Kind = Literal["tensor_product", "tensor_square", "linear"]


class E3nnUnsupportedError(ValueError):
    """An object ``from_e3nn`` / ``to_fd`` cannot convert exactly; the message names why."""


def e3nn_names(obj: object) -> list[str]:
    """The e3nn classes in ``obj``'s MRO, by name (``["FullyConnectedTensorProduct", …]``)."""
    return [c.__name__ for c in type(obj).__mro__ if c.__module__.split(".")[0] == "e3nn"]


def kind(obj: object) -> Kind | None:
    """What e3nn layer ``obj`` is (``None``: none that fusiondsl converts)."""
    names = e3nn_names(obj)
    if "TensorSquare" in names:
        return "tensor_square"
    if "TensorProduct" in names or all(hasattr(obj, a) for a in
                                       ("instructions", "irreps_in1", "irreps_in2")):
        return "tensor_product"
    if "Linear" in names and all(hasattr(obj, a) for a in ("instructions", "irreps_in")):
        return "linear"
    return None

"""JSON for the kernel IR: every dataclass as an object tagged with its type, exact numbers as text.

``from_json(to_json(x)) == x`` for every kernel IR value: tuples come back as tuples, exact
numbers as :class:`~fusiondsl.kernel.exact.Exact` (written ``"-1/3*sqrt(2)"``), ``None`` as
``None``. Only the types listed in :data:`TYPES` are read back: a file cannot name others.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fusiondsl.kernel import ir
from fusiondsl.kernel.exact import Exact, Table

FORMAT = "fusiondsl-kernel-ir/1"
TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    ir.Segment, ir.Leg, ir.Operand, ir.WeightSlice, ir.KernelPath, ir.Hoist, ir.FuseKernel,
    ir.CatKernel, ir.LinearBlock, ir.LinearKernel, ir.KernelIR, ir.GraphLeg, ir.GraphFactor,
    ir.GraphKernelIR, Table)}


def _encode(x: Any) -> Any:
    if isinstance(x, Exact):
        return {"exact": str(x)}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        out: dict[str, Any] = {"type": type(x).__name__}
        for f in dataclasses.fields(x):
            out[f.name] = _encode(getattr(x, f.name))
        return out
    if isinstance(x, tuple):
        return [_encode(v) for v in x]
    if x is None or isinstance(x, (bool, int, str)):
        return x
    raise TypeError(f"the kernel IR holds only tuples, ints, strings and exact numbers, got "
                    f"{type(x).__name__}")


def _decode(x: Any) -> Any:
    if isinstance(x, list):
        return tuple(_decode(v) for v in x)
    if not isinstance(x, dict):
        return x
    if set(x) == {"exact"}:
        return Exact.parse(x["exact"])
    cls = TYPES.get(x.get("type", ""))
    if cls is None:
        raise ValueError(f"not a kernel IR object: type {x.get('type')!r}")
    return cls(**{k: _decode(v) for k, v in x.items() if k != "type"})


def to_json(value: ir.KernelIR | ir.GraphKernelIR) -> str:
    """JSON text of a kernel IR (stable: keys in field order, two-space indent)."""
    return json.dumps({"format": FORMAT, "kernel": _encode(value)}, indent=2,
                      ensure_ascii=False) + "\n"


def from_json(text: str) -> ir.KernelIR | ir.GraphKernelIR:
    """The kernel IR :func:`to_json` wrote.

    Raises:
        ValueError: when the text is not a kernel IR of this format.
    """
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a kernel IR file (want format {FORMAT!r})")
    value = _decode(data["kernel"])
    if not isinstance(value, (ir.KernelIR, ir.GraphKernelIR)):
        raise ValueError("not a kernel IR file: the top object is not a KernelIR")
    return value


ir.install("to_json", to_json)
ir.install("from_json", from_json)

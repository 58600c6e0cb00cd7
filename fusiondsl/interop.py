"""e3nn interoperability: compile any ``e3nn.o3.TensorProduct`` into an equal fusiondsl layer.

e3nn is not a dependency: this module only reads the attributes of the object it is given.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from fusiondsl.expand import Path, Paths
from fusiondsl.ir import Diagram, FuseNode, Leg, Operand
from fusiondsl.irreps import Irrep, Irreps, MulIr
from fusiondsl.layers import exec_source
from fusiondsl.lower.einsum import lower_einsum
from fusiondsl.plan import make_plan

SUPPORTED_MODES = ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv")


def irreps_from_e3nn(irreps: Any) -> Irreps:
    """Convert an ``e3nn.o3.Irreps`` (anything iterating as (mul, (l, p)))."""
    return Irreps(tuple(MulIr(int(mul), Irrep(2 * int(ir.l), int(ir.p))) for mul, ir in irreps))


def _paths(tp: Any, irreps: tuple[Irreps, Irreps, Irreps]) -> list[Path]:
    in1, in2, out = irreps
    paths, offset = [], 0
    for i, ins in enumerate(tp.instructions):
        if ins.connection_mode not in SUPPORTED_MODES:
            raise ValueError(f"e3nn connection mode {ins.connection_mode!r} is not supported; "
                             f"supported: {', '.join(SUPPORTED_MODES)}")
        a, b, c = in1[ins.i_in1], in2[ins.i_in2], out[ins.i_out]
        shape = tuple(ins.path_shape) if ins.has_weight else None
        paths.append(Path(i, 0, (ins.i_in1, ins.i_in2), (a.ir, b.ir), (a.mul, b.mul), (), c.ir,
                          ins.i_out, c.mul, ins.connection_mode, shape, offset,
                          float(ins.path_weight)))
        offset += math.prod(shape) if shape is not None else 0
    return paths


def from_e3nn(tp: Any, name: str = "e3nn_tp") -> torch.nn.Module:
    """A compiled einsum layer equal to an e3nn ``TensorProduct``, its weights carried over.

    Every connection mode but ``uvu<v``/``u<vw``, internal, shared-external and per-sample
    external weights, and ``FullyConnectedTensorProduct`` are supported. The layer's forward
    is ``layer(x, y)`` or ``layer(x, y, weight)`` exactly as e3nn's.
    """
    irreps = (irreps_from_e3nn(tp.irreps_in1), irreps_from_e3nn(tp.irreps_in2),
              irreps_from_e3nn(tp.irreps_out))
    paths = _paths(tp, irreps)
    external = not tp.internal_weights and tp.weight_numel > 0
    modes = sorted({p.mode for p in paths}) or ["uvw"]
    node = FuseNode("out", (Operand("leg", 0), Operand("leg", 1)), True, "+".join(modes),
                    external, None, irreps[2])
    d = Diagram(name, "O3", (Leg("x", irreps[0]), Leg("y", irreps[1])), (node,), "out",
                irreps[2])
    plan = make_plan(Paths(d, tuple(paths), (), (sum(p.weight_numel for p in paths),)))
    source = lower_einsum(plan, f"e3nn {type(tp).__name__}")
    namespace = exec_source(source, name)
    layer = next(v for k, v in namespace.items() if isinstance(v, type)
                 and issubclass(v, torch.nn.Module) and not k.startswith("_"))()
    layer.source, layer.plan, layer.diagram = source, plan, d
    layer.irreps_in, layer.irreps_out = [irreps[0], irreps[1]], irreps[2]
    if not external and plan.internal_numel:
        with torch.no_grad():
            layer.weight.copy_(tp.weight.detach().reshape(-1))
    return layer

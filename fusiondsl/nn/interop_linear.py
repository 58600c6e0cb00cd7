"""An e3nn ``o3.Linear`` as a compiled layer: its instructions, weights and biases carried over.

With internal weights it is a fusiondsl ``linear`` node whose blocks keep e3nn's instruction
order (so the weight vector carries over unchanged) and e3nn's own ``path_weight``. With
external weights (``linear`` nodes have internal weights only) each block is a ``uvw`` product
with the constant scalar 1 (``x ⊗ 1x0e``), whose ``[mul_in, 1, mul_out]`` weights have the
layout of the block's ``[mul_in, mul_out]``. Biases, and output blocks no instruction writes,
are added by the composing module. Linear maps need no coupling convention: ℓ ⊗ 0 → ℓ is the
identity in every e3nn release.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from fusiondsl.core import cg
from fusiondsl.core.irreps import Irrep, Irreps, MulIr
from fusiondsl.ir.paths import LinearBlock, Path
from fusiondsl.nn.interop_parts import E3nnComposite, PartSpec, columns, compile_part
from fusiondsl.nn.interop_tp import irreps_from_e3nn

SCALAR_ONE = Irreps((MulIr(1, Irrep(0, 1)),))


def _check(lin: Any) -> None:
    weight = getattr(lin, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() > 1:
        raise ValueError("e3nn Linear with f_in/f_out (weights per feature pair) is not "
                         "supported")


def _reads(lin: Any) -> tuple[Irreps, list[int], list[tuple[int, int, float, int]], list[int]]:
    """Input irreps without ``0x`` entries, their index map, the blocks, the bias columns."""
    full = irreps_from_e3nn(lin.irreps_in)
    irreps_out = irreps_from_e3nn(lin.irreps_out)
    kept = [i for i, m in enumerate(full) if m.mul > 0]
    blocks, bias, offset = [], [], 0
    for ins in lin.instructions:
        shape = tuple(int(s) for s in ins.path_shape)
        if ins.i_in == -1:
            bias += columns(irreps_out, ins.i_out)
            continue
        if 0 not in shape:
            blocks.append((kept.index(ins.i_in), ins.i_out, float(ins.path_weight), offset))
        offset += math.prod(shape)
    return Irreps(tuple(full[i] for i in kept)), kept, blocks, bias


def _spec(lin: Any, external: bool) -> PartSpec:
    legs, _, blocks, _ = _reads(lin)
    irreps_out = irreps_from_e3nn(lin.irreps_out)
    reached = sorted({o for _, o, _, _ in blocks})
    entry = {o: k for k, o in enumerate(reached)}
    out = Irreps(tuple(irreps_out[o] for o in reached))
    dst = [c for o in reached for c in columns(irreps_out, o)]
    paths, linears, windex = [], [], []
    for i, o, coefficient, offset in blocks:
        a, b = legs[i], irreps_out[o]
        numel = a.mul * b.mul
        if external:
            one = float(cg.real_w3j(a.ir.l, 0, a.ir.l)[0, 0, 0])  # 1/sqrt(2l+1)
            paths.append(Path(len(paths), 0, (i, 0), (a.ir, Irrep(0, 1)), (a.mul, 1), (), a.ir,
                              entry[o], b.mul, "uvw", (a.mul, 1, b.mul), len(windex),
                              coefficient / one))
        else:
            linears.append(LinearBlock(0, i, entry[o], a.ir, a.mul, b.mul, offset, coefficient))
        windex += range(offset, offset + numel)
    legs_all = (legs, SCALAR_ONE) if external else (legs,)
    return PartSpec(legs_all, out, tuple(paths), tuple(linears),
                    tuple(windex) if external else (), tuple(range(out.dim)), tuple(dst),
                    external, "uvw" if external else "linear")


def convert_linear(lin: Any, name: str, backend: str, options: dict[str, Any]) -> torch.nn.Module:
    """A module equal to an e3nn ``Linear`` (forward ``(x[, weight[, bias]])`` as e3nn's)."""
    _check(lin)
    internal = bool(lin.internal_weights)
    numel = int(lin.weight_numel)
    _, _, blocks, bias = _reads(lin)
    spec = _spec(lin, not internal)
    irreps_out = irreps_from_e3nn(lin.irreps_out)
    layer = compile_part(spec, name, backend, options) if blocks else None
    if layer is not None and internal and numel:
        with torch.no_grad():
            layer.weight.copy_(lin.weight.detach().reshape(-1))
    if layer is not None and internal and not bias and spec.out.dim == irreps_out.dim:
        layer.e3nn_type = type(lin).__name__
        return layer
    info = {"num_inputs": 1, "weight_numel": numel, "internal": internal,
            "shared": bool(lin.shared_weights), "irreps_in": [irreps_from_e3nn(lin.irreps_in)],
            "irreps_out": irreps_out, "type": type(lin).__name__,
            "weight": None if internal else lin.weight,
            "extra_input": None if internal else "ones",
            "bias_columns": tuple(bias), "bias": getattr(lin, "bias", None)}
    return E3nnComposite([spec] if layer is not None else [],
                         [layer] if layer is not None else [], info)

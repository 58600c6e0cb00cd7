"""Compiled parts of a converted e3nn layer, and the module that composes them.

A converted layer is one compiled fusiondsl layer when that layer alone equals the e3nn one.
Otherwise it is an :class:`E3nnComposite`: it keeps the e3nn weight vector (its layout and
name), hands each *part* (a compiled layer over some of the instructions) the weights it
reads, and adds each part's output columns into a zero output of the full width. That is how
output blocks no instruction writes stay zero (as in e3nn), how an empty instruction list
is a zero layer, how ``uvu<v`` / ``u<vw`` become ``uvuv`` / ``uvw`` products with gathered
weights and outputs, and how a backend that refuses mixed connection modes in one layer gets
one layer per mode. The compiler core is not changed for any of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fusiondsl.core.irreps import Irreps
from fusiondsl.ir.diagram import Diagram, FuseNode, Leg, LinearNode, Operand
from fusiondsl.ir.paths import LinearBlock, Path, Paths
from fusiondsl.nn.layers import build_from_paths
from fusiondsl.plan.planner import DEFAULT_BATCH

BACKENDS = ("einsum", "c", "triton")
# Options of Program.compile that a conversion passes on to every part.
PLAN_OPTIONS = ("strategy", "batch", "hoist", "spec_name")


@dataclass(frozen=True)
class PartSpec:
    """What one compiled part computes, before it is compiled.

    Attributes:
        legs: the input irreps of the part's layer (``x``, ``y``; one leg for a linear part).
        out: the part's own output layout (the entries its paths write, in its order).
        paths: its fuse paths (``node`` 0), weight offsets into the part's own vector.
        linears: its linear blocks (a linear part has no paths).
        weight_index: for each weight of the part, its index in the e3nn weight vector
            (``-1``: a zero the e3nn layer does not have, e.g. the ``u >= v`` half of ``u<vw``).
        out_src, out_dst: columns of the part's output and where they add in the full output.
        external: whether the compiled layer takes its weights in the forward call.
        mode: the fuse node's weight mode (one mode, or ``a+b`` when the paths mix them).
    """

    legs: tuple[Irreps, ...]
    out: Irreps
    paths: tuple[Path, ...]
    linears: tuple[LinearBlock, ...]
    weight_index: tuple[int, ...]
    out_src: tuple[int, ...]
    out_dst: tuple[int, ...]
    external: bool
    mode: str

    @property
    def weight_numel(self) -> int:
        """Number of weights the part's layer takes."""
        return len(self.weight_index)


def _diagram(spec: PartSpec, name: str) -> Diagram:
    legs = tuple(Leg(n, irreps) for n, irreps in zip(("x", "y"), spec.legs))
    ops = tuple(Operand("leg", i) for i in range(len(legs)))
    if spec.linears:
        node: FuseNode | LinearNode = LinearNode("out", ops, spec.out)
    else:
        node = FuseNode("out", ops, True, spec.mode, spec.external, None, spec.out)
    return Diagram(name, "O3", legs, (node,), "out", spec.out)


def compile_part(spec: PartSpec, name: str, backend: str, options: dict[str, Any]) -> Any:
    """A compiled layer for one part: its paths planned and lowered by ``backend``.

    The coefficients are the e3nn layer's own (read per instruction), not recomputed from a
    normalisation option, so they also carry e3nn's ``path_weight``, ``in1_var`` … factors.

    Raises:
        FusionError: (``CUnsupportedError`` / ``TritonUnsupportedError``) when the backend
            does not lower the part.
    """
    d = _diagram(spec, name)
    numel = sum(p.weight_numel for p in spec.paths) + sum(b.weight_numel for b in spec.linears)
    paths = Paths(d, spec.paths, spec.linears, (numel,))
    layer = build_from_paths(paths, backend, options.get("spec_name", f"e3nn {name}"),
                             options.get("strategy", "auto"),
                             options.get("batch", DEFAULT_BATCH), options.get("hoist", True))
    layer.irreps_in, layer.irreps_out = list(spec.legs), spec.out
    return layer


def _pad(w: torch.Tensor) -> torch.Tensor:
    """The weights with one zero appended (index ``-1`` of a part's weight index reads it)."""
    return torch.cat([w, w.new_zeros((*w.shape[:-1], 1))], dim=-1)


class E3nnComposite(torch.nn.Module):
    """A converted e3nn layer made of compiled parts; forward and weights as e3nn's.

    Attributes:
        parts: the compiled layers (a ``ModuleList``).
        weight: the e3nn weight vector when the weights are internal (else an empty buffer).
        irreps_in, irreps_out, weight_numel, source: as a compiled layer's.
    """

    def __init__(self, specs: Sequence[PartSpec], layers: Sequence[torch.nn.Module],
                 info: dict[str, Any]) -> None:
        super().__init__()
        self.parts = torch.nn.ModuleList(layers)
        self.num_inputs: int = info["num_inputs"]
        self.extra_input: str | None = info.get("extra_input")
        self.weight_numel: int = info["weight_numel"]
        self.internal_weights: bool = info["internal"]
        self.shared_weights: bool = info["shared"]
        self.dim_out: int = info["irreps_out"].dim
        self.irreps_in, self.irreps_out = info["irreps_in"], info["irreps_out"]
        self.e3nn_type: str = info["type"]
        weight = info.get("weight")
        if self.internal_weights and self.weight_numel and weight is not None:
            self.weight = torch.nn.Parameter(weight.detach().clone().reshape(-1))
        else:  # external, or held by the (single) part itself
            self.register_buffer("weight", torch.zeros(0), persistent=False)
        bias_cols, bias = info.get("bias_columns", ()), info.get("bias")
        self.bias_numel = len(bias_cols)
        self.register_buffer("_bias_cols", torch.tensor(bias_cols, dtype=torch.long),
                             persistent=False)
        if self.bias_numel and self.internal_weights:
            self.bias = torch.nn.Parameter(bias.detach().clone().reshape(-1))
        else:
            self.register_buffer("bias", torch.zeros(0), persistent=False)
        for i, spec in enumerate(specs):
            idx = torch.tensor([j if j >= 0 else self.weight_numel for j in spec.weight_index],
                               dtype=torch.long)
            self.register_buffer(f"_widx_{i}", idx, persistent=False)
            self.register_buffer(f"_src_{i}", torch.tensor(spec.out_src, dtype=torch.long),
                                 persistent=False)
            self.register_buffer(f"_dst_{i}", torch.tensor(spec.out_dst, dtype=torch.long),
                                 persistent=False)
        self.source = _composite_source(self, specs, layers)

    def _given(self, value: torch.Tensor | None, own: torch.Tensor, numel: int,
               what: str) -> torch.Tensor | None:
        if value is not None:
            return value
        if numel and not self.internal_weights:
            raise TypeError(f"this layer takes external {what}: pass {what} [..., {numel}] "
                            f"(as the e3nn {self.e3nn_type} did)")
        return own if numel and own.numel() else None

    def _inputs(self, args: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        inputs = list(args)
        if self.extra_input == "square":  # a tensor square: both legs are x
            inputs = inputs * 2
        elif self.extra_input == "ones":  # a linear map as a product with the scalar 1
            inputs.append(inputs[0].new_ones((*inputs[0].shape[:-1], 1)))
        return inputs

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """As the e3nn layer: ``(x, y[, weight])``, ``(x[, weight])``, ``(x[, weight, bias])``."""
        rest = [*args[self.num_inputs:], None, None]
        inputs = self._inputs(args[: self.num_inputs])
        w = self._given(rest[0], self.weight, self.weight_numel, "weight")
        b = self._given(rest[1], self.bias, self.bias_numel, "bias")
        batch = torch.broadcast_shapes(*(t.shape[:-1] for t in inputs))
        if not self.shared_weights:
            batch = torch.broadcast_shapes(batch, *(t.shape[:-1] for t in (w, b) if t is not None))
        out = inputs[0].new_zeros((*batch, self.dim_out))
        padded = _pad(w) if w is not None else None
        for i, part in enumerate(self.parts):
            idx = getattr(self, f"_widx_{i}")
            call = [*inputs]
            if idx.numel() and padded is not None:
                call.append(padded.index_select(-1, idx))
            result = part(*call).expand((*batch, -1))
            src, dst = getattr(self, f"_src_{i}"), getattr(self, f"_dst_{i}")
            out = out.index_add(-1, dst, result.index_select(-1, src))
        if b is not None:
            out = out.index_add(-1, self._bias_cols, b.expand((*batch, -1)))
        return out


def _composite_source(m: E3nnComposite, specs: Sequence[PartSpec],
                      layers: Sequence[torch.nn.Module]) -> str:
    lines = [f"# fusiondsl conversion of an e3nn {m.e3nn_type}: {len(layers)} compiled part(s)",
             f"# irreps_out {m.irreps_out}: {m.dim_out} columns, zero where no part writes",
             f"# weights: {m.weight_numel} in e3nn's layout "
             f"({'internal' if m.internal_weights else 'external'}), gathered per part"]
    for i, (spec, layer) in enumerate(zip(specs, layers)):
        lines += ["", f"# ---- part {i}: {spec.mode} {len(spec.paths) or len(spec.linears)} "
                  f"path(s) -> {spec.out}, {len(spec.out_src)} output columns", layer.source]
    return "\n".join(lines)


def identity_part(spec: PartSpec, irreps_out: Irreps, weight_numel: int) -> bool:
    """Whether a single part's layer is the whole e3nn layer (same columns, same weights)."""
    columns = tuple(range(irreps_out.dim))
    return (spec.out_src == columns and spec.out_dst == columns
            and spec.weight_index == tuple(range(weight_numel)) and spec.out.dim == irreps_out.dim)


def columns(irreps: Irreps, entry: int, channels: Sequence[int] | None = None) -> list[int]:
    """The output columns of one entry (``mul_ir`` layout), optionally of some channels only."""
    start, _ = irreps.slices[entry]
    mul_ir = irreps[entry]
    chans = range(mul_ir.mul) if channels is None else channels
    return [start + c * mul_ir.ir.dim + m for c in chans for m in range(mul_ir.ir.dim)]


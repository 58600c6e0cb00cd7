"""An e3nn ``TensorProduct`` (any subclass, ``TensorSquare`` included) as compiled parts.

Every instruction becomes one fusiondsl path with e3nn's own coefficient (``path_weight``,
which carries the normalisation and any ``in1_var``/``out_var``/user path weights) times the
sign by which the installed e3nn's coupling differs from fusiondsl's
(:mod:`fusiondsl.nn.interop_convention`). ``uvu<v`` becomes a ``uvuv`` path whose ``u < v``
channels are gathered; ``u<vw`` a ``uvw`` path whose ``u >= v`` weights are zero. Weight
offsets keep e3nn's instruction order, so the weight vector carries over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.core.irreps import Irrep, Irreps, MulIr
from fusiondsl.ir.paths import Path
from fusiondsl.nn.interop_convention import signs
from fusiondsl.nn.interop_parts import (
    E3nnComposite,
    PartSpec,
    columns,
    compile_part,
    identity_part,
)

MODES = ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv", "uvu<v", "u<vw")


def irreps_from_e3nn(irreps: Any) -> Irreps:
    """Convert an ``e3nn.o3.Irreps`` (anything iterating as (mul, (l, p)))."""
    return Irreps(tuple(MulIr(int(mul), Irrep(2 * int(ir.l), int(ir.p))) for mul, ir in irreps))


@dataclass(frozen=True)
class Instr:
    """One e3nn instruction as read: entries, mode, e3nn coefficient, weights' place."""

    i_in1: int
    i_in2: int
    i_out: int
    mode: str
    has_weight: bool
    coefficient: float
    shape: tuple[int, ...]
    offset: int


@dataclass
class _Builder:
    """Collects one part's paths, weight index and output columns."""

    legs: tuple[Irreps, Irreps]
    irreps_out: Irreps
    external: bool
    paths: list[Path] = field(default_factory=list)
    entries: list[MulIr] = field(default_factory=list)
    entry_of: dict[int, int] = field(default_factory=dict)
    windex: list[int] = field(default_factory=list)
    src: list[int] = field(default_factory=list)
    dst: list[int] = field(default_factory=list)
    width: int = 0

    def entry(self, mul_ir: MulIr, dst: list[int], src_channels: Sequence[int] | None) -> int:
        """A new output entry of the part, its (chosen) columns added to ``dst``."""
        k = len(self.entries)
        self.entries.append(mul_ir)
        chans = range(mul_ir.mul) if src_channels is None else src_channels
        d = mul_ir.ir.dim
        self.src += [self.width + c * d + m for c in chans for m in range(d)]
        self.dst += dst
        self.width += mul_ir.dim
        return k

    def shared_entry(self, i_out: int) -> int:
        """The part's entry for e3nn output entry ``i_out`` (made on first use)."""
        if i_out not in self.entry_of:
            self.entry_of[i_out] = self.entry(self.irreps_out[i_out],
                                              columns(self.irreps_out, i_out), None)
        return self.entry_of[i_out]

    def add(self, ins: Instr, sign: float) -> None:
        """One instruction as one path (the triangular modes through their square forms)."""
        a, b = self.legs[0][ins.i_in1], self.legs[1][ins.i_in2]
        out = self.irreps_out[ins.i_out]
        mode, shape, windex = ins.mode, ins.shape, list(range(ins.offset, ins.offset
                                                              + math.prod(ins.shape)))
        if ins.mode == "uvu<v":
            pairs = _pairs(a.mul)
            entry = self.entry(MulIr(a.mul * a.mul, out.ir), columns(self.irreps_out, ins.i_out),
                               [u * a.mul + v for u, v in pairs])
            mode, shape, out_mul = "uvuv", (a.mul, a.mul), a.mul * a.mul
            windex = [ins.offset + pairs.index((u, v)) if u < v else -1
                      for u in range(a.mul) for v in range(a.mul)]
        else:
            entry = self.shared_entry(ins.i_out)
            out_mul = out.mul
        if ins.mode == "u<vw":
            pairs, w = _pairs(a.mul), out.mul
            mode, shape = "uvw", (a.mul, a.mul, w)
            windex = [ins.offset + pairs.index((u, v)) * w + c if u < v else -1
                      for u in range(a.mul) for v in range(a.mul) for c in range(w)]
        weighted = ins.has_weight
        self.paths.append(Path(len(self.paths), 0, (ins.i_in1, ins.i_in2), (a.ir, b.ir),
                               (a.mul, b.mul), (), out.ir, entry, out_mul, mode,
                               shape if weighted else None, len(self.windex) if weighted else 0,
                               ins.coefficient * sign))
        if weighted:
            self.windex += windex

    def spec(self) -> PartSpec:
        """The finished part."""
        modes = sorted({p.mode for p in self.paths})
        return PartSpec(self.legs, Irreps(tuple(self.entries)), tuple(self.paths), (),
                        tuple(self.windex), tuple(self.src), tuple(self.dst),
                        self.external and bool(self.windex), "+".join(modes))


def _pairs(mul: int) -> list[tuple[int, int]]:
    """``torch.triu_indices(mul, mul, 1)`` order: (0, 1), (0, 2), …, (1, 2), …."""
    return [(u, v) for u in range(mul) for v in range(u + 1, mul)]


def read_instructions(tp: Any) -> list[Instr]:
    """The instructions of an e3nn product, with weight offsets; empty ones dropped.

    Raises:
        ValueError: for a connection mode this e3nn release has and fusiondsl does not know.
    """
    out, offset = [], 0
    for ins in tp.instructions:
        if ins.connection_mode not in MODES:
            raise ValueError(f"e3nn connection mode {ins.connection_mode!r} is not supported "
                             f"(known: {', '.join(MODES)})")
        shape = tuple(int(s) for s in ins.path_shape)
        numel = math.prod(shape) if ins.has_weight else 0
        if 0 not in shape:
            out.append(Instr(ins.i_in1, ins.i_in2, ins.i_out, ins.connection_mode,
                             bool(ins.has_weight), float(ins.path_weight), shape, offset))
        offset += numel
    return out


def _legs(tp: Any) -> tuple[tuple[Irreps, Irreps], list[list[int]]]:
    """Input irreps with empty (``0x``) entries dropped, and the old → new entry index."""
    legs, index = [], []
    for irreps in (tp.irreps_in1, tp.irreps_in2):
        full = irreps_from_e3nn(irreps)
        kept = [i for i, m in enumerate(full) if m.mul > 0]
        legs.append(Irreps(tuple(full[i] for i in kept)))
        index.append([kept.index(i) if i in kept else -1 for i in range(len(full))])
    return (legs[0], legs[1]), index


def _specs(tp: Any, instrs: list[Instr], split: bool, external: bool) -> list[PartSpec]:
    legs, index = _legs(tp)
    irreps_out = irreps_from_e3nn(tp.irreps_out)
    keys = [(i.mode, i.has_weight, legs[0][index[0][i.i_in1]].ir.l,
             legs[1][index[1][i.i_in2]].ir.l, irreps_out[i.i_out].ir.l) for i in instrs]
    found = signs(tp, keys)
    groups: dict[tuple[str, bool] | None, list[int]] = {}
    for n, ins in enumerate(instrs):
        groups.setdefault((ins.mode, ins.has_weight) if split else None, []).append(n)
    specs = []
    for members in groups.values():
        b = _Builder(legs, irreps_out, external)
        for i_out in sorted({instrs[n].i_out for n in members if instrs[n].mode != "uvu<v"}):
            b.shared_entry(i_out)  # e3nn's order, so that a whole product maps one to one
        for n in members:
            ins = instrs[n]
            b.add(Instr(index[0][ins.i_in1], index[1][ins.i_in2], ins.i_out, ins.mode,
                        ins.has_weight, ins.coefficient, ins.shape, ins.offset), found[keys[n]])
        specs.append(b.spec())
    return specs


def convert_tensor_product(tp: Any, name: str, backend: str, options: dict[str, Any],
                           num_inputs: int = 2) -> torch.nn.Module:
    """A module equal to ``tp``: one compiled layer when that suffices, else a composite."""
    instrs = read_instructions(tp)
    internal = bool(tp.internal_weights) and int(tp.weight_numel) > 0
    irreps_out = irreps_from_e3nn(tp.irreps_out)
    specs = _specs(tp, instrs, False, not internal)
    if (num_inputs == 2 and len(specs) == 1
            and identity_part(specs[0], irreps_out, int(tp.weight_numel))):
        try:
            layer = compile_part(specs[0], name, backend, options)
        except (FusionError, NotImplementedError):
            if backend == "einsum":
                raise
        else:
            if internal:
                with torch.no_grad():
                    layer.weight.copy_(tp.weight.detach().reshape(-1))
            layer.e3nn_type = type(tp).__name__
            return layer
    return _composite(tp, instrs, name, backend, options, num_inputs)


def _composite(tp: Any, instrs: list[Instr], name: str, backend: str, options: dict[str, Any],
               num_inputs: int) -> torch.nn.Module:
    specs = [s for s in _specs(tp, instrs, False, True) if s.paths]
    try:
        layers = [compile_part(s, f"{name}_{i}", backend, options) for i, s in enumerate(specs)]
    except (FusionError, NotImplementedError):
        if backend == "einsum":
            raise
        # one layer per connection mode: the c and triton backends refuse mixed modes
        specs = [s for s in _specs(tp, instrs, True, True) if s.paths]
        layers = [compile_part(s, f"{name}_{i}", backend, options) for i, s in enumerate(specs)]
    legs = [irreps_from_e3nn(tp.irreps_in1), irreps_from_e3nn(tp.irreps_in2)][:num_inputs]
    info = {"num_inputs": num_inputs, "weight_numel": int(tp.weight_numel),
            "internal": bool(tp.internal_weights), "shared": bool(tp.shared_weights),
            "irreps_in": legs, "irreps_out": irreps_from_e3nn(tp.irreps_out),
            "type": type(tp).__name__, "weight": tp.weight,
            "extra_input": "square" if num_inputs == 1 else None}
    return E3nnComposite(specs, layers, info)

"""``to_fd``: an e3nn layer as ``.fd`` text, checked to compile to the same paths.

A candidate text is written from the layer's irreps and connection mode, parsed and expanded
under each normalisation; it is returned only when its paths are exactly e3nn's instructions
(same entries, weight shapes and coefficients, in the sign convention of the installed e3nn).
So whatever ``to_fd`` prints compiles to an equal layer; what it cannot print it names.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.nn.e3nn_kind import E3nnUnsupportedError, kind
from fusiondsl.nn.interop_convention import ConventionError, signs
from fusiondsl.nn.interop_tp import irreps_from_e3nn, read_instructions
from fusiondsl.nn.program import loads
from fusiondsl.passes.expand import expand

NORMALIZATIONS = tuple(itertools.product(("component", "norm", "none"),
                                         ("element", "path", "none")))
BINARY = ("uvw", "uvu", "uvv", "uuw", "uvuv")


@dataclass(frozen=True)
class FdText:
    """The text, the compile options it needs, and e3nn's weight index for each weight."""

    text: str
    options: dict[str, str]
    weight_order: tuple[int, ...]


def _refuse(obj: Any, why: str) -> Exception:
    return E3nnUnsupportedError(f"the .fd language cannot express this e3nn "
                                f"{type(obj).__name__} exactly: {why} (from_e3nn converts it)")


def fd_text(obj: Any, name: str) -> FdText:
    """The checked ``.fd`` text of an e3nn layer.

    Raises:
        E3nnUnsupportedError: naming what the language cannot express.
    """
    what = kind(obj)
    if what is None:
        raise _refuse(obj, "not an e3nn TensorProduct or Linear")
    if what == "tensor_square":
        raise _refuse(obj, "TensorSquare's u<v channel pairs (modes uvu<v, u<vw) are not a "
                      "language construct")
    for irreps in _all_irreps(obj):
        if any(mul == 0 for mul, _ in irreps):
            raise _refuse(obj, f"irreps {irreps} have an empty (0x) entry")
    if what == "linear":
        return _linear(obj, name)
    return _product(obj, name)


def _all_irreps(obj: Any) -> list[Any]:
    names = ("irreps_in", "irreps_in1", "irreps_in2", "irreps_out")
    return [getattr(obj, n) for n in names if hasattr(obj, n)]


def _mode(obj: Any) -> tuple[str, str]:
    """The one weight mode of the text and its clause (``weights uvu external``)."""
    instrs = read_instructions(obj)
    if not instrs:
        raise _refuse(obj, "an empty instruction list (a zero layer) is no diagram")
    modes = {(i.mode, i.has_weight) for i in instrs}
    if len(modes) > 1:
        raise _refuse(obj, "it mixes connection modes " + ", ".join(
            f"{m}{'' if w else ' (no weights)'}" for m, w in sorted(modes)))
    (mode, weighted), = modes
    if mode in BINARY and not weighted:
        raise _refuse(obj, f"connection mode {mode} without weights")
    if mode not in (*BINARY, "uuu"):
        raise _refuse(obj, f"connection mode {mode}")
    dsl = "none" if mode == "uuu" and not weighted else mode
    external = not obj.internal_weights and dsl != "none"
    clause = "" if dsl == "none" else f" weights {dsl}" + (" external" if external else "")
    return dsl, clause


def _product(tp: Any, name: str) -> FdText:
    _, clause = _mode(tp)
    i1, i2, out = (irreps_from_e3nn(x) for x in (tp.irreps_in1, tp.irreps_in2, tp.irreps_out))
    body = (f"diagram {name}(x: {i1}, y: {i2}) -> z: {out} {{\n"
            f"    z = fuse(x, y){clause}\n}}\n")
    instrs = read_instructions(tp)
    keys = [(i.mode, i.has_weight, i1[i.i_in1].ir.l, i2[i.i_in2].ir.l, out[i.i_out].ir.l)
            for i in instrs]
    try:
        found = signs(tp, keys)
    except ConventionError as err:
        raise _refuse(tp, str(err)) from None
    flipped = sorted({k[2:] for k in keys if found[k] < 0})
    if flipped:
        raise _refuse(tp, "the installed e3nn couples " + ", ".join(
            f"{a} ⊗ {b} → {c}" for a, b, c in flipped) + " with the opposite sign of the "
            "language's convention (e3nn 0.6's wigner_3j)")
    wanted = {}
    for ins, key in zip(instrs, keys):
        k = (ins.i_in1, ins.i_in2, ins.i_out)
        if k in wanted:
            raise _refuse(tp, f"instruction {k} appears twice")
        shape = ins.shape if ins.has_weight else None
        wanted[k] = (shape, ins.coefficient * found[key], ins.offset)
    return _match(tp, body, wanted, lambda p: (*p.inputs, p.out_entry),
                  lambda p: (p.weight_shape, p.coefficient, p.weight_offset), "paths")


def _linear(lin: Any, name: str) -> FdText:
    if not lin.internal_weights:
        raise _refuse(lin, "a linear node's weights are internal (this Linear's are external)")
    if any(ins.i_in == -1 for ins in lin.instructions):
        raise _refuse(lin, "biases")
    i, o = irreps_from_e3nn(lin.irreps_in), irreps_from_e3nn(lin.irreps_out)
    body = f"diagram {name}(x: {i}) -> z: {o} {{\n    z = linear(x)\n}}\n"
    wanted, offset = {}, 0
    for ins in lin.instructions:
        shape = tuple(int(s) for s in ins.path_shape)
        wanted[(ins.i_in, ins.i_out)] = (shape, float(ins.path_weight), offset)
        offset += math.prod(shape)
    return _match(lin, body, wanted, lambda b: (b.in_entry, b.out_entry),
                  lambda b: ((b.mul_in, b.mul_out), b.coefficient, b.weight_offset), "linears")


def _match(obj: Any, body: str, wanted: dict, key: Any, value: Any, field: str) -> FdText:
    """The first normalisation under which the text's paths are exactly ``wanted``."""
    try:
        d = loads(body).diagram()
    except FusionError as err:
        message = str(err).splitlines()[0].split("error: ")[-1]
        raise _refuse(obj, message) from None
    why = "its instructions are not every path the language makes"
    for irrep_norm, path_norm in NORMALIZATIONS:
        got = {key(p): value(p) for p in getattr(expand(d, irrep_norm, path_norm), field)}
        if set(got) != set(wanted):
            break
        if all(got[k][0] == wanted[k][0] and math.isclose(got[k][1], wanted[k][1],
                                                         rel_tol=1e-12, abs_tol=1e-300)
               for k in got):
            return _found(body, irrep_norm, path_norm, got, wanted)
        why = ("its path coefficients are no normalisation the language has (custom "
               "path_weight or in1_var/in2_var/out_var)")
    raise _refuse(obj, why)


def _found(body: str, irrep_norm: str, path_norm: str, got: dict, wanted: dict) -> FdText:
    order: list[int] = []
    for k in sorted(got, key=lambda k: got[k][2]):
        shape = wanted[k][0]
        if shape is not None:
            order += range(wanted[k][2], wanted[k][2] + math.prod(shape))
    options = {"irrep_normalization": irrep_norm, "path_normalization": path_norm}
    head = (f"# from e3nn: compile with irrep_normalization={irrep_norm!r}, "
            f"path_normalization={path_norm!r}\n")
    if order != sorted(order):
        head += "# the weights are e3nn's in another order (from_e3nn carries them over)\n"
    return FdText(head + body, options, tuple(order))

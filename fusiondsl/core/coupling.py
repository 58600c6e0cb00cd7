"""Coupling tensors a lowering needs, by name, and their rendering as source literals.

Generated modules embed their coefficients as nonzero lists so that they need only torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fusiondsl.core import cg
from fusiondsl.core.irreps import Group, Irrep


@dataclass(frozen=True)
class Coupling:
    """One named coefficient tensor (float64 values; complex-basis ones are real too)."""

    name: str
    values: np.ndarray
    doc: str


def fuse_coupling(group: Group, a: Irrep, b: Irrep, c: Irrep) -> Coupling:
    """The norm-1 coupling tensor of one step ``a ⊗ b → c`` (e3nn's wigner_3j in O3/SO3).

    In SU2 it is the Condon–Shortley CG divided by sqrt(2c + 1), so that component
    normalisation (× sqrt(2c + 1)) gives back the standard Clebsch–Gordan coefficients.
    """
    if group == "SU2":
        values = np.real(cg.su2_cg(a.j2, b.j2, c.j2)) / math.sqrt(c.dim)
        return Coupling(f"cg_{a.j2}_{b.j2}_{c.j2}", values,
                        f"SU2 CG <{a} {b} | {c}> / sqrt({c.dim}) (spins as 2j in the name)")
    values = cg.real_w3j(a.l, b.l, c.l)
    return Coupling(f"w3j_{a.l}_{b.l}_{c.l}", values, f"wigner_3j({a.l}, {b.l}, {c.l})")


def vertex_coupling(group: Group, a: Irrep, b: Irrep, c: Irrep) -> Coupling:
    """A graph vertex: e3nn's wigner_3j (real basis) or the Wigner 3j symbol (SU2)."""
    if group == "SU2":
        values = np.real(cg.su2_3j(a.j2, b.j2, c.j2))
        return Coupling(f"tj_{a.j2}_{b.j2}_{c.j2}", values,
                        f"Wigner 3j symbol ({a} {b} {c}) (spins as 2j in the name)")
    return fuse_coupling(group, a, b, c)


def metric(ir: Irrep) -> Coupling:
    """The SU2 1j symbol (-1)^(j - m) δ(m', -m) that joins two vertex slots."""
    return Coupling(f"g_{ir.j2}", np.real(cg.su2_metric(ir.j2)), f"1j symbol of spin {ir}")


def render_literal(c: Coupling) -> str:
    """``NAME = ((shape), [(i, j, k, value), ...])`` with exact float reprs, nonzeros only."""
    idx = np.argwhere(np.abs(c.values) > 1e-15)
    entries = ", ".join(
        "(" + ", ".join(str(int(i)) for i in ix) + f", {float(c.values[tuple(ix)])!r})"
        for ix in idx
    )
    shape = "(" + ", ".join(map(str, c.values.shape)) + ("," if c.values.ndim == 1 else "") + ")"
    return f"{c.name.upper()} = ({shape}, [{entries}])"

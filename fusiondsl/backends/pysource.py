"""What every generated Python module shares: names, the preamble, coefficient literals.

The einsum, C and Triton backends all write a Python module (the layer class, and for C and
Triton the code that launches the kernels); these are the pieces they write the same way.
"""

from __future__ import annotations

import keyword

import numpy as np

from fusiondsl.backends.emit import Emitter
from fusiondsl.backends.names import COMPILER_NAMES
from fusiondsl.core.coupling import Coupling
from fusiondsl.ir.paths import Path
from fusiondsl.plan.contraction import Contraction

RESERVED = {"self", "torch", "math", "weight", "edge_index", "batch", "n", "t", "result"}
REGENERATE = "python -m fusiondsl.cli.gallery"


def pyname(name: str) -> str:
    """A safe Python identifier for a user's name."""
    ok = name.isidentifier() and not keyword.iskeyword(name) and name not in RESERVED
    return name if ok else f"{name}_"


def class_name(name: str) -> str:
    """``fusion_block`` → ``FusionBlock``."""
    name = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)

    if not name.isidentifier() or keyword.iskeyword(name) or name in COMPILER_NAMES:
        return f"Layer{name}"  # None, True, False are keywords once capitalised
    return name


DTYPES = {"real": "torch.get_default_dtype()",
           "complex": "torch.complex128 if torch.get_default_dtype() == torch.float64 "
                      "else torch.complex64"}


def outer_product(equation: str, args: list[str]) -> str:
    """``zub,zua->zuba`` as a broadcast multiply (torch's einsum makes it a slow bmm)."""
    ins, out = equation.split("->")
    a, b = ins.split(",")
    prefix = out[:-2]
    if (len(args) == 2 and a[:-1] == b[:-1] == prefix and len(a) == len(prefix) + 1
            and set(out[-2:]) == {a[-1], b[-1]}):
        first, second = (args[0], args[1]) if out[-2] == a[-1] else (args[1], args[0])
        return f"{first}[..., :, None] * {second}[..., None, :]"
    return f"torch.einsum({equation!r}, {', '.join(args)})"


def path_comment(p: Path) -> str:
    """``path 3: 1o ⊗ 2e → 1o (uvw, 16×1 → 16)``: the line every path's code starts with."""
    shape = "×".join(map(str, p.muls)) + f" → {p.out_mul}"
    return f"path {p.index}: {p.describe()} ({p.mode}, {shape})"


def emit_contraction(em: Emitter, c: Contraction, names: list[str]) -> str:
    """Emit the pairwise einsums of a contraction; returns the variable holding the result."""
    names = list(names)
    for n, step in enumerate(c.steps):
        args = [names[i] for i in step.positions]
        for i in sorted(step.positions, reverse=True):
            del names[i]
        em.line(f"t{n} = torch.einsum({step.equation!r}, {', '.join(args)})")
        names.append(f"t{n}")
    return names[-1]


def emit_exact_apply(em: Emitter, names: list[str]) -> None:
    """``_apply`` that rebuilds coefficient buffers from their exact float64 literals.

    Without it, ``layer.double()`` on a layer built in float32 would keep float32-rounded
    coefficients (relative error ~1e-8 instead of 1e-16).
    """
    if not names:
        return
    em.line("def _apply(self, fn, recurse=True):")
    with em.indent():
        em.line('"""After .to()/.double()/.cuda(), rebuild the coefficients from exact values."""')
        em.line("super()._apply(fn, recurse)")
        em.line(f"for name in {tuple(names)!r}:")
        with em.indent():
            em.line("old = getattr(self, name)")
            em.line("exact = _sparse(*globals()[name.upper()])")
            em.line("setattr(self, name, exact.to(device=old.device, dtype=old.dtype))")
        em.line("return self")
    em.line()


def emit_preamble(em: Emitter, couplings: list[Coupling]) -> None:
    """End of the module docstring, imports, the ``_sparse`` helper and coefficient literals."""
    em.line(f"Do not edit: regenerate with `{REGENERATE}`.")
    em.line('"""')
    em.line()
    em.line("import torch")
    em.line()
    em.line()
    emit_sparse_helper(em)
    for c in couplings:
        em.comment(c.doc)
        em.line(render_literal(c))
    em.line()


def emit_sparse_helper(em: Emitter) -> None:
    """The ``_sparse`` helper every generated module uses to build its coefficient buffers."""
    em.line("def _sparse(shape, entries):")
    with em.indent():
        em.line('"""A dense float64 tensor from its nonzero (index..., value) entries."""')
        em.line("t = torch.zeros(shape, dtype=torch.float64)")
        em.line("for *index, value in entries:")
        with em.indent():
            em.line("t[tuple(index)] = value")
        em.line("return t")
    em.line()
    em.line()


def render_literal(c: Coupling) -> str:
    """``NAME = ((shape), [(i, j, k, value), ...])`` with exact float reprs, nonzeros only."""
    idx = np.argwhere(np.abs(c.values) > 1e-15)
    entries = ", ".join(
        "(" + ", ".join(str(int(i)) for i in ix) + f", {float(c.values[tuple(ix)])!r})"
        for ix in idx
    )
    shape = "(" + ", ".join(map(str, c.values.shape)) + ("," if c.values.ndim == 1 else "") + ")"
    return f"{c.name.upper()} = ({shape}, [{entries}])"

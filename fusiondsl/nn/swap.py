"""``swap``: replace the e3nn products inside any ``torch.nn.Module`` by equal fusiondsl layers.

>>> import torch, fusiondsl
>>> report = fusiondsl.swap(torch.nn.Sequential(torch.nn.Linear(2, 2)))
>>> print(report)
swap (einsum): 0 replaced, 0 left

Every e3nn ``TensorProduct`` (its subclasses and ``TensorSquare`` included) and ``o3.Linear``
is converted with :func:`fusiondsl.from_e3nn` (weights carried over, the coupling convention
read from the installed e3nn), moved to the old module's device and dtype, checked against it
on random inputs, and put in its place. The report says what was replaced, and what was left
and why: e3nn modules that are no product (spherical harmonics, gates, radial MLPs: nothing to
convert), products it refuses, products whose check failed.

MACE's ``SymmetricContraction`` is left, and said so. It is, exactly, a sum over correlation
orders ν ≤ 3 of symmetric powers ``A ⊗ … ⊗ A`` (the language's repeated-leg ``fuse``) projected
by MACE's generalised CG matrices ``U``, with weights chosen per chemical element
(``w = node_attrs @ W``). Two things keep it from an exact drop-in today: (1) MACE's weights
are coordinates in the basis of its ``U`` (computed by ``mace.tools.cg.U_matrix_real``), while
fusiondsl's symmetric pruning keeps a different basis of the same space, so carrying them over
needs the change-of-basis matrix between the two (a least-squares fit of ``U`` against the
pruned paths, exact only if the spans agree, which has not been verified); (2) it needs
per-node external weights on a channel-wise symmetric power, with the per-element mixing in
front. Neither is faked here: the module is reported as left.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from fusiondsl.nn.e3nn_kind import E3nnUnsupportedError, e3nn_names, kind
from fusiondsl.nn.interop import from_e3nn

Action = Literal["replaced", "left"]
LEFT_NOT_A_PRODUCT = "not a tensor product or linear map (nothing to convert)"
SYMMETRIC_CONTRACTION = ("MACE SymmetricContraction: a sum of symmetric powers with per-element "
                         "weights in MACE's U basis; not expressed exactly yet (see "
                         "fusiondsl.nn.swap), left as it is")


@dataclass(frozen=True)
class SwapEntry:
    """One module the swap looked at: where, what, what it did and why."""

    name: str
    type: str
    action: Action
    why: str


@dataclass(frozen=True)
class SwapReport:
    """What :func:`swap` replaced and what it left, in module order."""

    backend: str
    entries: tuple[SwapEntry, ...]

    @property
    def replaced(self) -> list[SwapEntry]:
        """The modules replaced by compiled layers."""
        return [e for e in self.entries if e.action == "replaced"]

    @property
    def left(self) -> list[SwapEntry]:
        """The e3nn (and MACE) modules left as they were."""
        return [e for e in self.entries if e.action == "left"]

    def __str__(self) -> str:
        lines = [f"swap ({self.backend}): {len(self.replaced)} replaced, {len(self.left)} left"]
        lines += [f"  {e.action:<8} {e.name or '<model>'} ({e.type}): {e.why}"
                  for e in self.entries]
        return "\n".join(lines)


def _is_symmetric_contraction(m: torch.nn.Module) -> bool:
    return type(m).__name__ == "SymmetricContraction" and "mace" in type(m).__module__


def _like(new: torch.nn.Module, old: torch.nn.Module) -> torch.nn.Module:
    """``new`` on the old module's device and floating dtype, its weights as trainable."""
    tensors = [t for t in (*old.parameters(), *old.buffers()) if t.is_floating_point()]
    if tensors:
        new = new.to(device=tensors[0].device, dtype=tensors[0].dtype)
    frozen = [p for p in old.parameters() if not p.requires_grad]
    if frozen:
        for p in new.parameters():
            p.requires_grad_(False)
    return new


def _example(m: torch.nn.Module, what: str) -> list[torch.Tensor]:
    """Random inputs for the check, in the module's dtype, e3nn's forward signature."""
    tensors = [t for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
    opts = {"dtype": tensors[0].dtype if tensors else torch.get_default_dtype(),
            "device": tensors[0].device if tensors else None}
    gen = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(**opts)

    if what == "linear":
        xs = [rand(2, m.irreps_in.dim)]
    elif what == "tensor_square":
        xs = [rand(2, m.irreps_in.dim)]
    else:
        xs = [rand(2, m.irreps_in1.dim), rand(2, m.irreps_in2.dim)]
    if not m.internal_weights and (m.weight_numel or getattr(m, "bias_numel", 0)):
        xs.append(rand(*(() if m.shared_weights else (2,)), m.weight_numel))
        if getattr(m, "bias_numel", 0):
            xs.append(rand(m.bias_numel))
    return xs


def _check(new: torch.nn.Module, old: torch.nn.Module, what: str) -> str | None:
    """Why ``new`` differs from ``old`` on random inputs (``None``: it does not)."""
    xs = _example(old, what)
    with torch.no_grad():
        a, b = new(*xs), old(*xs)
    tol = 1e-10 if a.dtype == torch.float64 else 1e-4
    scale = max(1.0, float(b.abs().max())) if b.numel() else 1.0
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return None if diff <= tol * scale else f"check failed: max difference {diff:.3g}"


def _convert(m: torch.nn.Module, name: str, backend: str, check: bool,
             options: dict[str, Any]) -> tuple[torch.nn.Module | None, str]:
    what = kind(m)
    try:
        new = _like(from_e3nn(m, name=name.replace(".", "_") or "model", backend=backend,
                              **options), m)
    except (E3nnUnsupportedError, NotImplementedError, RuntimeError) as err:
        return None, str(err).splitlines()[0]
    if check:
        why = _check(new, m, what or "")
        if why is not None:
            return None, why
    parts = getattr(new, "parts", None)
    how = f"{len(parts)} compiled part(s) composed" if parts is not None else "one compiled layer"
    numel = getattr(m, "weight_numel", 0)
    weights = ("no weights" if not numel else f"{numel} weights carried over"
               if getattr(m, "internal_weights", True)
               else f"{numel} external weights per call, as before")
    return new, f"{backend}: {how}, {weights}"


def _set(model: torch.nn.Module, name: str, new: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _has_product(m: torch.nn.Module) -> bool:
    return any(kind(c) is not None and e3nn_names(c) for c in m.modules() if c is not m)


def _visit(target: torch.nn.Module, backend: str, check: bool,
           options: dict[str, Any]) -> list[SwapEntry]:
    entries, skip = [], []
    for name, m in list(target.named_modules()):
        if any(name.startswith(d + ".") for d in skip):
            continue  # inside a module already replaced or reported
        label = type(m).__name__
        if _is_symmetric_contraction(m):
            entries.append(SwapEntry(name, label, "left", SYMMETRIC_CONTRACTION))
        elif not e3nn_names(m):
            continue
        elif kind(m) is None:
            if _has_product(m):
                continue  # report the products inside instead
            entries.append(SwapEntry(name, label, "left", LEFT_NOT_A_PRODUCT))
        elif not name:
            entries.append(SwapEntry(name, label, "left", "the model is itself an e3nn layer: "
                                     "use fusiondsl.from_e3nn(model)"))
        else:
            new, why = _convert(m, name, backend, check, options)
            entries.append(SwapEntry(name, label, "replaced" if new else "left", why))
            if new is not None:
                _set(target, name, new)
        skip.append(name)
    return entries


def swap(model: torch.nn.Module, backend: str = "einsum", *, check: bool = True,
         inplace: bool = True, **options: Any) -> SwapReport | tuple[torch.nn.Module, SwapReport]:
    """Replace each e3nn ``TensorProduct`` / ``Linear`` in ``model`` by an equal compiled layer.

    Args:
        model: any module, changed in place.
        backend: ``einsum``, ``c`` or ``triton``, as :meth:`fusiondsl.Program.compile`.
        check: compare each new layer with the old one on random inputs before replacing it
            (1e-10 relative in float64, 1e-4 in float32); a module that fails is left.
        inplace: ``False`` changes a deep copy instead and returns it with the report.
        **options: compile options for :func:`fusiondsl.from_e3nn` (``strategy``, ``batch``…).

    Returns:
        The report; with ``inplace=False``, ``(swapped copy, report)``.
    """
    target = model if inplace else copy.deepcopy(model)
    report = SwapReport(backend, tuple(_visit(target, backend, check, options)))
    return report if inplace else (target, report)

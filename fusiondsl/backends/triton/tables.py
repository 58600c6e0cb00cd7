"""Coefficient tables of generated Triton kernels: built once per layer, per device and dtype.

A generated module lists its paths once per kernel set (a :class:`PathTable`: coupling chain,
path coefficient, entry offsets, weight offset). From that list this module builds, per
role, the three small tensors the kernel of that role reads:

- ``tab`` (int32): one descriptor row per path (each batch role's entry offset and dimension,
  the weight offset, where the path's entries start, the target's dimension), then per path
  and target component ``k`` the start of its entries (the next start ends them);
- ``idx`` (int32): per entry, the component of every other batch role (x0…, out; the target
  left out);
- ``coef`` (the accumulation dtype): per entry, the folded coefficient of the path's whole
  coupling chain times its path coefficient, rounded once from float64.

Entries are sorted by path, then by the target's component, so a kernel accumulates each
output component in registers over a contiguous range and writes it once. Kernel source and
JIT work therefore do not grow with the number of nonzero coefficients.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from fusiondsl.core.coupling import fuse_coupling
from fusiondsl.core.irreps import Group, Irrep

# One path: (operand irreps, intermediate labels, result irrep, coefficient,
#            entry offsets of x0… and out in their rows, weight offset).
PathRow = tuple[tuple[str, ...], tuple[str, ...], str, float, tuple[int, ...], int]


@dataclass(frozen=True, eq=False)
class PathTable:
    """The paths of one kernel set, in the order of its kernels' path classes.

    Attributes:
        group: ``O3`` or ``SO3``.
        num_operands: operands of every path (the batch roles are x0…, then out).
        rows: one :data:`PathRow` per path.
    """

    group: str
    num_operands: int
    rows: tuple[PathRow, ...]
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def row_width(self) -> int:
        """Ints per descriptor row: offset and dimension per batch role, then three more."""
        return 2 * (self.num_operands + 1) + 3

    def folded(self, q: int) -> np.ndarray:
        """Path ``q``'s coupling chain as one tensor ``[d0, …, d(n-1), d_out]``, scaled."""
        irs, labels, out, coefficient, _, _ = self.rows[q]
        group = cast(Group, self.group)
        ir = functools.partial(Irrep.parse, group=group)
        chain = [*labels, out]
        values = fuse_coupling(group, ir(irs[0]), ir(irs[1]), ir(chain[0])).values
        for s in range(1, len(irs) - 1):
            step = fuse_coupling(group, ir(chain[s - 1]), ir(irs[s + 1]), ir(chain[s]))
            values = np.tensordot(values, step.values, axes=([values.ndim - 1], [0]))
        return values * coefficient

    def host(self, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(tab, idx, coef)`` of one role's kernel, as numpy arrays (coef in float64)."""
        n = self.num_operands
        target = n if role == "out" else (None if role == "w" else int(role[1:]))
        descriptors, starts, idx, coef = [], [], [], []
        first = len(self.rows) * self.row_width
        for q, row in enumerate(self.rows):
            values = self.folded(q)
            dims = values.shape
            if target is not None:
                values = np.moveaxis(values, target, 0)
            else:
                values = values[None]
            entries = np.argwhere(np.abs(values) > 1e-15)
            counts = np.bincount(entries[:, 0], minlength=values.shape[0])
            base = len(coef)
            descriptors.append([x for s, d in zip(row[4], dims) for x in (s, d)]
                               + [row[5], first + len(starts), values.shape[0]])
            starts.extend(base + np.concatenate([[0], np.cumsum(counts)]))
            idx.extend(entries[:, 1:].reshape(-1))
            coef.extend(values[tuple(entries.T)])
        tab = np.array([x for d in descriptors for x in d] + starts, dtype=np.int32)
        return tab, np.array(idx, dtype=np.int32), np.array(coef, dtype=np.float64)

    def args(self, role: str, device: torch.device,
             dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """The role's ``(tab, idx, coef)`` tensors on a device, coef in ``dtype`` (cached)."""
        key = (role, str(device), dtype)
        if key not in self._cache:
            tab, idx, coef = self.host(role)
            self._cache[key] = (
                torch.from_numpy(tab).to(device),
                torch.from_numpy(np.concatenate([idx, [0]]).astype(np.int32)).to(device),
                torch.from_numpy(np.concatenate([coef, [0.0]])).to(device=device, dtype=dtype),
            )
        return self._cache[key]

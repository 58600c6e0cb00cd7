"""Real spherical harmonics in e3nn's basis, built by coupling ℓ=1 with ℓ−1 (no e3nn needed).

``Y^1(r̂) = √3 r̂`` (e3nn 0.6's ℓ=1 block is Cartesian) and ``Y^ℓ ∝ C^{1,ℓ−1,ℓ} Y^1 Y^{ℓ−1}``:
the coupled product of two harmonics is harmonic, so one exact coupling tensor per degree
gives every ℓ. The constant of proportionality makes ``|Y^ℓ|² = 2ℓ+1`` on the unit sphere
(e3nn's ``normalization="component"``); its sign is fixed so that ``Y^ℓ`` equals
``e3nn.o3.spherical_harmonics(ℓ, r, normalize=True)`` (checked in the tests).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fusiondsl.core.cg import real_w3j


def _coupling(l: int) -> np.ndarray:  # noqa: E741
    """The tensor ``c_ℓ C^{1,ℓ−1,ℓ}`` that maps ``(Y^1, Y^{ℓ−1})`` to ``Y^ℓ``."""
    c = real_w3j(1, l - 1, l)
    # On a unit vector |Y^1 ⊗ Y^{ℓ-1} coupled|² is a constant; measure it at one point.
    y_prev = _evaluate_np(l - 1, np.array([0.3, -0.5, 0.8]) / math.sqrt(0.98))
    y1 = math.sqrt(3) * np.array([0.3, -0.5, 0.8]) / math.sqrt(0.98)
    raw = np.einsum("abc,a,b->c", c, y1, y_prev)
    return c * (math.sqrt(2 * l + 1) / np.linalg.norm(raw))


def _evaluate_np(l: int, r: np.ndarray) -> np.ndarray:  # noqa: E741
    """``Y^ℓ`` at one unit vector, in float64 numpy (used to build the couplings)."""
    if l == 0:
        return np.ones(1)
    y1 = math.sqrt(3) * r
    if l == 1:
        return y1
    return np.einsum("abc,a,b->c", _coupling(l), y1, _evaluate_np(l - 1, r))


class SphericalHarmonics(torch.nn.Module):
    """``Y^0 … Y^lmax`` of the normalised edge vectors, e3nn layout ``[..., (lmax+1)²]``.

    Args:
        lmax: the highest degree.

    >>> sh = SphericalHarmonics(2)
    >>> [round(v, 4) for v in sh(torch.tensor([[0.0, 0.0, 2.0]]))[0].tolist()]
    [1.0, 0.0, 0.0, 1.7321, 0.0, 0.0, -1.118, 0.0, 1.9365]
    """

    def __init__(self, lmax: int) -> None:
        super().__init__()
        self.lmax = lmax
        # Kept in float64 outside the buffers, so that .float()/.double() never round them.
        self.couplings = {k: torch.from_numpy(_coupling(k)) for k in range(2, lmax + 1)}

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Harmonics of ``vectors [..., 3]`` (normalised first; a zero vector is an error)."""
        r = vectors / vectors.norm(dim=-1, keepdim=True)
        blocks = [torch.ones_like(r[..., :1])]
        if self.lmax >= 1:
            blocks.append(math.sqrt(3) * r)
        for l in range(2, self.lmax + 1):  # noqa: E741
            c = self.couplings[l].to(device=r.device, dtype=r.dtype)
            blocks.append(torch.einsum("abc,...a,...b->...c", c, blocks[1], blocks[-1]))
        return torch.cat(blocks, dim=-1)

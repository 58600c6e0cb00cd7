"""Radial functions of the bond length: a Bessel basis with a smooth cutoff, and an MLP on it.

The basis is DimeNet's / MACE's: ``√(2/r_c) sin(nπ r / r_c) / r`` for n = 1…N, times the
polynomial envelope of order p that goes to zero with its first p derivatives at the cutoff,
so energies and forces are smooth when a neighbour crosses ``r_c``.
"""

from __future__ import annotations

import itertools
import math

import torch


def polynomial_envelope(x: torch.Tensor, p: int = 6) -> torch.Tensor:
    """``1 − (p+1)(p+2)/2 x^p + p(p+2) x^{p+1} − p(p+1)/2 x^{p+2}`` for x < 1, else 0."""
    env = (1.0 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1)
           - p * (p + 1) / 2 * x ** (p + 2))
    return env * (x < 1.0)


# 1 / sqrt(E[silu(x)^2]) for x ~ N(0, 1): keeps the second moment of each hidden layer at one.
SILU_GAIN = 1.679


class BesselBasis(torch.nn.Module):
    """``num_basis`` Bessel functions of the distance, enveloped to vanish at ``cutoff``.

    >>> basis = BesselBasis(cutoff=5.0, num_basis=4)
    >>> basis(torch.tensor([5.0, 6.0])).abs().max().item()
    0.0
    """

    def __init__(self, cutoff: float, num_basis: int = 8, envelope_p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.envelope_p = envelope_p
        freqs = math.pi / self.cutoff * torch.arange(1, num_basis + 1, dtype=torch.float64)
        self.register_buffer("freqs", freqs.to(torch.get_default_dtype()))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Basis values ``[..., num_basis]`` of the distances ``r [...]``."""
        r = r.unsqueeze(-1)
        bessel = math.sqrt(2.0 / self.cutoff) * torch.sin(self.freqs.to(r.dtype) * r) / r
        return bessel * polynomial_envelope(r / self.cutoff, self.envelope_p)


class RadialMLP(torch.nn.Module):
    """An MLP from the Bessel basis to per-edge weights (channel gates or path weights).

    Args:
        cutoff: the radial cutoff in Å.
        num_out: outputs per edge.
        num_basis: Bessel functions.
        hidden: width of the hidden layers.
        layers: number of hidden layers.
    """

    def __init__(self, cutoff: float, num_out: int, num_basis: int = 8, hidden: int = 32,
                 layers: int = 2) -> None:
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis)
        widths = [num_basis] + [hidden] * layers
        mods: list[torch.nn.Module] = []
        for a, b in itertools.pairwise(widths):
            mods += [torch.nn.Linear(a, b, bias=False), torch.nn.SiLU()]
        mods.append(torch.nn.Linear(widths[-1], num_out, bias=False))
        self.mlp = torch.nn.Sequential(*mods)
        # Variance-preserving init (as e3nn's FullyConnectedNet): torch's default uniform init
        # shrinks the second moment about threefold per layer, leaving near-zero path weights.
        for mod in mods:
            if isinstance(mod, torch.nn.Linear):
                gain = 1.0 if mod is mods[-1] else SILU_GAIN
                torch.nn.init.normal_(mod.weight, std=gain / math.sqrt(mod.in_features))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Weights ``[E, num_out]`` for bond lengths ``r [E]``; zero at and beyond the cutoff.

        No layer has a bias and SiLU(0) = 0, so the enveloped basis carries the cutoff through.
        """
        return self.mlp(self.basis(r))

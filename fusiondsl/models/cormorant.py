"""A small Cormorant-like network and its CoFD variant (Cormorant with the fusion block).

Each layer is Cormorant's atom update (Anderson, Hy & Kondor, arXiv 1906.04015, Eq. 10):
``F_i ← W · (F_i ⊕ (F_i ⊗ F_i) ⊕ Σ_j g(r_ij) (F_j ⊗ Y_ij))``, here in e3nn's real basis with one
learned weight per path and channel, followed by an equivariant norm. CoFD (Li et al., arXiv
2211.07482) adds ``Σ_j g'(r_ij) Fusion(F_i, F_j, Y_ij)`` to the concatenation. The energy is
a linear readout of the invariant channels of every layer, summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from fusiondsl.models.base import Potential
from fusiondsl.models.blocks import EquivariantNorm, bonds, compile_specs
from fusiondsl.models.radial import RadialMLP
from fusiondsl.models.sh import SphericalHarmonics
from fusiondsl.models.specs import cormorant_layer, hidden_labels

if TYPE_CHECKING:
    from fusiondsl.models.data import Batch


class Cormorant(Potential):
    """A Cormorant-like network; ``fusion=True`` makes it CoFD.

    Args:
        species: atomic numbers the model knows.
        channels: multiplicity of every hidden irrep.
        lmax: highest degree of the spherical harmonics and of the hidden features.
        num_layers: atom updates.
        cutoff: radial cutoff in Å.
        num_basis: Bessel functions in the radial basis.
        radial_hidden: width of the radial MLPs.
        avg_num_neighbors: the neighbour sums are divided by it.
        backend: the layers' backend, ``"einsum"`` or ``"c"`` (see :func:`compile_specs`).
        fusion: add the CoFD term.
    """

    def __init__(self, species: Sequence[int], *, channels: int = 8, lmax: int = 2,
                 num_layers: int = 3, cutoff: float = 5.0, num_basis: int = 8,
                 radial_hidden: int = 32, avg_num_neighbors: float = 12.0,
                 fusion: bool = False, backend: str = "einsum") -> None:
        super().__init__(species)
        self.channels, self.avg_num_neighbors = channels, float(avg_num_neighbors)
        self.embed = torch.nn.Linear(len(self.species), channels, bias=False)
        self.sh = SphericalHarmonics(lmax)
        hidden = f"{channels}x({' + '.join(hidden_labels(lmax))})"
        self.specs, self.layers = [], torch.nn.ModuleList()
        irreps_in = f"{channels}x0e"
        self.readout0 = torch.nn.Linear(channels, 1)
        for t in range(num_layers):
            text = cormorant_layer(channels, lmax, irreps_in, fusion=fusion)
            self.specs.append(text)
            layer = torch.nn.ModuleDict(compile_specs(text, f"cormorant layer {t}", backend))
            layer["radial"] = RadialMLP(cutoff, channels * (2 if fusion else 1), num_basis,
                                        radial_hidden)
            layer["norm"] = EquivariantNorm(hidden)
            layer["readout"] = torch.nn.Linear(channels, 1)
            self.layers.append(layer)
            irreps_in = hidden

    def atomic_outputs(self, batch: Batch) -> torch.Tensor:
        """Per-atom energies before scale and shift, ``[N]``."""
        species = self.species_of(batch.numbers)
        f = self.embed(torch.nn.functional.one_hot(species, len(self.species)).to(
            batch.positions.dtype))
        vectors, lengths = bonds(batch)
        y = self.sh(vectors)
        out = self.readout0(f).squeeze(-1)
        for layer in self.layers:
            gates = layer["radial"](lengths) / self.avg_num_neighbors
            gates = gates.split(self.channels, dim=-1)
            f = layer["norm"](layer["layer"](f, y, *gates, batch.edge_index))
            out = out + layer["readout"](f[:, :self.channels]).squeeze(-1)
        return out

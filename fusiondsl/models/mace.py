"""A small MACE-like potential and its MoFD variant (MACE with the paper's fusion block).

Per layer t (Batatia et al., arXiv 2206.07697, simplified: one element-independent product
basis, no per-species skip):

1. ``up``: a linear map of the node features ``h``;
2. ``interaction``: ``A_i = linear(Σ_j R(r_ij) (h_j ⊗ Y(r̂_ij))) / n̄``, channel-wise (``uvu``)
   with per-edge path weights from a radial MLP; MoFD adds ``Σ_j g(r_ij) Fusion_k(h_i, h_j,
   Y_ij)`` for each internal label k, concatenated before the linear map (Li et al., arXiv
   2211.07482: "MoFD");
3. ``product``: the symmetric powers of ``A`` up to the correlation order, with the input ``h``
   as a skip, mixed by a linear map;
4. a readout of the invariant channels: linear for every layer but the last, an MLP there.

Every equivariant step is a diagram compiled by fusiondsl (``model.specs`` has the text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from fusiondsl.models.base import Potential
from fusiondsl.models.blocks import bonds, compile_specs, scalar_mlp
from fusiondsl.models.radial import RadialMLP
from fusiondsl.models.sh import SphericalHarmonics
from fusiondsl.models.specs import hidden_labels, mace_layer

if TYPE_CHECKING:
    from fusiondsl.models.data import Batch


class MACE(Potential):
    """A MACE-like potential; ``fusion_labels`` (e.g. ``("0e", "1o", "2e")``) makes it MoFD.

    Args:
        species: atomic numbers the model knows.
        channels: multiplicity of every hidden irrep.
        lmax: highest degree of the spherical harmonics and of the hidden features.
        num_layers: message-passing layers.
        correlation: highest symmetric power in the product basis.
        cutoff: radial cutoff in Å.
        num_basis: Bessel functions in the radial basis.
        radial_hidden: width of the radial MLP.
        avg_num_neighbors: the neighbour sums are divided by it.
        backend: the layers' backend, ``"einsum"`` or ``"c"`` (see :func:`compile_specs`).
        fusion_labels: internal labels of the MoFD fusion diagrams (empty: plain MACE).
    """

    def __init__(self, species: Sequence[int], *, channels: int = 8, lmax: int = 2,
                 num_layers: int = 2, correlation: int = 3, cutoff: float = 5.0,
                 num_basis: int = 8, radial_hidden: int = 32, avg_num_neighbors: float = 12.0,
                 fusion_labels: Sequence[str] = (), backend: str = "einsum") -> None:
        super().__init__(species)
        self.channels, self.avg_num_neighbors = channels, float(avg_num_neighbors)
        self.embed = torch.nn.Linear(len(self.species), channels, bias=False)
        self.sh = SphericalHarmonics(lmax)
        hidden = f"{channels}x({' + '.join(hidden_labels(lmax))})"
        self.specs, self.layers = [], torch.nn.ModuleList()
        irreps_in = f"{channels}x0e"
        for t in range(num_layers):
            text = mace_layer(channels, lmax, irreps_in, correlation=correlation,
                              fusion_labels=tuple(fusion_labels))
            self.specs.append(text)
            layer = torch.nn.ModuleDict(compile_specs(text, f"mace layer {t}", backend))
            gates = channels if len(layer["interaction"].irreps_in) == 3 else 0
            layer["radial"] = RadialMLP(cutoff, layer["interaction"].external_weight_numel + gates,
                                        num_basis, radial_hidden)
            last = t == num_layers - 1
            layer["readout"] = scalar_mlp(channels, 16) if last else torch.nn.Linear(channels, 1)
            self.layers.append(layer)
            irreps_in = hidden

    def atomic_outputs(self, batch: Batch) -> torch.Tensor:
        """Per-atom energies before scale and shift, ``[N]``."""
        species = self.species_of(batch.numbers)
        h = self.embed(torch.nn.functional.one_hot(species, len(self.species)).to(
            batch.positions.dtype))
        vectors, lengths = bonds(batch)
        y = self.sh(vectors)
        out = h.new_zeros(h.shape[0])
        for layer in self.layers:
            radial = layer["radial"](lengths)
            interaction = layer["interaction"]
            num_w = interaction.external_weight_numel
            gates = (radial[:, num_w:],) if len(interaction.irreps_in) == 3 else ()
            a = interaction(layer["up"](h), y, *gates, batch.edge_index, weight=radial[:, :num_w])
            h = layer["product"](a / self.avg_num_neighbors, h)
            out = out + layer["readout"](h[:, :self.channels]).squeeze(-1)
        return out

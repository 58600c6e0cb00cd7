"""The shared shell of every potential: species embedding bookkeeping and the energy sum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from fusiondsl.models.data import Batch


class Potential(torch.nn.Module):
    """An interatomic potential: per-atom outputs, scaled and shifted, summed per structure.

    Subclasses implement :meth:`atomic_outputs`; the total energy of structure g is
    ``Σ_{i in g} scale * out_i + atomic_energies[species_i]``, so a fit of the per-species
    reference energies and of the scale (see :func:`fusiondsl.models.train.fit_references`)
    leaves the network to learn only the interaction part.

    Attributes:
        species: the atomic numbers this model knows, in embedding order.
    """

    def __init__(self, species: Sequence[int]) -> None:
        super().__init__()
        self.species = tuple(int(z) for z in species)
        table = torch.full((max(self.species) + 1,), -1, dtype=torch.long)
        table[list(self.species)] = torch.arange(len(self.species))
        self.register_buffer("species_index", table, persistent=False)
        self.register_buffer("atomic_energies", torch.zeros(len(self.species)))
        self.register_buffer("energy_scale", torch.ones(()))

    def species_of(self, numbers: torch.Tensor) -> torch.Tensor:
        """Embedding index of each atom from its atomic number (ValueError for an unknown one)."""
        index = self.species_index[numbers.clamp(max=len(self.species_index) - 1)]
        if bool(((index < 0) | (numbers >= len(self.species_index))).any()):
            unknown = sorted(set(numbers.tolist()) - set(self.species))
            raise ValueError(f"atomic numbers {unknown} are not among this model's species "
                             f"{list(self.species)}")
        return index

    def atomic_outputs(self, batch: Batch) -> torch.Tensor:
        """The network's per-atom output ``[N]`` (before scale and shift)."""
        raise NotImplementedError

    def forward(self, batch: Batch) -> torch.Tensor:
        """Total energy of each structure in the batch, ``[num_graphs]``."""
        species = self.species_of(batch.numbers)
        atomic = self.energy_scale * self.atomic_outputs(batch) + self.atomic_energies[species]
        energy = atomic.new_zeros(batch.num_graphs)
        return energy.index_add(0, batch.batch, atomic)

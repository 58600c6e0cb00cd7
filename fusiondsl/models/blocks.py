"""Pieces the models share: compiling their specs, bond geometry, an equivariant norm."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from fusiondsl.core.irreps import Irreps
from fusiondsl.nn.program import loads

if TYPE_CHECKING:
    from fusiondsl.models.data import Batch


def compile_specs(text: str, name: str, backend: str = "einsum") -> dict[str, torch.nn.Module]:
    """Compile every diagram of a generated spec into a layer, by diagram name.

    ``backend="c"`` gives the fused CPU kernels (docs/cbackend.md): faster training, but the
    first build of a model's layers takes minutes; they are cached afterwards.
    """
    program = loads("group O3\n" + text, f"<{name}>")
    return {diagram: program.compile(diagram, backend=backend) for diagram in program.names}


def bonds(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Bond vectors ``r_j − r_i`` ``[E, 3]`` (i receiver, j sender) and their lengths ``[E]``."""
    receivers, senders = batch.edge_index[0], batch.edge_index[1]
    vectors = batch.positions.index_select(0, senders) - batch.positions.index_select(0, receivers)
    return vectors, vectors.norm(dim=-1)


class EquivariantNorm(torch.nn.Module):
    """Scale each irrep block by the inverse RMS of its channels' norms, per atom.

    Multiplying a block by a rotation-invariant number keeps it equivariant; Cormorant's
    repeated products grow (or shrink) geometrically with depth without such a normalisation.
    A learned per-block gain follows, initialised to one.

    Args:
        irreps: the feature irreps (e3nn layout).
        eps: added to the mean square before the square root.
    """

    def __init__(self, irreps: str, eps: float = 1e-6) -> None:
        super().__init__()
        self.blocks = [(start, stop, entry.mul, entry.ir.dim)
                       for (start, stop), entry in zip(Irreps.parse(irreps).slices,
                                                       Irreps.parse(irreps))]
        self.eps = eps
        self.gain = torch.nn.Parameter(torch.ones(len(self.blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features, same shape as ``x [N, dim]``."""
        out = []
        for k, (start, stop, mul, dim) in enumerate(self.blocks):
            block = x[:, start:stop].reshape(-1, mul, dim)
            mean_square = block.pow(2).sum(-1).mean(-1, keepdim=True) / dim
            scale = self.gain[k] * torch.rsqrt(mean_square + self.eps)
            out.append((block * scale.unsqueeze(-1)).reshape(-1, stop - start))
        return torch.cat(out, dim=-1)


def scalar_mlp(width_in: int, hidden: int) -> torch.nn.Module:
    """The final readout: invariant scalars → one energy per atom."""
    return torch.nn.Sequential(torch.nn.Linear(width_in, hidden), torch.nn.SiLU(),
                               torch.nn.Linear(hidden, 1))

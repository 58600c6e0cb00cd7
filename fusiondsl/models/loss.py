"""The training objective and the scores: energies and forces by autograd, losses, errors.

- :func:`energy_and_forces`: energies and forces ``F = -∂E/∂x`` by autograd.
- :func:`fit_references`: least-squares per-species reference energies and the energy scale.
- :func:`batch_loss`: ``w_E·mean((ΔE/n_atoms)²) + w_F·mean(ΔF²)``, or its share of a batch
  split over processes (:mod:`fusiondsl.models.distributed`).
- :func:`evaluate`: energy and force MAE / RMSE in meV units, over all processes.

Energies are in eV, lengths in Å, forces in eV/Å throughout; reported errors in meV.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fusiondsl.models import distributed
from fusiondsl.models.data import batches

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential
    from fusiondsl.models.data import Batch, Structure


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for an empty model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def energy_and_forces(model: Potential, batch: Batch, *,
                      create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy of each structure and the force on each atom, ``F = -∂E/∂positions``.

    Args:
        model: the potential; called as ``model(batch)``.
        batch: a collated batch (its positions are not modified).
        create_graph: keep the graph of the forces, so that a loss on them can be
            backpropagated (double backward; needed in training, not in evaluation or MD).

    Returns:
        ``(energy [num_graphs], forces [N, 3])``; with ``create_graph=False`` both are detached.
        An energy that does not depend on the positions has zero forces.
    """
    positions = batch.positions.detach().clone().requires_grad_(True)
    shadow = copy.copy(batch)
    shadow.positions = positions
    with torch.enable_grad():
        energy = model(shadow)
        grad = None
        if energy.requires_grad:
            (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph,
                                          allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(positions, requires_grad=False)
    if not create_graph:
        return energy.detach(), -grad.detach()
    return energy, -grad


def fit_references(model: Potential, structures: Sequence[Structure]) -> dict[str, Any]:
    """Set ``model.atomic_energies`` and ``model.energy_scale`` from a training set.

    The reference energies ``e_s`` are the least-squares solution of
    ``E_g ≈ Σ_s count_{g,s} · e_s``; when the composition matrix is rank-deficient (every
    structure with the same stoichiometry, as in a fixed-composition EMT set) this is the
    minimum-norm solution, which still removes the mean energy exactly. The scale is the RMS of
    the force components (MACE's ``rms_forces_scaling``): the network's per-atom outputs are then
    of order one. Without forces it falls back to the standard deviation of the residual energy
    per atom; a zero or undefined scale leaves 1.

    Args:
        model: the potential whose two buffers are overwritten.
        structures: the training structures; those without an energy are ignored for the
            references, those without forces for the scale.

    Returns:
        A summary: ``atomic_energies`` (atomic number → eV), ``energy_scale`` (eV), and
        ``scale_from`` (``"force_rms"``, ``"energy_std"`` or ``"default"``).
    """
    labelled = [s for s in structures if s.energy is not None]
    refs = np.zeros(len(model.species))
    residual = np.zeros(0)
    if labelled:
        counts = np.stack([_composition(model, s.numbers) for s in labelled])
        energies = np.array([float(s.energy) for s in labelled])
        refs = np.linalg.lstsq(counts, energies, rcond=None)[0]
        residual = (energies - counts @ refs) / counts.sum(axis=1)
    forces = [np.asarray(s.forces).ravel() for s in structures if s.forces is not None]
    scale, source = 1.0, "default"
    if forces and np.any(np.concatenate(forces)):
        scale, source = float(np.sqrt(np.mean(np.concatenate(forces) ** 2))), "force_rms"
    elif residual.size > 1 and float(residual.std()) > 0.0:
        scale, source = float(residual.std()), "energy_std"
    with torch.no_grad():
        model.atomic_energies.copy_(torch.as_tensor(refs))
        model.energy_scale.fill_(scale)
    return {"atomic_energies": {z: float(e) for z, e in zip(model.species, refs)},
            "energy_scale": scale, "scale_from": source}


def _composition(model: Potential, numbers: np.ndarray) -> np.ndarray:
    numbers = torch.as_tensor(np.asarray(numbers), dtype=torch.long,
                              device=model.species_index.device)
    index = model.species_of(numbers).cpu().numpy()
    return np.bincount(index, minlength=len(model.species)).astype(np.float64)


def batch_loss(model: Potential, batch: Batch, *, energy_weight: float, force_weight: float,
               create_graph: bool = True,
               totals: tuple[int, int] | None = None) -> torch.Tensor:
    """``w_E·mean((ΔE/n_atoms)²) + w_F·mean(ΔF²)`` over one batch (terms without labels drop).

    Args:
        model: the potential (or its DistributedDataParallel wrapper).
        batch: the structures.
        energy_weight: ``w_E``.
        force_weight: ``w_F``.
        create_graph: keep the graph of the forces (training needs it).
        totals: ``(structures, atoms)`` of the whole batch when ``batch`` is one process's
            share of it: the sums are divided by these counts instead of the share's own, so
            the shares' losses add up to the whole batch's loss.
    """
    energy, forces = energy_and_forces(model, batch, create_graph=create_graph)
    num_graphs, num_atoms = totals or (batch.num_graphs, batch.numbers.numel())
    loss = energy.new_zeros(())
    if batch.energy is not None and energy_weight:
        n_atoms = torch.bincount(batch.batch, minlength=batch.num_graphs).to(energy.dtype)
        loss = loss + energy_weight * (((energy - batch.energy) / n_atoms) ** 2).sum() / num_graphs
    if batch.forces is not None and force_weight:
        loss = loss + force_weight * ((forces - batch.forces) ** 2).sum() / (3 * num_atoms)
    return loss


def evaluate(model: Potential, structures: Sequence[Structure], *, cutoff: float,
             batch_size: int = 16) -> dict[str, float]:
    """Energy and force errors of ``model`` on labelled structures, in meV units.

    In a process group every process scores its share (structures ``rank, rank + N, …``) and
    the error sums are added up, so every process returns the numbers of the whole set.

    Args:
        model: the potential (evaluated in eval mode, in its own dtype and device).
        structures: structures with energies and/or forces (unlabelled ones don't count).
        cutoff: radius of the neighbour graph, Å.
        batch_size: structures per batch.

    Returns:
        ``energy_mae_per_atom`` / ``energy_rmse_per_atom`` (meV/atom, from ``|ΔE|/n_atoms``),
        ``energy_mae`` / ``energy_rmse`` (meV per structure), ``force_mae`` / ``force_rmse``
        (meV/Å, over Cartesian components), and ``n_structures``, ``n_atoms`` evaluated.
        A quantity with no labels is NaN.
    """
    here = distributed.world()
    was_training = model.training
    model.eval()
    try:
        sums = _error_sums(model, structures[here.rank::here.size], cutoff, batch_size)
    finally:
        model.train(was_training)
    sums = distributed.all_reduce_sum(sums).tolist()
    out = {"n_structures": float(len(structures)), "n_atoms": sums[-1]}
    for k, key in enumerate(("energy_{}", "energy_{}_per_atom", "force_{}")):
        absolute, square, count = sums[3 * k:3 * k + 3]
        out[key.format("mae")] = absolute / count if count else math.nan
        out[key.format("rmse")] = math.sqrt(square / count) if count else math.nan
    return out


def _error_sums(model: Potential, structures: Sequence[Structure], cutoff: float,
                batch_size: int) -> torch.Tensor:
    """``[Σ|x|, Σx², count]`` (meV) for ΔE, ΔE/n_atoms and ΔF components, then ``n_atoms``."""
    param = next(iter(model.parameters()), model.energy_scale)
    sums = torch.zeros(10, dtype=torch.float64)
    for batch in batches(structures, batch_size, cutoff, dtype=param.dtype):
        batch = batch.to(device=param.device)
        energy, forces = energy_and_forces(model, batch, create_graph=False)
        sums[9] += batch.numbers.numel()
        parts = []
        if batch.energy is not None:
            counts = torch.bincount(batch.batch, minlength=batch.num_graphs).double().cpu()
            de = (energy - batch.energy).double().cpu() * 1000.0
            parts += [(0, de), (3, de / counts)]
        if batch.forces is not None:
            parts.append((6, (forces - batch.forces).double().cpu().ravel() * 1000.0))
        for start, errors in parts:
            sums[start:start + 3] += torch.stack([errors.abs().sum(), errors.pow(2).sum(),
                                                  torch.tensor(float(errors.numel()))])
    return sums

"""Training a :class:`~fusiondsl.models.base.Potential` on energies and forces.

- :func:`energy_and_forces`: energies and forces ``F = -∂E/∂x`` by autograd.
- :func:`fit_references`: least-squares per-species reference energies and the energy scale.
- :func:`fit`: Adam on ``w_E·mean((ΔE/n_atoms)²) + w_F·mean(ΔF²)``, deterministic for a seed,
  keeping the weights with the best validation loss.
- :func:`evaluate`: energy and force MAE / RMSE in meV units.

``python -m fusiondsl.models.train`` runs :func:`fusiondsl.models.experiment.main`: generate or
load a data set, train the named models, write ``results.json``, ``results.md``, ``curves.png``.
Energies are in eV, lengths in Å, forces in eV/Å throughout; reported errors in meV.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential
    from fusiondsl.models.data import Batch, Structure

SCHEDULERS = ("plateau", "cosine", "none")


def _model_device(model: torch.nn.Module) -> torch.device:
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


@dataclass
class EpochRecord:
    """One epoch of :func:`fit`: losses (eV², see :func:`fit`), validation MAEs, time.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean of the batch losses over the epoch (weights changing meanwhile).
        val_loss: the same loss on the whole validation set after the epoch.
        val_energy_mae: validation energy MAE, meV/atom.
        val_force_mae: validation force MAE per component, meV/Å.
        seconds: wall time of the epoch (training and validation).
        lr: learning rate used during the epoch.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_energy_mae: float
    val_force_mae: float
    seconds: float
    lr: float


@dataclass
class History:
    """What :func:`fit` did, epoch by epoch; ``best_epoch`` is the one whose weights were kept."""

    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf

    def column(self, name: str) -> list[float]:
        """One field of every record, e.g. ``history.column("val_force_mae")``."""
        return [getattr(r, name) for r in self.records]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "records": [asdict(r) for r in self.records]}


class Progress:
    """A plain-text progress bar: epoch, batch, loss and ETA of the whole fit.

    On a terminal the bar redraws in place (carriage return) at most ten times a second; on
    any other stream (a log file) it writes whole lines, at most one every ten seconds, so that
    logs stay readable. An epoch's last batch and its summary line are always written.
    """

    def __init__(self, epochs: int, stream: TextIO | None, width: int = 24) -> None:
        self.epochs, self.stream, self.width = epochs, stream, width
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.tty else 10.0
        self.start = time.perf_counter()
        self.last = -math.inf

    def _write(self, text: str, final: bool) -> None:
        assert self.stream is not None
        if self.tty:
            self.stream.write("\r" + text + (" " * 8 + "\n" if final else ""))
        else:
            self.stream.write(text.rstrip() + "\n")
        self.stream.flush()

    def update(self, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        """Redraw the bar after ``batch`` of ``n_batches`` in ``epoch`` (1-based)."""
        now = time.perf_counter()
        if self.stream is None or (now - self.last < self.interval and batch < n_batches):
            return
        self.last = now
        done = (epoch - 1 + batch / n_batches) / self.epochs
        eta = (now - self.start) * (1.0 - done) / done if done > 0 else math.nan
        filled = round(self.width * batch / n_batches)
        bar = "#" * filled + "." * (self.width - filled)
        self._write(f"epoch {epoch}/{self.epochs} [{bar}] {batch}/{n_batches} "
                    f"loss {loss:.3e} ETA {_clock(eta)} ", final=False)

    def epoch_done(self, record: EpochRecord) -> None:
        """End the epoch with its validation numbers."""
        if self.stream is None:
            return
        self._write(f"epoch {record.epoch}/{self.epochs} train {record.train_loss:.3e} "
                    f"val {record.val_loss:.3e} E {record.val_energy_mae:.2f} meV/atom "
                    f"F {record.val_force_mae:.1f} meV/Å {record.seconds:.1f} s", final=True)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def batch_loss(model: Potential, batch: Batch, *, energy_weight: float, force_weight: float,
               create_graph: bool = True) -> torch.Tensor:
    """``w_E·mean((ΔE/n_atoms)²) + w_F·mean(ΔF²)`` over one batch (terms without labels drop)."""
    energy, forces = energy_and_forces(model, batch, create_graph=create_graph)
    loss = energy.new_zeros(())
    if batch.energy is not None and energy_weight:
        n_atoms = torch.bincount(batch.batch, minlength=batch.num_graphs).to(energy.dtype)
        loss = loss + energy_weight * (((energy - batch.energy) / n_atoms) ** 2).mean()
    if batch.forces is not None and force_weight:
        loss = loss + force_weight * ((forces - batch.forces) ** 2).mean()
    return loss


def _make_scheduler(optimizer: torch.optim.Optimizer, scheduler: str,
                    epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    if scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.8, patience=5)
    if scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return None


def _val_loss(metrics: dict[str, float], energy_weight: float, force_weight: float) -> float:
    """The training loss on a whole set, from its RMSEs (meV → eV)."""
    loss = 0.0
    if energy_weight and math.isfinite(metrics["energy_rmse_per_atom"]):
        loss += energy_weight * (metrics["energy_rmse_per_atom"] / 1000.0) ** 2
    if force_weight and math.isfinite(metrics["force_rmse"]):
        loss += force_weight * (metrics["force_rmse"] / 1000.0) ** 2
    return loss


def fit(model: Potential, train: Sequence[Structure], val: Sequence[Structure], *,
        epochs: int, batch_size: int, lr: float, cutoff: float, energy_weight: float = 1.0,
        force_weight: float = 100.0, seed: int = 0, dtype: torch.dtype = torch.float64,
        scheduler: str = "plateau", max_grad_norm: float | None = 10.0,
        references: bool = True, progress: bool | TextIO = True) -> History:
    """Train ``model`` in place on energies and forces; keep the best-validation weights.

    The loss of a batch is ``energy_weight·mean((ΔE/n_atoms)²) + force_weight·mean(ΔF²)`` in
    eV² (per-atom energies in eV, force components in eV/Å); the default weights 1 and 100 are
    MACE's. The run is deterministic for a seed: ``torch.manual_seed(seed)`` first, and the
    batches of epoch ``k`` are shuffled with seed ``seed + k``.

    Args:
        model: the potential (converted to ``dtype``; its device is kept).
        train: training structures, with energies and/or forces.
        val: validation structures, scored after every epoch (empty: the training loss picks
            the best epoch and the validation MAEs are NaN).
        epochs: number of passes over ``train``.
        batch_size: structures per batch.
        lr: Adam's learning rate.
        cutoff: radius of the neighbour graph, Å.
        energy_weight: weight of the per-atom energy term.
        force_weight: weight of the force term.
        seed: seeds torch and the shuffling.
        dtype: floating-point type of the model and the batches.
        scheduler: ``"plateau"`` (ReduceLROnPlateau on the validation loss, factor 0.8,
            patience 5), ``"cosine"`` (annealing to 0 over ``epochs``) or ``"none"``.
        max_grad_norm: clip the gradient norm to this (None: no clipping).
        references: first call :func:`fit_references` on ``train``.
        progress: draw a progress bar on stderr (True), on the given stream, or not (False).

    Returns:
        The :class:`History`; the model holds the weights of ``history.best_epoch``.
    """
    if epochs < 1 or batch_size < 1 or not train:
        raise ValueError("fit needs epochs >= 1, batch_size >= 1 and a non-empty training set")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; expected one of {SCHEDULERS}")
    torch.manual_seed(seed)
    model.to(dtype=dtype)
    if references:
        fit_references(model, train)
    trainer = _Trainer(model, train, val, batch_size=batch_size, cutoff=cutoff, seed=seed,
                       dtype=dtype, lr=lr, max_grad_norm=max_grad_norm,
                       weights={"energy_weight": energy_weight, "force_weight": force_weight},
                       bar=Progress(epochs, sys.stderr if progress is True else progress or None))
    return trainer.run(epochs, scheduler)


class _Trainer:
    """The state of one :func:`fit`: model, data, optimizer, and one epoch at a time."""

    def __init__(self, model: Potential, train: Sequence[Structure], val: Sequence[Structure],
                 *, batch_size: int, cutoff: float, seed: int, dtype: torch.dtype, lr: float,
                 max_grad_norm: float | None, weights: dict[str, float],
                 bar: Progress) -> None:
        self.model, self.train, self.val, self.bar = model, train, val, bar
        self.batch_size, self.cutoff, self.seed, self.dtype = batch_size, cutoff, seed, dtype
        self.max_grad_norm, self.weights = max_grad_norm, weights
        self.device = _model_device(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        # a model of reference energies only is still scored (it is a useful baseline)
        self.optimizer = torch.optim.Adam(trainable or [torch.zeros(0, requires_grad=True)],
                                          lr=lr)

    def run(self, epochs: int, scheduler: str) -> History:
        """All epochs; the model ends with the best epoch's weights, in eval mode."""
        sched = _make_scheduler(self.optimizer, scheduler, epochs)
        history, best_state = History(), copy.deepcopy(self.model.state_dict())
        for epoch in range(1, epochs + 1):
            record = self.epoch(epoch)
            history.records.append(record)
            if record.val_loss < history.best_val_loss or not history.best_epoch:
                history.best_epoch, history.best_val_loss = epoch, record.val_loss
                best_state = copy.deepcopy(self.model.state_dict())
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(record.val_loss)
            elif sched is not None:
                sched.step()
            self.bar.epoch_done(record)
        self.model.load_state_dict(best_state)
        self.model.eval()
        return history

    def epoch(self, epoch: int) -> EpochRecord:
        """One pass over the training set (shuffled with ``seed + epoch``), then validation."""
        from fusiondsl.models.data import batches

        start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
        n_batches = math.ceil(len(self.train) / self.batch_size)
        self.model.train()
        total = 0.0
        for k, batch in enumerate(batches(self.train, self.batch_size, self.cutoff,
                                          shuffle=True, seed=self.seed + epoch,
                                          dtype=self.dtype), start=1):
            loss = self.step(batch.to(device=self.device))
            total += loss
            self.bar.update(epoch, k, n_batches, loss)
        train_loss = total / n_batches
        if self.val:
            metrics = evaluate(self.model, self.val, cutoff=self.cutoff,
                               batch_size=self.batch_size)
            val_loss = _val_loss(metrics, **self.weights)
            e_mae, f_mae = metrics["energy_mae_per_atom"], metrics["force_mae"]
        else:
            val_loss, e_mae, f_mae = train_loss, math.nan, math.nan
        return EpochRecord(epoch=epoch, train_loss=train_loss, val_loss=val_loss,
                           val_energy_mae=e_mae, val_force_mae=f_mae,
                           seconds=time.perf_counter() - start, lr=lr)

    def step(self, batch: Batch) -> float:
        """One optimizer step on ``batch``; its loss before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(self.model, batch, create_graph=True, **self.weights)
        if not loss.requires_grad:  # nothing to train
            return float(loss)
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return float(loss.detach())


def evaluate(model: Potential, structures: Sequence[Structure], *, cutoff: float,
             batch_size: int = 16) -> dict[str, float]:
    """Energy and force errors of ``model`` on labelled structures, in meV units.

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
    from fusiondsl.models.data import batches

    param = next(iter(model.parameters()), model.energy_scale)
    was_training = model.training
    model.eval()
    de, de_atom, df = [], [], []
    n_atoms = 0
    try:
        for batch in batches(structures, batch_size, cutoff, dtype=param.dtype):
            batch = batch.to(device=param.device)
            energy, forces = energy_and_forces(model, batch, create_graph=False)
            n_atoms += batch.numbers.numel()
            if batch.energy is not None:
                counts = torch.bincount(batch.batch, minlength=batch.num_graphs)
                de.append((energy - batch.energy).double().cpu())
                de_atom.append(de[-1] / counts.double().cpu())
            if batch.forces is not None:
                df.append((forces - batch.forces).double().cpu().ravel())
    finally:
        model.train(was_training)
    out = {"n_structures": float(len(structures)), "n_atoms": float(n_atoms)}
    for key, parts in (("energy_{}", de), ("energy_{}_per_atom", de_atom), ("force_{}", df)):
        errors = torch.cat(parts) * 1000.0 if parts else torch.full((1,), math.nan)
        out[key.format("mae")] = float(errors.abs().mean())
        out[key.format("rmse")] = float(errors.pow(2).mean().sqrt())
    return out


if __name__ == "__main__":
    from fusiondsl.models.experiment import main

    sys.exit(main())

"""Fitting a :class:`~fusiondsl.models.base.Potential` on energies and forces, resumably.

:func:`fit` runs Adam on the loss of :func:`fusiondsl.models.loss.batch_loss`, deterministic
for a seed, keeping the weights with the best validation loss. Inside ``torchrun`` (an
initialised :mod:`torch.distributed` process group) the same call trains data-parallel: see
:mod:`fusiondsl.models.distributed`. With ``state_path`` it writes its whole state after every
epoch (rank 0 only) and, with ``resume=True``, continues from that file.
"""

from __future__ import annotations

import copy
import io
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import torch

from fusiondsl.core.fileio import write_atomic
from fusiondsl.models import distributed
from fusiondsl.models.data import collate
from fusiondsl.models.history import EpochRecord, History, Progress
from fusiondsl.models.loss import batch_loss, evaluate, fit_references, model_device

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential
    from fusiondsl.models.data import Structure

SCHEDULERS = ("plateau", "cosine", "none")


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
        references: bool = True, progress: bool | TextIO = True,
        state_path: str | Path | None = None, resume: bool = False) -> History:
    """Train ``model`` in place on energies and forces; keep the best-validation weights.

    The loss of a batch is ``energy_weight·mean((ΔE/n_atoms)²) + force_weight·mean(ΔF²)`` in
    eV² (eV per atom, eV/Å); the default weights 1 and 100 are MACE's. Deterministic for a seed
    (``torch.manual_seed(seed)``; epoch ``k`` shuffled with ``seed + k``); data-parallel in a
    process group (:mod:`fusiondsl.models.distributed`).

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
        progress: a progress bar on stderr (True), on this stream, or none (False); rank 0.
        state_path: where rank 0 writes the whole training state after every epoch (None:
            nowhere).
        resume: continue from ``state_path`` when it exists (every process reads it).

    Returns:
        The :class:`History`; the model holds the weights of ``history.best_epoch``.
    """
    _check_fit(epochs, batch_size, len(train), scheduler)
    torch.manual_seed(seed)
    model.to(dtype=dtype)
    if references:
        fit_references(model, train)
    here = distributed.world()
    stream = (sys.stderr if progress is True else progress or None) if here.main else None
    trainer = Trainer(model, train, val, batch_size=batch_size, cutoff=cutoff, seed=seed,
                      dtype=dtype, lr=lr, max_grad_norm=max_grad_norm,
                      weights={"energy_weight": energy_weight, "force_weight": force_weight},
                      bar=Progress(epochs, stream))
    return trainer.run(epochs, scheduler, state_path=state_path, resume=resume)


def _check_fit(epochs: int, batch_size: int, num_train: int, scheduler: str) -> None:
    if epochs < 1 or batch_size < 1 or not num_train:
        raise ValueError("fit needs epochs >= 1, batch_size >= 1 and a non-empty training set")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; expected one of {SCHEDULERS}")


class Trainer:
    """The state of one :func:`fit`: model, data, optimizer, and one epoch or step at a time.

    In a process group the model is wrapped in DistributedDataParallel and every step runs
    this process's share of the batch (see :mod:`fusiondsl.models.distributed`).
    """

    def __init__(self, model: Potential, train: Sequence[Structure], val: Sequence[Structure],
                 *, batch_size: int, cutoff: float, seed: int, dtype: torch.dtype, lr: float,
                 max_grad_norm: float | None, weights: dict[str, float],
                 bar: Progress | None = None) -> None:
        self.model, self.train, self.val = model, train, val
        self.bar = bar if bar is not None else Progress(1, None)
        self.batch_size, self.cutoff, self.seed, self.dtype = batch_size, cutoff, seed, dtype
        self.max_grad_norm, self.weights = max_grad_norm, weights
        self.device, self.world = model_device(model), distributed.world()
        self.net = distributed.wrap(model, self.world, self.device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        # a model of reference energies only is still scored (it is a useful baseline)
        self.optimizer = torch.optim.Adam(trainable or [torch.zeros(0, requires_grad=True)],
                                          lr=lr)

    def run(self, epochs: int, scheduler: str, *, state_path: str | Path | None = None,
            resume: bool = False) -> History:
        """All epochs; the model ends with the best epoch's weights, in eval mode."""
        sched = _make_scheduler(self.optimizer, scheduler, epochs)
        history, best_state = History(), copy.deepcopy(self.model.state_dict())
        first = 1
        if resume and state_path is not None and Path(state_path).is_file():
            first, history, best_state = self.restore(state_path, sched)
        for epoch in range(first, epochs + 1):
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
            if state_path is not None and self.world.main:
                self.save(state_path, epoch, sched, history, best_state)
        self.model.load_state_dict(best_state)
        self.model.eval()
        return history

    def save(self, path: str | Path, epoch: int, sched: Any, history: History,
             best_state: dict[str, torch.Tensor]) -> None:
        """Write everything :meth:`restore` needs to go on after ``epoch``, atomically."""
        state = {"epoch": epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": sched.state_dict() if sched is not None else None,
                 "history": history.to_dict(), "best_state": best_state}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_atomic(path, buffer.getvalue())

    def restore(self, path: str | Path,
                sched: Any) -> tuple[int, History, dict[str, torch.Tensor]]:
        """Load a state written by :meth:`save`; the first epoch still to run, and the rest."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if sched is not None and state["scheduler"] is not None:
            sched.load_state_dict(state["scheduler"])
        return state["epoch"] + 1, History.from_dict(state["history"]), state["best_state"]

    def epoch(self, epoch: int) -> EpochRecord:
        """One pass over the training set (shuffled with ``seed + epoch``), then validation."""
        start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
        order = np.random.default_rng(self.seed + epoch).permutation(len(self.train))
        n_batches = math.ceil(len(self.train) / self.batch_size)
        self.net.train()
        total = 0.0
        for k in range(n_batches):
            chunk = order[k * self.batch_size:(k + 1) * self.batch_size]
            loss = self.step([self.train[i] for i in chunk])
            total += loss
            self.bar.update(epoch, k + 1, n_batches, loss)
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

    def step(self, structures: Sequence[Structure]) -> float:
        """One optimizer step on a batch of structures; the batch's loss before the step.

        Every process is given the same whole batch and runs its own share of it; the
        gradients averaged over processes are those of the whole batch.
        """
        self.optimizer.zero_grad(set_to_none=True)
        mine, weight = distributed.share_of_batch(structures, self.world)
        batch = collate(mine, self.cutoff, self.dtype).to(device=self.device)
        totals = (len(structures), sum(len(s.numbers) for s in structures))
        loss = weight * batch_loss(self.net, batch, create_graph=True, totals=totals,
                                   **self.weights)
        total = float(distributed.all_reduce_sum(loss.detach().double().cpu()))
        if not loss.requires_grad:  # nothing to train
            return total
        (loss * self.world.size).backward()  # DDP averages: ×N makes it the batch's gradient
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return total

"""Training potentials: ``python -m fusiondsl.models.train`` (one process, or under torchrun).

The command runs :func:`fusiondsl.models.experiment.main`: generate or load a data set, train
the named models, write ``results.json``, ``results.md``, ``curves.png`` and checkpoints.
Started by ``torchrun --nproc_per_node=N -m fusiondsl.models.train …`` it trains
data-parallel over the N processes (:mod:`fusiondsl.models.distributed`).

This module also gathers the training API under its historical name:

- :func:`energy_and_forces`, :func:`fit_references`, :func:`batch_loss`, :func:`evaluate`
  (:mod:`fusiondsl.models.loss`);
- :func:`fit` and :class:`Trainer` (:mod:`fusiondsl.models.fitting`);
- :class:`EpochRecord`, :class:`History`, :class:`Progress` (:mod:`fusiondsl.models.history`).
"""

from __future__ import annotations

import sys

from fusiondsl.models.experiment import main
from fusiondsl.models.fitting import SCHEDULERS, Trainer, fit
from fusiondsl.models.history import EpochRecord, History, Progress
from fusiondsl.models.loss import batch_loss, energy_and_forces, evaluate, fit_references

__all__ = [
    "SCHEDULERS",
    "EpochRecord",
    "History",
    "Progress",
    "Trainer",
    "batch_loss",
    "energy_and_forces",
    "evaluate",
    "fit",
    "fit_references",
    "main",
]

if __name__ == "__main__":
    sys.exit(main())

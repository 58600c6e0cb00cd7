"""Interatomic potentials built from compiled fusion diagrams (issues 8 and 16).

Every equivariant contraction in these models is compiled from a ``.fd`` spec (see
``fusiondsl/models/specs``); the rest is ordinary torch: radial bases, MLPs, embeddings.

- Data: :mod:`~fusiondsl.models.readers` (structures, our and rMD17's ``.npz``),
  :mod:`~fusiondsl.models.asedb` (ase databases, QM9), :mod:`~fusiondsl.models.data` (batches
  with a radius graph, splits; re-exports the readers), :mod:`~fusiondsl.models.emt` (EMT
  clusters) and :mod:`~fusiondsl.models.molecules` (GFN2-xTB molecules in rMD17 format), both
  sampled by :mod:`~fusiondsl.models.sampling`.
- Models: :mod:`~fusiondsl.models.sh`, :mod:`~fusiondsl.models.radial` (spherical harmonics
  in e3nn's basis, radial bases); :mod:`~fusiondsl.models.mace`,
  :mod:`~fusiondsl.models.cormorant` (MACE-like and Cormorant-like, each with the paper's
  fusion-block variant, MoFD and CoFD), by name in :mod:`~fusiondsl.models.zoo`;
  :mod:`~fusiondsl.models.checkpoints`.
- Training, from the bottom up: :mod:`~fusiondsl.models.loss` (forces, loss, scores),
  :mod:`~fusiondsl.models.history`, :mod:`~fusiondsl.models.distributed` (data-parallel),
  :mod:`~fusiondsl.models.fitting` (``fit``), :mod:`~fusiondsl.models.reports`,
  :mod:`~fusiondsl.models.experiment` and its command ``python -m fusiondsl.models.train``
  (:mod:`~fusiondsl.models.train` also re-exports the training API);
  :mod:`~fusiondsl.models.md` runs molecular dynamics with a trained model.
"""

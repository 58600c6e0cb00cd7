"""Interatomic potentials built from compiled fusion diagrams (issue 8).

Every equivariant contraction in these models is compiled from a ``.fd`` spec (see
``fusiondsl/models/specs``); the rest is ordinary torch: radial bases, MLPs, embeddings.

- :mod:`fusiondsl.models.data`: structures, batching with a radius graph, a reproducible
  ase-EMT data generator, readers for rMD17 ``.npz`` and ase databases (QM9).
- :mod:`fusiondsl.models.sh`, :mod:`fusiondsl.models.radial`: spherical harmonics (e3nn's
  basis) and radial bases.
- :mod:`fusiondsl.models.mace`, :mod:`fusiondsl.models.cormorant`: a small MACE-like and a
  small Cormorant-like network, each with the paper's fusion-block variant (MoFD, CoFD).
- :mod:`fusiondsl.models.train`, :mod:`fusiondsl.models.md`: training on energies and forces,
  and a molecular-dynamics smoke run with a trained model as an ase calculator.
"""

"""Data for the issue-8 models: structures, batches with a radius graph, and where they come from.

- :class:`Structure` (one configuration) and the file readers live in
  :mod:`fusiondsl.models.readers` and are re-exported here: :func:`save_npz`,
  :func:`load_npz`, :func:`read_rmd17` (rMD17 ``.npz``), :func:`read_ase_db` (QM9 as an ase
  database).
- :func:`collate` joins structures into one disjoint graph (:class:`Batch`) with every ordered
  pair of atoms closer than a cutoff as an edge; :func:`batches` iterates over a data set in
  batches; :func:`split` makes train/validation/test sets.
- :func:`generate_emt` (from :mod:`fusiondsl.models.emt`) makes a reproducible data set
  offline: Langevin molecular dynamics of a small Cu-Ni cluster under ase's EMT potential;
  :mod:`fusiondsl.models.molecules` makes rMD17-style molecular data with GFN2-xTB. From the
  command line::

      python -m fusiondsl.models.data generate OUT.npz --n 1000 --seed 0

>>> import numpy as np
>>> water = Structure(np.array([8, 1, 1]), np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]),
...                   energy=None, forces=None)
>>> b = collate([water, water], cutoff=1.2)
>>> b.edge_index.tolist()
[[0, 0, 1, 2, 3, 3, 4, 5], [1, 2, 0, 0, 4, 5, 3, 3]]
>>> b.batch.tolist(), b.num_graphs, b.positions.dtype
([0, 0, 0, 1, 1, 1], 2, torch.float64)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from fusiondsl.models.asedb import read_ase_db
from fusiondsl.models.emt import generate_emt
from fusiondsl.models.readers import (
    ENERGY_UNITS,
    Structure,
    load_npz,
    read_rmd17,
    save_npz,
)

__all__ = [
    "ENERGY_UNITS",
    "Batch",
    "Structure",
    "batches",
    "collate",
    "generate_emt",
    "load_npz",
    "main",
    "radius_graph",
    "read_ase_db",
    "read_rmd17",
    "save_npz",
    "split",
]

T = TypeVar("T")


@dataclass
class Batch:
    """Several structures as one disjoint graph, ready for a model.

    Attributes:
        numbers: ``[N]`` long atomic numbers of all atoms, structure after structure.
        positions: ``[N, 3]`` floating positions in Å.
        edge_index: ``[2, E]`` long; row 0 is the receiver ``i``, row 1 the sender ``j``.
            Every ordered pair ``(i, j)``, ``i != j``, of atoms of the same structure with
            ``|r_j - r_i| < cutoff``, sorted by ``(i, j)``.
        batch: ``[N]`` long index of the structure each atom belongs to.
        num_graphs: the number of structures.
        energy: ``[num_graphs]`` total energies in eV, or None when the structures have none.
        forces: ``[N, 3]`` forces in eV/Å, or None when the structures have none.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    num_graphs: int
    energy: torch.Tensor | None
    forces: torch.Tensor | None

    def to(self, device: torch.device | str | None = None,
           dtype: torch.dtype | None = None) -> Batch:
        """A copy on ``device`` whose floating tensors have ``dtype`` (integers keep theirs).

        Args:
            device: the target device; None keeps each tensor's device.
            dtype: a floating dtype for positions, energy and forces; None keeps theirs.

        Returns:
            A new batch (tensors already in place are shared, not copied).

        Raises:
            ValueError: when ``dtype`` is not a floating dtype.
        """
        if dtype is not None and not dtype.is_floating_point:
            raise ValueError(f"Batch.to: dtype must be floating, got {dtype}")

        def move(t: torch.Tensor | None, floating: bool) -> torch.Tensor | None:
            if t is None:
                return None
            return t.to(device=device, dtype=dtype if floating else None)

        return Batch(numbers=move(self.numbers, False), positions=move(self.positions, True),
                     edge_index=move(self.edge_index, False), batch=move(self.batch, False),
                     num_graphs=self.num_graphs, energy=move(self.energy, True),
                     forces=move(self.forces, True))


def radius_graph(positions: np.ndarray, cutoff: float) -> np.ndarray:
    """Every ordered pair of distinct atoms closer than ``cutoff``, sorted by (receiver, sender).

    All pairs are compared (O(n²) memory and time), which suits molecules and clusters.

    Args:
        positions: ``[n, 3]`` positions of one structure.
        cutoff: the (exclusive) distance cutoff, in the units of ``positions``.

    Returns:
        ``[2, E]`` int64 indices into ``positions``: row 0 receivers ``i``, row 1 senders ``j``.
    """
    positions = np.asarray(positions, dtype=np.float64)
    dist = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    close = dist < cutoff
    np.fill_diagonal(close, False)
    i, j = np.nonzero(close)  # row-major order: sorted by i, then j
    return np.stack([i, j]).astype(np.int64)


def collate(structures: Sequence[Structure], cutoff: float,
            dtype: torch.dtype = torch.float64) -> Batch:
    """Join structures into one :class:`Batch` with a radius graph inside each structure.

    Distances are computed in float64 whatever ``dtype`` is, so the graph does not depend
    on the dtype chosen for the model.

    Args:
        structures: at least one structure.
        cutoff: the edge cutoff in Å (exclusive), positive.
        dtype: the floating dtype of positions, energies and forces.

    Returns:
        The batch; ``energy``/``forces`` are None when no structure has them.

    Raises:
        ValueError: for no structures, a non-positive cutoff, a non-floating dtype, or
            energies/forces known for some of the structures only.
    """
    if not structures:
        raise ValueError("collate: no structures")
    if not cutoff > 0:
        raise ValueError(f"collate: cutoff must be positive, got {cutoff}")
    if not dtype.is_floating_point:
        raise ValueError(f"collate: dtype must be floating, got {dtype}")
    counts = [len(s.numbers) for s in structures]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    edges = [radius_graph(s.positions, cutoff) + off for s, off in zip(structures, offsets)]
    energy, forces = _labels(structures, dtype)
    return Batch(
        numbers=torch.from_numpy(np.concatenate([s.numbers for s in structures])),
        positions=torch.from_numpy(np.concatenate([s.positions for s in structures])).to(dtype),
        edge_index=torch.from_numpy(np.concatenate(edges, axis=1)),
        batch=torch.repeat_interleave(torch.arange(len(structures)), torch.tensor(counts)),
        num_graphs=len(structures), energy=energy, forces=forces)


def _labels(structures: Sequence[Structure],
            dtype: torch.dtype) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Energies and forces as tensors: all structures have them, or none (then None)."""
    has_e = sum(s.energy is not None for s in structures)
    has_f = sum(s.forces is not None for s in structures)
    for name, has in (("energies", has_e), ("forces", has_f)):
        if 0 < has < len(structures):
            raise ValueError(f"collate: {name} are known for {has} of {len(structures)} "
                             "structures; give all or none")
    energy = forces = None
    if has_e:
        energy = torch.tensor([s.energy for s in structures], dtype=dtype)
    if has_f:
        forces = torch.from_numpy(np.concatenate([s.forces for s in structures])).to(dtype)
    return energy, forces


def batches(structures: Sequence[Structure], batch_size: int, cutoff: float, *,
            shuffle: bool = False, seed: int = 0,
            dtype: torch.dtype = torch.float64) -> Iterator[Batch]:
    """Batches covering every structure exactly once (the last one may be smaller).

    Args:
        structures: the data set.
        batch_size: structures per batch, positive.
        cutoff: the edge cutoff in Å (see :func:`collate`).
        shuffle: visit the structures in a random order (the same one for the same seed:
            pass e.g. the epoch number as ``seed`` for a new order each epoch).
        seed: seeds the order when shuffling.
        dtype: the floating dtype of the batches.

    Yields:
        One :class:`Batch` per ``batch_size`` structures.

    Raises:
        ValueError: for a batch size below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be at least 1, got {batch_size}")
    order = np.arange(len(structures))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(structures))
    for start in range(0, len(order), batch_size):
        chunk = [structures[k] for k in order[start:start + batch_size]]
        yield collate(chunk, cutoff, dtype)


def split(structures: Sequence[T], n_train: int, n_val: int,
          seed: int = 0) -> tuple[list[T], list[T], list[T]]:
    """A random split into training, validation and test sets (the test set is the rest).

    Args:
        structures: the data set.
        n_train: the size of the training set.
        n_val: the size of the validation set.
        seed: seeds the random permutation (the same seed gives the same split).

    Returns:
        ``(train, val, test)``, disjoint, each in the order of one random permutation.

    Raises:
        ValueError: for negative sizes or more than there are structures.
    """
    if n_train < 0 or n_val < 0 or n_train + n_val > len(structures):
        raise ValueError(f"split: cannot take {n_train} + {n_val} from {len(structures)} "
                         "structures")
    order = np.random.default_rng(seed).permutation(len(structures))
    pick = [structures[k] for k in order]
    return pick[:n_train], pick[n_train:n_train + n_val], pick[n_train + n_val:]


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m fusiondsl.models.data generate OUT.npz [options]``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m fusiondsl.models.data",
                                     description="Data sets for the fusiondsl models.")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="EMT cluster dynamics to an .npz (eV, Å)")
    gen.add_argument("out", help="the .npz file to write")
    gen.add_argument("--n", type=int, default=1000, help="number of structures (1000)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (0)")
    gen.add_argument("--symbols", default="Cu7Ni6", help="cluster composition (Cu7Ni6)")
    gen.add_argument("--temperature", type=float, default=600.0, help="in K (600)")
    gen.add_argument("--chains", type=int, default=4, help="independent MD chains (4)")
    gen.add_argument("--stride", type=int, default=10, help="MD steps between frames (10)")
    gen.add_argument("--equilibration", type=int, default=300,
                     help="MD steps dropped at the start of each chain (300)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        structures = generate_emt(args.n, args.seed, args.symbols, args.temperature,
                                  chains=args.chains, stride=args.stride,
                                  equilibration_steps=args.equilibration)
        save_npz(args.out, structures)
    except (ValueError, ImportError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {len(structures)} {args.symbols} structures ({args.temperature:g} K, "
          f"seed {args.seed}) to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

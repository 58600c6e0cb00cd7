"""Data for the issue-8 models: structures, batches with a radius graph, and where they come from.

- :class:`Structure` (one configuration) and the file readers live in
  :mod:`fusiondsl.models.readers` and are re-exported here: :func:`save_npz`,
  :func:`load_npz`, :func:`read_rmd17` (rMD17 ``.npz``), :func:`read_ase_db` (QM9 as an ase
  database).
- :func:`collate` joins structures into one disjoint graph (:class:`Batch`) with every ordered
  pair of atoms closer than a cutoff as an edge; :func:`batches` iterates over a data set in
  batches; :func:`split` makes train/validation/test sets.
- :func:`generate_emt` makes a reproducible data set offline: Langevin molecular dynamics of a
  small Cu-Ni cluster under ase's EMT potential. From the command line::

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
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from fusiondsl.models.readers import (
    ENERGY_UNITS,
    Structure,
    load_npz,
    read_ase_db,
    read_rmd17,
    require_ase,
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


def generate_emt(n: int, seed: int = 0, symbols: str = "Cu7Ni6",
                 temperature_K: float = 600.0,  # noqa: N803 (the interface's name, as in ase)
                 *, chains: int = 4, timestep_fs: float = 2.0, friction_per_fs: float = 0.01,
                 equilibration_steps: int = 300, stride: int = 10) -> list[Structure]:
    """Reproducible energies and forces from ase's EMT potential on a small metal cluster.

    Method: the ``len(symbols)`` fcc lattice sites nearest to one site (13 make a
    cuboctahedron) at a lattice constant averaged over the composition. Each of ``chains``
    independent chains shuffles the elements over the sites, relaxes the cluster (BFGS,
    fmax 0.05 eV/Å), draws Maxwell-Boltzmann velocities at ``temperature_K`` and runs
    Langevin dynamics at that temperature; after ``equilibration_steps`` it keeps every
    ``stride``-th frame. Frames are translated to put the centre of mass at the origin (EMT
    without a cell is translation invariant, so energies and forces are unchanged). The
    structures come chain after chain. Everything random comes from
    ``numpy.random.default_rng`` seeded from ``seed`` (one child seed per chain), so the same
    arguments give identical arrays, and a chain's frames do not depend on ``n``.

    Args:
        n: the number of structures.
        seed: the random seed.
        symbols: the cluster's composition as a chemical formula of fcc metals that EMT
            knows (Al, Cu, Ag, Au, Ni, Pd, Pt), e.g. ``"Cu7Ni6"``.
        temperature_K: the temperature of the dynamics in K.
        chains: the number of independent chains (``n`` is shared out evenly).
        timestep_fs: the time step in fs.
        friction_per_fs: the Langevin friction in 1/fs.
        equilibration_steps: steps discarded at the start of each chain.
        stride: steps between kept frames.

    Returns:
        ``n`` structures with total energies (eV) and forces (eV/Å).

    Raises:
        ValueError: for bad arguments or elements EMT cannot do as an fcc metal.
        ImportError: when ase is not installed.
    """
    require_ase("generate_emt")
    numbers = _composition(symbols)
    _check_generator_args(n, chains, temperature_K, timestep_fs, equilibration_steps, stride)
    sites = _fcc_cluster(numbers)
    children = np.random.SeedSequence(seed).spawn(chains)
    sizes = [n // chains + (c < n % chains) for c in range(chains)]
    out: list[Structure] = []
    for child, size in zip(children, sizes):
        if size:
            out += _emt_chain(numbers, sites, size, np.random.default_rng(child), temperature_K,
                              timestep_fs, friction_per_fs, equilibration_steps, stride)
    return out


def _composition(symbols: str) -> np.ndarray:
    """The atomic numbers of a formula, checked against EMT's fcc metals."""
    from ase.calculators.emt import parameters
    from ase.data import atomic_numbers, reference_states
    from ase.symbols import string2symbols

    try:
        names = string2symbols(symbols)
    except (ValueError, KeyError):
        raise ValueError(f"generate_emt: cannot read the formula {symbols!r}") from None
    bad = sorted({s for s in names if s not in parameters
                  or reference_states[atomic_numbers[s]].get("symmetry") != "fcc"})
    if bad or not names:
        raise ValueError(f"generate_emt: {symbols!r} must name fcc metals EMT knows "
                         f"(Al, Cu, Ag, Au, Ni, Pd, Pt); not {', '.join(bad) or 'empty'}")
    return np.array([atomic_numbers[s] for s in names], dtype=np.int64)


def _check_generator_args(n: int, chains: int, temperature_k: float, timestep_fs: float,
                          equilibration_steps: int, stride: int) -> None:
    """One-line errors for arguments the dynamics cannot use."""
    if n < 0 or chains < 1 or stride < 1 or equilibration_steps < 0:
        raise ValueError(f"generate_emt: need n >= 0, chains >= 1, stride >= 1 and "
                         f"equilibration_steps >= 0 (got {n}, {chains}, {stride}, "
                         f"{equilibration_steps})")
    if not (temperature_k > 0 and timestep_fs > 0):
        raise ValueError(f"generate_emt: temperature_K and timestep_fs must be positive "
                         f"(got {temperature_k}, {timestep_fs})")


def _fcc_cluster(numbers: np.ndarray) -> np.ndarray:
    """Positions of the ``len(numbers)`` fcc sites nearest to one site, centred at 0."""
    from ase.build import bulk
    from ase.data import reference_states

    a = float(np.mean([reference_states[z]["a"] for z in numbers]))  # Vegard's law
    reps = math.ceil((2 * len(numbers)) ** (1 / 3)) + 2  # 4 atoms per cube, ample margin
    crystal = bulk("Cu", "fcc", a=a, cubic=True).repeat(reps).positions
    centre = crystal[np.argmin(np.linalg.norm(crystal - crystal.mean(0), axis=1))]
    dist = np.linalg.norm(crystal - centre, axis=1)
    # a stable sort breaks ties within a shell by index, so the cluster is always the same
    nearest = crystal[np.argsort(dist, kind="stable")[:len(numbers)]]
    return nearest - nearest.mean(0)


def _emt_chain(numbers: np.ndarray, sites: np.ndarray, size: int, rng: np.random.Generator,
               temperature_k: float, timestep_fs: float, friction_per_fs: float,
               equilibration_steps: int, stride: int) -> list[Structure]:
    """One Langevin chain of :func:`generate_emt`: ``size`` frames."""
    from ase import Atoms, units
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.optimize import BFGS

    # shuffle the sites, not the elements, so every frame lists its atoms in the same order
    # (and save_npz can use rMD17's layout)
    atoms = Atoms(numbers=numbers, positions=sites[rng.permutation(len(sites))])
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=200)
    # Maxwell-Boltzmann momenta drawn here: ase renames its helper between versions
    masses = atoms.get_masses()[:, None]
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_k)
    atoms.set_momenta(momenta - masses * momenta.sum(0) / masses.sum())  # no net drift
    # fixcm=False: ase deprecates fixcm=True (it biases small systems); the drift of the
    # centre of mass is removed from the stored frames instead
    md = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_k,
                  friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    md.run(equilibration_steps)
    frames = []
    for _ in range(size):
        md.run(stride)
        # the calculator cached energy and forces for these positions in the last step
        frames.append(Structure(atoms.numbers.copy(),
                                atoms.positions - atoms.get_center_of_mass(),
                                atoms.get_potential_energy(), atoms.get_forces().copy()))
    return frames


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

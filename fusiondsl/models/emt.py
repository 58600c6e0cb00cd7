"""A reproducible data set made offline: Langevin dynamics of a small metal cluster under EMT.

:func:`generate_emt` places a cluster on fcc lattice sites, relaxes it under ase's EMT
potential and samples it with :func:`fusiondsl.models.sampling.langevin_frames`. It is
re-exported by :mod:`fusiondsl.models.data`, whose command line runs it::

    python -m fusiondsl.models.data generate OUT.npz --n 1000 --seed 0
"""

from __future__ import annotations

import math

import numpy as np

from fusiondsl.models.readers import Structure, require_ase
from fusiondsl.models.sampling import LangevinSettings, langevin_frames


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
    from ase import Atoms
    from ase.calculators.emt import EMT
    from ase.optimize import BFGS

    # shuffle the sites, not the elements, so every frame lists its atoms in the same order
    # (and save_npz can use rMD17's layout)
    atoms = Atoms(numbers=numbers, positions=sites[rng.permutation(len(sites))])
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=200)
    settings = LangevinSettings(temperature_k, timestep_fs, friction_per_fs,
                                equilibration_steps, stride)
    return langevin_frames(atoms, size, rng, settings)

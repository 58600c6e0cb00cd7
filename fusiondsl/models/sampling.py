"""Langevin sampling with any ase calculator: the loop both data generators share.

:func:`langevin_frames` draws Maxwell–Boltzmann momenta from a seeded generator, runs ase's
Langevin thermostat, drops an equilibration and keeps every ``stride``-th frame, centred at
the centre of mass. The EMT clusters (:mod:`fusiondsl.models.emt`) and the GFN2-xTB molecules
(:mod:`fusiondsl.models.molecules`) both sample this way, so the same seed gives the same
frames whatever the calculator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.models.readers import Structure

if TYPE_CHECKING:
    from ase import Atoms


@dataclass(frozen=True)
class LangevinSettings:
    """How one chain is sampled.

    Attributes:
        temperature_K: thermostat and initial-velocity temperature, K.
        timestep_fs: the time step, fs.
        friction_per_fs: the Langevin friction, 1/fs.
        equilibration_steps: steps dropped at the start of the chain.
        stride: steps between kept frames.
    """

    temperature_K: float  # noqa: N815 (ase's name)
    timestep_fs: float
    friction_per_fs: float
    equilibration_steps: int
    stride: int


def langevin_frames(atoms: Atoms, size: int, rng: np.random.Generator,
                    settings: LangevinSettings,
                    on_frame: Callable[[int], None] | None = None) -> list[Structure]:
    """``size`` frames of Langevin dynamics from ``atoms`` (which must carry a calculator).

    The initial momenta are Maxwell–Boltzmann at the temperature with the net momentum
    removed; the thermostat runs with ``fixcm=False`` (ase deprecates ``fixcm=True``, which
    biases small systems) and the centre-of-mass drift is removed from the stored frames
    instead. Every random number comes from ``rng``. ``atoms`` is moved along the trajectory.

    Args:
        atoms: the starting structure with its calculator.
        size: frames to keep.
        rng: the only source of randomness.
        settings: temperature, time step, friction, equilibration and stride.
        on_frame: called with the number of frames kept so far, after each frame.

    Returns:
        The frames with the calculator's energies (eV) and forces (eV/Å).
    """
    from ase import units
    from ase.md.langevin import Langevin

    temperature = settings.temperature_K
    # Maxwell-Boltzmann momenta drawn here: ase renames its helper between versions
    masses = atoms.get_masses()[:, None]
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature)
    atoms.set_momenta(momenta - masses * momenta.sum(0) / masses.sum())  # no net drift
    md = Langevin(atoms, settings.timestep_fs * units.fs, temperature_K=temperature,
                  friction=settings.friction_per_fs / units.fs, fixcm=False, rng=rng)
    md.run(settings.equilibration_steps)
    frames = []
    for _ in range(size):
        md.run(settings.stride)
        # the calculator cached energy and forces for these positions in the last step
        frames.append(Structure(atoms.numbers.copy(),
                                atoms.positions - atoms.get_center_of_mass(),
                                atoms.get_potential_energy(), atoms.get_forces().copy()))
        if on_frame is not None:
            on_frame(len(frames))
    return frames

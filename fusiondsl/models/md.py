"""Molecular dynamics with a trained potential: an ase calculator and an NVE smoke run.

:class:`FusionCalculator` wraps a :class:`~fusiondsl.models.base.Potential` as an ase
calculator (energy in eV, forces in eV/Å; free, non-periodic structures only, like the data
sets). :func:`run_md` integrates Newton's equations with velocity Verlet from seeded
Maxwell–Boltzmann velocities and reports how well the total energy is conserved, the usual
smoke test of a learned potential's smoothness.

``python -m fusiondsl.models.md --model RUN/mace.pt`` runs it from the command line on a
held-out structure (``--data FILE.npz --index K``) or a freshly generated EMT one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fusiondsl.models.checkpoints import load_model
from fusiondsl.models.data import Structure, collate, generate_emt, load_npz
from fusiondsl.models.loss import energy_and_forces
from fusiondsl.models.usage import DefaultsHelp, OneLineParser, UsageError

if TYPE_CHECKING:
    from ase import Atoms

    from fusiondsl.models.base import Potential


_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> type:
    """``FusionCalculator`` is built on first access, so that importing this module needs no ase."""
    if name != "FusionCalculator":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _CLASSES:
        _CLASSES[name] = _build_calculator_class()
    return _CLASSES[name]


def _build_calculator_class() -> type:
    from ase.calculators.calculator import Calculator, all_changes

    class FusionCalculator(Calculator):
        """An ase calculator for a :class:`Potential`: ``energy`` (eV) and ``forces`` (eV/Å).

        Args:
            model: the potential; evaluated in eval mode, in its own dtype and device.
            cutoff: radius of the neighbour graph, Å (the one the model was trained with).
            **kwargs: passed to ``Calculator``.
        """

        implemented_properties = ("energy", "forces")

        def __init__(self, model: Potential, *, cutoff: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.model, self.cutoff = model.eval(), float(cutoff)

        def calculate(self, atoms: Atoms | None = None, properties: Any = None,
                      system_changes: Any = all_changes) -> None:
            """Evaluate energy and forces of ``atoms`` (both, whatever ``properties`` asks)."""
            super().calculate(atoms, properties, system_changes)
            energy, forces = model_energy_forces(self.model, self.atoms, self.cutoff)
            self.results = {"energy": energy, "free_energy": energy, "forces": forces}

    FusionCalculator.__module__ = __name__
    return FusionCalculator


def model_energy_forces(model: Potential, atoms: Atoms, cutoff: float) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å, float64 ``[n, 3]``) of one free structure."""
    if np.any(atoms.pbc):
        raise ValueError("FusionCalculator handles free (non-periodic) structures only")
    param = next(iter(model.parameters()), model.energy_scale)
    structure = Structure(numbers=np.asarray(atoms.numbers, dtype=np.int64),
                          positions=np.asarray(atoms.positions, dtype=np.float64),
                          energy=None, forces=None)
    batch = collate([structure], cutoff, dtype=param.dtype).to(device=param.device)
    energy, forces = energy_and_forces(model, batch, create_graph=False)
    return float(energy[0]), forces.double().cpu().numpy()


@dataclass
class MDReport:
    """Energy conservation of an NVE run (see :func:`run_md`).

    Attributes:
        n_atoms: atoms in the structure.
        steps: velocity-Verlet steps taken.
        timestep_fs: the time step, fs.
        duration_ps: ``steps · timestep``, ps.
        initial_energy: total energy at t = 0, eV.
        drift_per_atom: least-squares slope of ``E_total / n_atoms`` times the duration, eV/atom.
        drift_per_atom_per_ps: that slope, eV/atom/ps.
        max_deviation: ``max_t |E_total(t) - E_total(0)|``, eV.
        max_deviation_per_atom: the same divided by ``n_atoms``, eV/atom.
        mean_temperature_K: mean instantaneous temperature over the run (t = 0 included), K.
        finite: whether every energy stayed finite (an exploding potential gives False).
        times_ps: the sampled times (every step).
        total_energies: total energy at each sampled time, eV.
        temperatures_K: temperature at each sampled time, K.
    """

    n_atoms: int
    steps: int
    timestep_fs: float
    duration_ps: float
    initial_energy: float
    drift_per_atom: float
    drift_per_atom_per_ps: float
    max_deviation: float
    max_deviation_per_atom: float
    mean_temperature_K: float  # noqa: N815
    finite: bool
    times_ps: tuple[float, ...]
    total_energies: tuple[float, ...]
    temperatures_K: tuple[float, ...]  # noqa: N815

    def summary(self) -> dict[str, Any]:
        """The scalar fields, JSON-ready (without the time series)."""
        skip = {"times_ps", "total_energies", "temperatures_K"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


def run_md(model: Potential, atoms: Atoms, *, cutoff: float, steps: int = 300,
           timestep_fs: float = 0.5, temperature_K: float = 300.0,  # noqa: N803
           seed: int = 0) -> MDReport:
    """NVE molecular dynamics with ``model`` from ``atoms``; report total-energy conservation.

    Velocities are drawn from a Maxwell–Boltzmann distribution at ``temperature_K`` with
    ``numpy.random.default_rng(seed)``, the centre-of-mass momentum is removed (keeping the
    temperature), and ``steps`` velocity-Verlet steps follow. ``atoms`` itself is not changed.

    Args:
        model: the potential.
        atoms: the starting structure (ase ``Atoms``, non-periodic).
        cutoff: neighbour-graph radius, Å.
        steps: number of time steps.
        timestep_fs: the time step, fs.
        temperature_K: temperature of the initial velocities, K.
        seed: seed of the velocity draw; the run is deterministic for it.

    Returns:
        An :class:`MDReport`.
    """
    from ase import units
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    if steps < 1 or timestep_fs <= 0:
        raise ValueError("run_md needs steps >= 1 and a positive time step")
    atoms = atoms.copy()
    atoms.calc = __getattr__("FusionCalculator")(model, cutoff=cutoff)
    _maxwell_boltzmann(atoms, temperature_K, np.random.default_rng(seed))
    Stationary(atoms)
    energies: list[float] = []
    temperatures: list[float] = []

    def record() -> None:
        energies.append(float(atoms.get_potential_energy() + atoms.get_kinetic_energy()))
        temperatures.append(float(atoms.get_temperature()))

    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    dyn.attach(record, interval=1)
    dyn.run(steps)
    return _report(len(atoms), steps, timestep_fs, energies, temperatures)


def _maxwell_boltzmann(atoms: Atoms, temperature_K: float,  # noqa: N803
                       rng: np.random.Generator) -> None:
    """Maxwell–Boltzmann momenta: ``thermalize_momenta`` (ase >= 3.29) or its predecessor."""
    from ase.md import velocitydistribution

    if hasattr(velocitydistribution, "thermalize_momenta"):
        velocitydistribution.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:  # pragma: no cover - ase < 3.29
        velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K,
                                                          rng=rng)


def _report(n_atoms: int, steps: int, timestep_fs: float, energies: list[float],
            temperatures: list[float]) -> MDReport:
    # ase calls observers once before the first step too; keep one sample per time.
    energies, temperatures = energies[-(steps + 1):], temperatures[-(steps + 1):]
    times = np.arange(len(energies)) * timestep_fs / 1000.0
    e = np.asarray(energies)
    finite = bool(np.all(np.isfinite(e)))
    slope = float(np.polyfit(times, e / n_atoms, 1)[0]) if finite else float("nan")
    deviation = float(np.max(np.abs(e - e[0]))) if finite else float("nan")
    duration = steps * timestep_fs / 1000.0
    return MDReport(n_atoms=n_atoms, steps=steps, timestep_fs=timestep_fs,
                    duration_ps=duration, initial_energy=float(e[0]),
                    drift_per_atom=slope * duration, drift_per_atom_per_ps=slope,
                    max_deviation=deviation, max_deviation_per_atom=deviation / n_atoms,
                    mean_temperature_K=float(np.mean(temperatures)), finite=finite,
                    times_ps=tuple(times.tolist()), total_energies=tuple(energies),
                    temperatures_K=tuple(temperatures))


def structure_to_atoms(structure: Structure) -> Atoms:
    """An ase ``Atoms`` (no cell, no periodicity) from a data-set structure."""
    from ase import Atoms

    return Atoms(numbers=structure.numbers, positions=structure.positions)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m fusiondsl.models.md",
                      description="NVE molecular dynamics with a trained checkpoint.",
                      formatter_class=DefaultsHelp)
    p.add_argument("--model", required=True, help="checkpoint written by the experiment (.pt)")
    p.add_argument("--data", help="start from a structure of this .npz (default: one new "
                                  "EMT structure)")
    p.add_argument("--index", type=int, default=0, help="which structure of --data")
    p.add_argument("--steps", type=int, default=300, help="velocity-Verlet steps")
    p.add_argument("--timestep-fs", type=float, default=0.5, help="time step, fs")
    p.add_argument("--temperature-K", dest="temperature_K", type=float, default=300.0,
                   help="temperature of the initial velocities, K")
    p.add_argument("--seed", type=int, default=0, help="seed of the velocities (and of the "
                                                       "generated structure)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: load a checkpoint, run :func:`run_md`, print the report's summary."""
    args = _parser().parse_args(argv)
    try:
        model, info = load_model(args.model)
        structure = _start_structure(args.data, args.index, args.seed)
        if args.steps < 1 or args.timestep_fs <= 0:
            raise UsageError("--steps must be >= 1 and --timestep-fs positive")
    except (UsageError, OSError) as err:
        print(f"python -m fusiondsl.models.md: error: {err}", file=sys.stderr)
        return 2
    report = run_md(model, structure_to_atoms(structure), cutoff=info["cutoff"],
                    steps=args.steps, timestep_fs=args.timestep_fs,
                    temperature_K=args.temperature_K, seed=args.seed)
    for key, value in report.summary().items():
        print(f"{key:<24} {value:.6g}" if isinstance(value, float) else f"{key:<24} {value}")
    return 0


def _start_structure(data: str | None, index: int, seed: int) -> Structure:
    if data is None:
        return generate_emt(1, seed=seed)[0]
    structures = load_npz(data)
    if not -len(structures) <= index < len(structures):
        raise UsageError(f"--index {index} is out of range for {len(structures)} structures")
    return structures[index]


if __name__ == "__main__":
    sys.exit(main())

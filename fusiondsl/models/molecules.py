"""Molecular data made here: GFN2-xTB Langevin dynamics of rMD17 molecules, as rMD17 files.

rMD17 (Christensen & von Lilienfeld 2020) is DFT data of ten small molecules sampled by
molecular dynamics at 500 K. This module makes data of the same kind offline: the molecule's
starting geometry (ase's G2 set or coordinates written here) is relaxed and sampled by
Langevin dynamics at 500 K under GFN2-xTB (``tblite``, a semi-empirical tight-binding method,
far cheaper than DFT), and written with rMD17's keys and units, so
:func:`fusiondsl.models.readers.read_rmd17` reads it unchanged:

- ``nuclear_charges`` ``[n]``, ``coords`` ``[M, n, 3]`` in Å,
- ``energies`` ``[M]`` in kcal/mol, ``forces`` ``[M, n, 3]`` in kcal/mol/Å.

:func:`molecule_dataset` makes a set on first use into the cache folder
(``$FUSIONDSL_CACHE_DIR``, else ``$XDG_CACHE_HOME/fusiondsl``, else ``~/.cache/fusiondsl``,
subfolder ``molecules``) and returns its path afterwards. The same arguments give a
bit-identical file: every random number comes from ``numpy.random.default_rng`` seeded from
``seed``, and tblite runs on one OpenMP thread (``torch.set_num_threads(1)`` while it
runs: the two share one OpenMP runtime). From the
command line::

    python -m fusiondsl.models.molecules generate ethanol malonaldehyde uracil --n 1600

Needs the ``molecules`` extra (``pip install 'fusiondsl[molecules]'``: tblite and ase).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import torch

from fusiondsl.core.fileio import atomic_open
from fusiondsl.models.sampling import LangevinSettings, langevin_frames

if TYPE_CHECKING:
    from ase import Atoms

    from fusiondsl.models.readers import Structure

FORMAT_VERSION = 1  # part of every cache key: bump it when the sampling changes


def _ring(ring: str, substituents: str, bonds: Sequence[float]) -> tuple[str, np.ndarray]:
    """A planar six-ring: ring atoms on a hexagon, one substituent outward from each.

    A ``.`` in ``substituents`` means none; ``bonds`` gives each substituent's bond length.
    The geometry only has to be a sane start: it is relaxed under GFN2-xTB before sampling.
    """
    radius, symbols, positions = 1.39, [], []
    for k, (atom, sub, bond) in enumerate(zip(ring, substituents, bonds)):
        direction = np.array([np.cos(np.pi / 3 * k), np.sin(np.pi / 3 * k), 0.0])
        symbols.append(atom)
        positions.append(radius * direction)
        if sub != ".":
            symbols.append(sub)
            positions.append((radius + bond) * direction)
    return "".join(symbols), np.array(positions)


def _uracil() -> Atoms:
    from ase import Atoms

    # ring N1 C2 N3 C4 C5 C6; N1-H, C2=O, N3-H, C4=O, C5-H, C6-H
    symbols, positions = _ring("NCNCCC", "HOHOHH", (1.01, 1.22, 1.01, 1.22, 1.08, 1.08))
    return Atoms(symbols, positions)


def _malonaldehyde() -> Atoms:
    from ase import Atoms

    # the enol form: O=CH-CH=CH-OH with the hydroxyl H bridging to the carbonyl O (a
    # pseudo-ring C C O H O C); the H starts nearer one O, off the symmetric saddle point
    symbols, positions = _ring("CCOHOC", "HH...H", (1.08, 1.08, 0, 0, 0, 1.08))
    oxygen = symbols.index("O")
    hydrogen = symbols.index("H", oxygen)
    bond = positions[hydrogen] - positions[oxygen]
    positions[hydrogen] = positions[oxygen] + 0.98 * bond / np.linalg.norm(bond)  # O-H 0.98 Å
    return Atoms(symbols, positions)


def _g2(name: str) -> Callable[[], Atoms]:
    def build() -> Atoms:
        from ase.build import molecule

        return molecule(name)

    return build


MOLECULES: dict[str, Callable[[], Atoms]] = {
    "ethanol": _g2("CH3CH2OH"),
    "malonaldehyde": _malonaldehyde,
    "uracil": _uracil,
    "benzene": _g2("C6H6"),
}
"""Starting geometries of the molecules this module can sample (all are rMD17 molecules)."""


@dataclass(frozen=True)
class MoleculeSettings:
    """Everything that decides a generated data set (and so its cache key).

    Attributes:
        molecule: a key of :data:`MOLECULES`.
        n: frames in the set.
        seed: the random seed.
        temperature_K: Langevin temperature, K (rMD17: 500 K).
        timestep_fs: time step, fs (rMD17: 0.5 fs).
        friction_per_fs: Langevin friction, 1/fs.
        chains: independent chains, each from the relaxed geometry with its own velocities.
        equilibration_steps: steps dropped at the start of each chain.
        stride: steps between kept frames.
        method: the tblite method.
    """

    molecule: str
    n: int
    seed: int = 0
    temperature_K: float = 500.0  # noqa: N815 (ase's name)
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.02
    chains: int = 4
    equilibration_steps: int = 400
    stride: int = 10
    method: str = "GFN2-xTB"

    def check(self) -> None:
        """Raise ValueError for settings the sampler cannot use."""
        if self.molecule not in MOLECULES:
            raise ValueError(f"unknown molecule {self.molecule!r}; known: "
                             f"{', '.join(sorted(MOLECULES))}")
        if self.n < 1 or self.chains < 1 or self.stride < 1 or self.equilibration_steps < 0:
            raise ValueError(f"need n >= 1, chains >= 1, stride >= 1, equilibration_steps >= 0 "
                             f"(got {self.n}, {self.chains}, {self.stride}, "
                             f"{self.equilibration_steps})")
        if not (self.temperature_K > 0 and self.timestep_fs > 0 and self.friction_per_fs > 0):
            raise ValueError("temperature_K, timestep_fs and friction_per_fs must be positive")

    def file_name(self) -> str:
        """``ethanol-500K-n1600-seed0-<hash>.npz``: readable, and unique per settings."""
        key = json.dumps({**asdict(self), "version": FORMAT_VERSION}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        return (f"{self.molecule}-{self.temperature_K:g}K-n{self.n}-seed{self.seed}-"
                f"{digest}.npz")


def data_cache_dir() -> Path:
    """The folder generated molecular data sets are cached in (the package's cache root)."""
    root = os.environ.get("FUSIONDSL_CACHE_DIR")
    if root:
        return Path(root) / "molecules"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fusiondsl" / "molecules"


def require_tblite(what: str) -> None:
    """Raise a clear ImportError when tblite or ase (the ``molecules`` extra) is missing."""
    if "tblite" not in sys.modules:  # OpenMP reads this once, when tblite's library loads
        os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import ase  # noqa: F401
        import tblite.ase  # noqa: F401
    except ImportError:
        raise ImportError(f"{what} needs tblite and ase: pip install 'fusiondsl[molecules]'"
                          ) from None


def _calculator(method: str) -> object:
    from tblite.ase import TBLite

    return TBLite(method=method, verbosity=0)


def relaxed(settings: MoleculeSettings) -> Atoms:
    """The starting geometry of ``settings.molecule``, relaxed (BFGS to 0.01 eV/Å) under tblite.

    Raises:
        ImportError: without tblite or ase.
    """
    from ase.optimize import BFGS

    require_tblite("relaxed")
    atoms = MOLECULES[settings.molecule]()
    atoms.calc = _calculator(settings.method)
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=1000)
    atoms.positions -= atoms.get_center_of_mass()
    return atoms


def generate_molecule(settings: MoleculeSettings,
                      progress: TextIO | None = None) -> list[Structure]:
    """Frames of Langevin dynamics of one molecule under tblite (see :class:`MoleculeSettings`).

    Each of ``settings.chains`` chains starts from the relaxed geometry with its own child seed
    of ``settings.seed`` (so a chain's frames do not depend on ``n``) and a fresh calculator
    (tblite reuses the last wavefunction as its next guess: a fresh one per chain keeps the
    chains independent of each other's history). Frames come chain after chain.

    Args:
        settings: the molecule and the sampling.
        progress: a stream for one progress line per tenth of the frames (None: silent).

    Returns:
        ``settings.n`` structures in eV and eV/Å.

    Raises:
        ValueError: for bad settings.
        ImportError: without tblite or ase.
    """
    settings.check()
    start = relaxed(settings)
    sizes = [settings.n // settings.chains + (c < settings.n % settings.chains)
             for c in range(settings.chains)]
    children = np.random.SeedSequence(settings.seed).spawn(settings.chains)
    langevin = LangevinSettings(settings.temperature_K, settings.timestep_fs,
                                settings.friction_per_fs, settings.equilibration_steps,
                                settings.stride)
    report = _reporter(settings, progress)
    frames: list[Structure] = []
    for child, size in zip(children, sizes):
        atoms = start.copy()
        atoms.calc = _calculator(settings.method)
        done = len(frames)
        frames += langevin_frames(atoms, size, np.random.default_rng(child), langevin,
                                  on_frame=lambda k, done=done: report(done + k))
    return frames


def _reporter(settings: MoleculeSettings, stream: TextIO | None) -> Callable[[int], None]:
    """A callback printing ``ethanol: 160/1600 frames, 12 s`` at every tenth of the frames."""
    begin, step = time.perf_counter(), max(1, settings.n // 10)

    def report(k: int) -> None:
        if stream is not None and (k % step == 0 or k == settings.n):
            stream.write(f"{settings.molecule}: {k}/{settings.n} frames, "
                         f"{time.perf_counter() - begin:.0f} s\n")
            stream.flush()

    return report


def write_rmd17(path: str | Path, structures: Sequence[Structure]) -> None:
    """Write frames of one molecule as an rMD17 ``.npz`` (kcal/mol, Å), atomically.

    Args:
        path: the file to write (its folder must exist).
        structures: frames with the same atoms, energies (eV) and forces (eV/Å).

    Raises:
        ValueError: for no frames, different atoms, or missing labels.
    """
    from ase import units

    if not structures:
        raise ValueError(f"{path}: no frames to write")
    first = structures[0].numbers
    if any(not np.array_equal(s.numbers, first) for s in structures):
        raise ValueError(f"{path}: an rMD17 file holds one molecule; the frames differ in atoms")
    if any(s.energy is None or s.forces is None for s in structures):
        raise ValueError(f"{path}: every frame needs an energy and forces")
    kcal_mol = units.kcal / units.mol  # eV per kcal/mol
    arrays = {"nuclear_charges": first,
              "coords": np.stack([s.positions for s in structures]),
              "energies": np.array([s.energy for s in structures]) / kcal_mol,
              "forces": np.stack([s.forces for s in structures]) / kcal_mol}
    with atomic_open(path) as f:
        np.savez(f, **arrays)


def molecule_dataset(settings: MoleculeSettings, cache: str | Path | None = None,
                     progress: TextIO | None = sys.stderr) -> Path:
    """The rMD17 file of ``settings``: made on first use in the cache, reused afterwards.

    Args:
        settings: the molecule and the sampling.
        cache: the folder (default :func:`data_cache_dir`; created when missing).
        progress: where generation reports progress (None: silent).

    Returns:
        The path of the ``.npz`` (read it with :func:`~fusiondsl.models.readers.read_rmd17`).
    """
    settings.check()
    folder = Path(cache) if cache is not None else data_cache_dir()
    path = folder / settings.file_name()
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # tblite shares torch's OpenMP runtime, which read OMP_NUM_THREADS when torch loaded:
        # one thread while generating keeps tblite's sums in one order (bit-identical files)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            frames = generate_molecule(settings, progress)
        finally:
            torch.set_num_threads(threads)
        write_rmd17(path, frames)
    return path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fusiondsl.models.molecules",
                                description="GFN2-xTB molecular dynamics data in rMD17 format.")
    commands = p.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="make (or find) the data sets in the cache")
    gen.add_argument("molecules", nargs="+", help=f"any of {', '.join(MOLECULES)}")
    gen.add_argument("--n", type=int, default=1600, help="frames per molecule (1600)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (0)")
    gen.add_argument("--temperature", type=float, default=500.0, help="in K (500)")
    gen.add_argument("--chains", type=int, default=4, help="independent chains (4)")
    gen.add_argument("--stride", type=int, default=10, help="steps between frames (10)")
    gen.add_argument("--cache", help="folder of the files (default: the fusiondsl cache)")
    gen.add_argument("--out", help="also copy the file here (one molecule only)")
    commands.add_parser("list", help="the molecules and their starting formulas")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``generate MOLECULE… [--n N --seed S]`` prints each file's path."""
    import shutil

    args = _parser().parse_args(argv)
    if args.command == "list":
        for name, build in MOLECULES.items():
            print(f"{name:<14} {build().get_chemical_formula()}")
        return 0
    try:
        if args.out and len(args.molecules) != 1:
            raise ValueError("--out takes one molecule")
        for name in args.molecules:
            settings = MoleculeSettings(name, args.n, args.seed, args.temperature,
                                        chains=args.chains, stride=args.stride)
            path = molecule_dataset(settings, args.cache)
            if args.out:
                shutil.copyfile(path, args.out)
            print(path)
    except (ValueError, ImportError, OSError) as exc:
        print(f"python -m fusiondsl.models.molecules: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

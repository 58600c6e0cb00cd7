"""Structures and the ``.npz`` files they come in: our own and rMD17's (ase databases: asedb).

A :class:`Structure` is one configuration without a periodic cell. Energies are total energies
in eV and forces are in eV/Å, whatever unit the file used; readers convert on the way in.

Two ``.npz`` layouts share rMD17's key names (``nuclear_charges``, ``coords``, ``energies``,
``forces``), so a file of one molecule written by :func:`save_npz` reads like an rMD17 file:

- *fixed* (every structure has the same atoms, as in rMD17): ``nuclear_charges`` ``[n]``,
  ``coords`` ``[M, n, 3]``, ``energies`` ``[M]``, ``forces`` ``[M, n, 3]``;
- *ragged* (molecules of different sizes): ``nuclear_charges`` ``[N]`` and ``coords``
  ``[N, 3]`` concatenated over structures, ``n_atoms`` ``[M]``, ``energies`` ``[M]``,
  ``forces`` ``[N, 3]``.

:func:`save_npz` always adds an ``energy_unit`` key (``"eV"``); real rMD17 files have none and
are in kcal/mol, which is what :func:`read_rmd17` assumes when the key is absent.

>>> import numpy as np
>>> s = Structure(np.array([1, 8, 1]), np.zeros((3, 3)), energy=-1.5, forces=None)
>>> s.numbers.dtype, s.positions.shape, s.energy
(dtype('int64'), (3, 3), -1.5)
"""

from __future__ import annotations

import itertools
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusiondsl.core.fileio import atomic_open

RMD17_KEYS = ("nuclear_charges", "coords", "energies", "forces")
ENERGY_UNITS = ("eV", "meV", "kcal/mol", "kJ/mol", "Hartree")
UNIT_ALIASES = {"Ha": "Hartree", "hartree": "Hartree", "kcal mol-1": "kcal/mol"}
PathLike = str | os.PathLike


@dataclass(frozen=True, eq=False)
class Structure:
    """One configuration of atoms without a periodic cell (a molecule or a cluster).

    The constructor converts its arguments (``numbers`` to int64, the rest to float64) and
    checks their shapes. Equality is identity (``eq=False``): arrays have no single truth
    value, and identity keeps structures usable as dictionary keys.

    Attributes:
        numbers: ``[n]`` int64 atomic numbers.
        positions: ``[n, 3]`` float64 Cartesian positions in Å.
        energy: the total energy in eV, or None when unknown.
        forces: ``[n, 3]`` float64 forces in eV/Å, or None when unknown.
    """

    numbers: np.ndarray
    positions: np.ndarray
    energy: float | None
    forces: np.ndarray | None

    def __post_init__(self) -> None:
        numbers = np.asarray(self.numbers, dtype=np.int64)
        positions = np.asarray(self.positions, dtype=np.float64)
        n = numbers.shape[0] if numbers.ndim == 1 else -1
        if n < 0 or positions.shape != (n, 3):
            raise ValueError(f"Structure: numbers {numbers.shape} and positions "
                             f"{positions.shape} do not have the shapes [n] and [n, 3]")
        if n and numbers.min() < 1:
            raise ValueError(f"Structure: atomic numbers must be positive, got {numbers.min()}")
        object.__setattr__(self, "numbers", numbers)
        object.__setattr__(self, "positions", positions)
        if self.energy is not None:
            object.__setattr__(self, "energy", float(self.energy))
        if self.forces is not None:
            forces = np.asarray(self.forces, dtype=np.float64)
            if forces.shape != (n, 3):
                raise ValueError(f"Structure: forces have shape {forces.shape}, expected {(n, 3)}")
            object.__setattr__(self, "forces", forces)


def require_ase(what: str) -> None:
    """Raise a clear ImportError when ase (the ``models`` extra) is missing.

    Args:
        what: the feature that needs ase, for the message.

    Raises:
        ImportError: when ase cannot be imported.
    """
    try:
        import ase  # noqa: F401
    except ImportError:
        raise ImportError(f"{what} needs ase: pip install 'fusiondsl[models]'") from None


def energy_factor(unit: str) -> float:
    """The factor that converts energies (and forces per Å) in ``unit`` to eV.

    Args:
        unit: one of :data:`ENERGY_UNITS` (or an alias in :data:`UNIT_ALIASES`).

    Returns:
        The number of eV in one ``unit`` (1.0 for ``"eV"``).

    Raises:
        ValueError: for an unknown unit.
    """
    unit = UNIT_ALIASES.get(unit, unit)
    if unit == "eV":
        return 1.0  # our own files need no ase to read
    if unit not in ENERGY_UNITS:
        raise ValueError(f"unknown energy unit {unit!r}: use one of {', '.join(ENERGY_UNITS)}")
    require_ase(f"converting {unit} to eV")
    from ase import units

    return {"meV": 1e-3, "kcal/mol": units.kcal / units.mol, "kJ/mol": units.kJ / units.mol,
            "Hartree": units.Hartree}[unit]


def save_npz(path: PathLike, structures: Sequence[Structure]) -> None:
    """Write structures to one ``.npz`` in eV, atomically (a temporary file, then a rename).

    Structures that all have the same atomic numbers get rMD17's fixed layout, others the
    ragged layout (see the module docstring). ``energies``/``forces`` are written when every
    structure has them and left out when none has.

    Args:
        path: the file to write; it is written under exactly this name.
        structures: at least one structure.

    Raises:
        FileNotFoundError: when the folder of ``path`` does not exist.
        ValueError: for no structures, or energies/forces known for some structures only.
    """
    path = Path(path)
    if not structures:
        raise ValueError(f"{path}: nothing to save (no structures)")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: the folder {path.parent} does not exist")
    labels = _labels(path, structures)
    layout = _fixed_arrays if _same_atoms(structures) else _ragged_arrays
    arrays = layout(structures, *labels)
    arrays["energy_unit"] = np.array("eV")
    with atomic_open(path) as f:
        np.savez(f, **arrays)


def load_npz(path: PathLike) -> list[Structure]:
    """Read a file written by :func:`save_npz` (either layout).

    Args:
        path: the ``.npz`` file.

    Returns:
        The structures, in the order they were saved.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for an unreadable file, a missing ``energy_unit`` key (an rMD17 file: use
            :func:`read_rmd17`), a missing key or inconsistent shapes.
    """
    arrays = _load_arrays(path)
    if "energy_unit" not in arrays:
        raise ValueError(f"{path}: no 'energy_unit' key, so not written by save_npz "
                         "(read rMD17 files with read_rmd17)")
    factor = energy_factor(_unit_of(path, arrays))
    if "n_atoms" in arrays:
        return _ragged_structures(path, arrays, factor)
    return _fixed_structures(path, arrays, factor, required=("nuclear_charges", "coords"))


def read_rmd17(path: PathLike, energy_unit: str | None = None) -> list[Structure]:
    """Read an rMD17 ``.npz`` (one molecule, many conformations) and convert to eV.

    Uses ``nuclear_charges`` ``[n]``, ``coords`` ``[M, n, 3]`` (Å), ``energies`` ``[M]`` and
    ``forces`` ``[M, n, 3]``; ``old_indices``, ``old_energies`` and ``old_forces`` are ignored.

    Args:
        path: the ``.npz`` file.
        energy_unit: the unit of ``energies`` (forces are in that unit per Å). None means the
            file's ``energy_unit`` key when it has one (files from :func:`save_npz`), else
            kcal/mol as in the published rMD17 files.

    Returns:
        One structure per conformation, energies in eV and forces in eV/Å.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: for an unreadable file, a missing key, inconsistent shapes, or an
            ``energy_unit`` that contradicts the file's own.
    """
    arrays = _load_arrays(path)
    unit = _unit_of(path, arrays) if "energy_unit" in arrays else None
    if energy_unit is not None and unit is not None and energy_unit != unit:
        raise ValueError(f"{path}: the file says its energies are in {unit}, "
                         f"not {energy_unit}")
    factor = energy_factor(energy_unit or unit or "kcal/mol")
    return _fixed_structures(path, arrays, factor, required=RMD17_KEYS)


def _same_atoms(structures: Sequence[Structure]) -> bool:
    """Whether every structure has the same atomic numbers in the same order."""
    first = structures[0].numbers
    return all(np.array_equal(s.numbers, first) for s in structures)


def _labels(path: PathLike, structures: Sequence[Structure]) -> tuple[bool, bool]:
    """Whether to write energies and forces: all or nothing, never some."""
    has_e = [s.energy is not None for s in structures]
    has_f = [s.forces is not None for s in structures]
    for name, has in (("energies", has_e), ("forces", has_f)):
        if any(has) and not all(has):
            raise ValueError(f"{path}: {name} are known for {sum(has)} of {len(has)} "
                             "structures; save all or none")
    return all(has_e), all(has_f)


def _fixed_arrays(structures: Sequence[Structure], with_e: bool,
                  with_f: bool) -> dict[str, np.ndarray]:
    """rMD17's layout: one set of nuclear charges, coordinates stacked per structure."""
    arrays = {"nuclear_charges": structures[0].numbers,
              "coords": np.stack([s.positions for s in structures])}
    if with_e:
        arrays["energies"] = np.array([s.energy for s in structures], dtype=np.float64)
    if with_f:
        arrays["forces"] = np.stack([s.forces for s in structures])
    return arrays


def _ragged_arrays(structures: Sequence[Structure], with_e: bool,
                   with_f: bool) -> dict[str, np.ndarray]:
    """The ragged layout: atoms concatenated over structures, with ``n_atoms`` per structure."""
    arrays = {"nuclear_charges": np.concatenate([s.numbers for s in structures]),
              "coords": np.concatenate([s.positions for s in structures]).reshape(-1, 3),
              "n_atoms": np.array([len(s.numbers) for s in structures], dtype=np.int64)}
    if with_e:
        arrays["energies"] = np.array([s.energy for s in structures], dtype=np.float64)
    if with_f:
        arrays["forces"] = np.concatenate([s.forces for s in structures]).reshape(-1, 3)
    return arrays


def _load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, with one-line errors naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, Mapping):  # a .npy file gives one array
            raise ValueError("one array (.npy), not an archive")
        with npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path}: not a readable .npz file ({first_line(exc)})") from None


def _unit_of(path: PathLike, arrays: Mapping[str, np.ndarray]) -> str:
    """The ``energy_unit`` stored in a file, checked."""
    unit = arrays["energy_unit"]
    if unit.shape != () or unit.dtype.kind != "U" or str(unit) not in ENERGY_UNITS:
        raise ValueError(f"{path}: energy_unit {unit!r} is not one of {', '.join(ENERGY_UNITS)}")
    return str(unit)


def _require(path: PathLike, arrays: Mapping[str, np.ndarray], keys: Sequence[str]) -> None:
    """A one-line error for missing keys (numpy's own is a KeyError traceback)."""
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(map(repr, missing))} "
                         f"(has: {', '.join(sorted(arrays)) or 'nothing'})")


def _check_shape(path: PathLike, name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    """A one-line error when ``array`` does not have ``shape``."""
    if array.shape != shape:
        raise ValueError(f"{path}: {name!r} has shape {list(array.shape)}, "
                         f"expected {list(shape)}")


def _fixed_structures(path: PathLike, arrays: Mapping[str, np.ndarray], factor: float,
                      required: Sequence[str]) -> list[Structure]:
    """Structures from the fixed (rMD17) layout."""
    _require(path, arrays, required)
    z, coords = arrays["nuclear_charges"], arrays["coords"]
    if z.ndim != 1:
        raise ValueError(f"{path}: 'nuclear_charges' has shape {list(z.shape)}, expected [n]")
    m = coords.shape[0] if coords.ndim == 3 else 0
    _check_shape(path, "coords", coords, (m, len(z), 3))
    energies, forces = arrays.get("energies"), arrays.get("forces")
    if energies is not None:
        _check_shape(path, "energies", energies, (m,))
        energies = energies.astype(np.float64) * factor
    if forces is not None:
        _check_shape(path, "forces", forces, (m, len(z), 3))
        forces = forces.astype(np.float64) * factor
    return [Structure(z, coords[k], None if energies is None else energies[k],
                      None if forces is None else forces[k]) for k in range(m)]


def _ragged_structures(path: PathLike, arrays: Mapping[str, np.ndarray],
                       factor: float) -> list[Structure]:
    """Structures from the ragged layout (``n_atoms`` per structure)."""
    _require(path, arrays, ("nuclear_charges", "coords"))
    counts = arrays["n_atoms"]
    if counts.ndim != 1 or (counts < 0).any():
        raise ValueError(f"{path}: 'n_atoms' must be a list of atom counts")
    total, m = int(counts.sum()), len(counts)
    _check_shape(path, "nuclear_charges", arrays["nuclear_charges"], (total,))
    _check_shape(path, "coords", arrays["coords"], (total, 3))
    energies, forces = arrays.get("energies"), arrays.get("forces")
    if energies is not None:
        _check_shape(path, "energies", energies, (m,))
        energies = energies.astype(np.float64) * factor
    if forces is not None:
        _check_shape(path, "forces", forces, (total, 3))
        forces = forces.astype(np.float64) * factor
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [Structure(arrays["nuclear_charges"][a:b], arrays["coords"][a:b],
                      None if energies is None else energies[k],
                      None if forces is None else forces[a:b])
            for k, (a, b) in enumerate(itertools.pairwise(bounds))]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, so our own messages stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


"""ase databases (QM9 as schnetpack's ``qm9.db``, and others) as structures in eV and Å."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusiondsl.models.readers import (
    ENERGY_UNITS,
    UNIT_ALIASES,
    PathLike,
    Structure,
    energy_factor,
    first_line,
    require_ase,
)


def read_ase_db(path: PathLike, energy_key: str | None = "energy", forces: bool = True, *,
                energy_unit: str | None = None, limit: int | None = None) -> list[Structure]:
    """Read the structures of an ase database (e.g. QM9 as schnetpack's ``qm9.db``).

    The energy of a row is ``energy_key`` looked up in the calculator results, then in the
    row's key-value pairs, then in its ``data`` (where schnetpack keeps ``energy_U0`` etc. as
    one-element arrays). Forces come from the calculator results or ``data["forces"]``.

    Args:
        path: an existing ase database (``.db`` SQLite or ``.json``).
        energy_key: the property holding the total energy; None reads no energies.
        forces: read forces (QM9 has none: pass False).
        energy_unit: the unit of the stored energies and forces (one of :data:`ENERGY_UNITS`,
            or ``"Ha"``). None means the unit schnetpack 2 records in the database's
            metadata (``_property_unit_dict``) when there is one, else eV (as in schnetpack
            0.x's ``qm9.db``).
        limit: read at most this many rows (in id order); None reads all.

    Returns:
        One structure per row, energies in eV and forces in eV/Å.

    Raises:
        FileNotFoundError: when the file does not exist (ase would create an empty one).
        ValueError: when the file is not a database, its positions are not in Å, its unit
            contradicts ``energy_unit``, or a row lacks the energy or forces.
    """
    require_ase("read_ase_db")
    import ase.db

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ase database")
    try:
        with ase.db.connect(path) as db:
            rows = list(db.select(limit=limit))
            metadata = db.metadata
    except Exception as exc:  # ase raises many types (sqlite3, json, its own) for bad files
        raise ValueError(f"{path}: not a readable ase database ({first_line(exc)})") from None
    factor = energy_factor(_db_unit(path, metadata, energy_key, energy_unit))
    return [_row_structure(path, row, energy_key, forces, factor) for row in rows]


def _db_unit(path: PathLike, metadata: Mapping[str, Any], energy_key: str | None,
             energy_unit: str | None) -> str:
    """The energy unit of a database: the argument, else schnetpack's metadata, else eV."""
    distance = metadata.get("_distance_unit", "Ang")
    if distance not in ("Ang", "Angstrom", "Å"):
        raise ValueError(f"{path}: positions are in {distance}; only Å is supported")
    stored = metadata.get("_property_unit_dict", {}).get(energy_key) if energy_key else None
    stored, given = UNIT_ALIASES.get(stored, stored), UNIT_ALIASES.get(energy_unit, energy_unit)
    if stored is not None and stored not in ENERGY_UNITS:
        raise ValueError(f"{path}: {energy_key!r} is in {stored}, not an energy unit "
                         f"({', '.join(ENERGY_UNITS)})")
    if given is not None and stored is not None and given != stored:
        raise ValueError(f"{path}: the database says {energy_key!r} is in {stored}, "
                         f"not {energy_unit}")
    return given or stored or "eV"


def _row_structure(path: PathLike, row: Any, energy_key: str | None, forces: bool,
                   factor: float) -> Structure:
    """One ase database row as a structure (see :func:`read_ase_db`)."""
    energy = None
    if energy_key is not None:
        value = _row_property(row, energy_key)
        if value is None:
            have = sorted(set(row.key_value_pairs) | set(row.data) | _calc_keys(row))
            raise ValueError(f"{path}: row {row.id} has no {energy_key!r} "
                             f"(it has: {', '.join(have) or 'nothing'})")
        value = np.asarray(value, dtype=np.float64)
        if value.size != 1:
            raise ValueError(f"{path}: row {row.id}: {energy_key!r} has shape {value.shape}, "
                             "not one number")
        energy = float(value.reshape(())) * factor
    f = None
    if forces:
        f = row.get("forces")
        f = row.data.get("forces") if f is None else f
        if f is None:
            raise ValueError(f"{path}: row {row.id} has no forces (pass forces=False)")
        f = np.asarray(f, dtype=np.float64) * factor
        if f.shape != (row.natoms, 3):
            raise ValueError(f"{path}: row {row.id}: forces have shape {f.shape}, "
                             f"expected {(row.natoms, 3)}")
    return Structure(row.numbers, row.positions, energy, f)


def _row_property(row: Any, key: str) -> Any:
    """``key`` of a row: calculator results, then key-value pairs, then data; None if absent."""
    from ase.calculators.calculator import all_properties

    if key in all_properties and row.get(key) is not None:
        return row.get(key)
    if key in row.key_value_pairs:
        return row.key_value_pairs[key]
    return row.data.get(key)


def _calc_keys(row: Any) -> set[str]:
    """The calculator results a row holds (for error messages)."""
    from ase.calculators.calculator import all_properties

    return {key for key in all_properties if row.get(key) is not None}

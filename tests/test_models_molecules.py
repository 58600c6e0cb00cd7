"""GFN2-xTB molecular data (fusiondsl.models.molecules): rMD17 format, units, determinism."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fusiondsl.models import molecules
from fusiondsl.models.molecules import MoleculeSettings, molecule_dataset, require_tblite
from fusiondsl.models.readers import read_rmd17

TINY = {"n": 4, "chains": 2, "equilibration_steps": 3, "stride": 2}


def _tblite():
    pytest.importorskip("ase")
    pytest.importorskip("tblite.ase")


def test_a_tiny_run_is_bit_identical_per_seed_and_differs_across_seeds(tmp_path):
    _tblite()
    a = molecule_dataset(MoleculeSettings("ethanol", seed=1, **TINY), tmp_path / "a", None)
    b = molecule_dataset(MoleculeSettings("ethanol", seed=1, **TINY), tmp_path / "b", None)
    c = molecule_dataset(MoleculeSettings("ethanol", seed=2, **TINY), tmp_path / "c", None)
    with np.load(a) as x, np.load(b) as y, np.load(c) as z:
        assert sorted(x.files) == ["coords", "energies", "forces", "nuclear_charges"]
        for key in x.files:
            assert np.array_equal(x[key], y[key]), key
        assert not np.array_equal(x["coords"], z["coords"])
    assert a.name == b.name != c.name


def test_the_file_is_rmd17_kcal_per_mol_and_matches_tblite(tmp_path):
    _tblite()
    from ase import Atoms, units
    from tblite.ase import TBLite

    path = molecule_dataset(MoleculeSettings("malonaldehyde", **TINY), tmp_path, None)
    raw = np.load(path)
    structures = read_rmd17(path)  # kcal/mol by default, like the published files
    assert len(structures) == 4 and raw["coords"].shape == (4, 9, 3)
    assert list(structures[0].numbers) == list(raw["nuclear_charges"])
    atoms = Atoms(numbers=raw["nuclear_charges"], positions=raw["coords"][3])
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    kcal_mol = units.kcal / units.mol
    assert raw["energies"][3] * kcal_mol == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    # the dynamics' calculator starts each SCF from the last wavefunction, a fresh one from
    # scratch: both converge to within tblite's default accuracy (seen: 4e-4 eV/Å)
    np.testing.assert_allclose(structures[3].forces, atoms.get_forces(), atol=2e-3)
    assert structures[3].energy == pytest.approx(raw["energies"][3] * kcal_mol, rel=1e-12)


def test_the_cache_is_reused_not_regenerated(tmp_path, monkeypatch):
    _tblite()
    settings = MoleculeSettings("ethanol", **{**TINY, "n": 2})
    first = molecule_dataset(settings, tmp_path, None)

    def fail(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(molecules, "generate_molecule", fail)
    assert molecule_dataset(settings, tmp_path, None) == first
    monkeypatch.setenv("FUSIONDSL_CACHE_DIR", str(tmp_path / "root"))
    assert molecules.data_cache_dir() == tmp_path / "root" / "molecules"


def test_command_line_generates_and_reports_errors(tmp_path, capsys):
    _tblite()
    out = tmp_path / "uracil.npz"
    assert molecules.main(["generate", "uracil", "--n", "2", "--chains", "1", "--stride", "1",
                           "--cache", str(tmp_path), "--out", str(out)]) == 0
    assert read_rmd17(out)[0].numbers.tolist().count(7) == 2  # uracil has two N
    assert molecules.main(["generate", "water", "--cache", str(tmp_path)]) == 2
    assert "unknown molecule 'water'" in capsys.readouterr().err
    assert molecules.main(["list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed[listed.index("malonaldehyde") + 1] == "C3H4O2"
    assert listed[listed.index("uracil") + 1] == "C4H4N2O2"


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(ValueError, match="need n >= 1"):
        MoleculeSettings("ethanol", n=0).check()
    with pytest.raises(ValueError, match="must be positive"):
        MoleculeSettings("ethanol", n=1, temperature_K=-1).check()


def test_missing_tblite_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tblite.ase", None)
    with pytest.raises(ImportError, match=r"fusiondsl\[molecules\]"):
        require_tblite("molecule_dataset")

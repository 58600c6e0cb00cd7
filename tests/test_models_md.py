"""Molecular dynamics with a potential (fusiondsl.models.md): the ase calculator and NVE runs."""

from __future__ import annotations

import numpy as np
import pytest
from test_models_train import CUTOFF, PairMorse, synthetic_structures, teacher

from fusiondsl.models.data import collate, save_npz
from fusiondsl.models.experiment import save_checkpoint
from fusiondsl.models.md import _report, main, run_md, structure_to_atoms
from fusiondsl.models.train import energy_and_forces

pytest.importorskip("ase")


@pytest.fixture(scope="module")
def start():
    return synthetic_structures(2, seed=3)


def test_calculator_matches_the_model(start):
    from fusiondsl.models.md import FusionCalculator

    model = teacher()
    atoms = structure_to_atoms(start[0])
    atoms.calc = FusionCalculator(model, cutoff=CUTOFF)
    energy, forces = energy_and_forces(model, collate(start[:1], CUTOFF), create_graph=False)
    assert atoms.get_potential_energy() == pytest.approx(float(energy[0]), abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), forces.numpy(), atol=1e-12)
    assert atoms.get_forces().dtype == np.float64
    atoms.positions[0, 0] += 0.05  # a changed structure is recomputed
    assert atoms.get_potential_energy() != pytest.approx(float(energy[0]), abs=1e-9)
    assert isinstance(atoms.calc, FusionCalculator)
    assert FusionCalculator.__module__ == "fusiondsl.models.md"


def test_calculator_in_float32_returns_float64_arrays(start):
    from fusiondsl.models.md import FusionCalculator

    model = teacher().float()
    atoms = structure_to_atoms(start[0])
    atoms.calc = FusionCalculator(model, cutoff=CUTOFF)
    reference = start[0].forces
    assert atoms.get_forces().dtype == np.float64
    np.testing.assert_allclose(atoms.get_forces(), reference, atol=1e-4)


def test_calculator_rejects_periodic_cells(start):
    from fusiondsl.models.md import FusionCalculator

    atoms = structure_to_atoms(start[0])
    atoms.set_cell(np.eye(3) * 10.0)
    atoms.pbc = True
    atoms.calc = FusionCalculator(teacher(), cutoff=CUTOFF)
    with pytest.raises(ValueError, match="non-periodic"):
        atoms.get_potential_energy()


def test_nve_run_of_a_smooth_potential_conserves_energy(start):
    atoms = structure_to_atoms(start[0])
    before = atoms.positions.copy()
    report = run_md(teacher(), atoms, cutoff=CUTOFF, steps=200, timestep_fs=0.5,
                    temperature_K=300.0, seed=0)
    assert np.array_equal(atoms.positions, before)  # the caller's atoms are untouched
    assert report.steps == 200 and report.n_atoms == 8 and report.finite
    assert len(report.total_energies) == len(report.times_ps) == 201
    assert report.duration_ps == pytest.approx(0.1)
    assert report.max_deviation_per_atom < 1e-5  # eV/atom; measured ~7e-7
    assert abs(report.drift_per_atom) < 1e-5
    assert 100.0 < report.mean_temperature_K < 600.0
    coarse = run_md(teacher(), atoms, cutoff=CUTOFF, steps=20, timestep_fs=5.0, seed=0)
    assert coarse.max_deviation > report.max_deviation  # a coarser step conserves worse


def test_nve_run_is_deterministic_for_a_seed(start):
    atoms = structure_to_atoms(start[1])
    runs = [run_md(teacher(), atoms, cutoff=CUTOFF, steps=15, seed=s) for s in (4, 4, 5)]
    assert runs[0].total_energies == runs[1].total_energies
    assert runs[0].temperatures_K == runs[1].temperatures_K
    assert runs[0].temperatures_K != runs[2].temperatures_K


def test_report_arithmetic():
    energies = [-8.0 + 0.016 * k for k in range(11)]  # linear: +2 meV/atom per step for 8 atoms
    energies[5] += 0.4  # one outlier sets the maximum deviation
    report = _report(8, 10, 1.0, energies, [300.0] * 5 + [310.0] * 6)
    assert report.duration_ps == pytest.approx(0.01)
    assert report.max_deviation == pytest.approx(0.4 + 0.08)
    assert report.max_deviation_per_atom == pytest.approx(0.06)
    # the outlier sits at the centre of the time series, so the least-squares slope is exact
    assert report.drift_per_atom_per_ps == pytest.approx(0.002 / 0.001)
    assert report.drift_per_atom == pytest.approx(0.02)
    assert report.mean_temperature_K == pytest.approx(305.4545454545)
    assert set(report.summary()) >= {"drift_per_atom", "max_deviation", "mean_temperature_K"}
    assert "total_energies" not in report.summary()
    assert not _report(8, 1, 1.0, [0.0, float("nan")], [1.0, 1.0]).finite


def test_run_md_rejects_bad_arguments(start):
    with pytest.raises(ValueError, match="steps"):
        run_md(teacher(), structure_to_atoms(start[0]), cutoff=CUTOFF, steps=0)


def test_md_command_line(tmp_path, start, monkeypatch, capsys):
    from fusiondsl.models import zoo

    monkeypatch.setitem(zoo.MODELS, "pair", PairMorse)
    save_checkpoint(tmp_path / "pair.pt", teacher(), name="pair",
                    hyper={"depth": 0.4, "alpha": 1.3, "r0": 2.6}, cutoff=CUTOFF)
    save_npz(tmp_path / "d.npz", start)
    base = ["--model", str(tmp_path / "pair.pt"), "--data", str(tmp_path / "d.npz")]
    assert main([*base, "--index", "1", "--steps", "12", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    direct = run_md(teacher(), structure_to_atoms(start[1]), cutoff=CUTOFF, steps=12, seed=2)
    assert f"{'max_deviation':<24} {direct.max_deviation:.6g}" in out
    assert main([*base, "--index", "5"]) == 2
    err = capsys.readouterr().err
    assert "out of range for 2 structures" in err and len(err.strip().splitlines()) == 1
    assert main(["--model", str(tmp_path / "none.pt")]) == 2

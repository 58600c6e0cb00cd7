"""Data for the issue-8 models: the EMT generator, batching, splits and the file readers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ase")

from fusiondsl.models.data import (
    Batch,
    Structure,
    batches,
    collate,
    generate_emt,
    load_npz,
    main,
    radius_graph,
    read_ase_db,
    read_rmd17,
    save_npz,
    split,
)

KCAL_MOL_IN_EV = 0.0433641
SMALL = {"chains": 2, "equilibration_steps": 30, "stride": 5}  # quick but still MD


@pytest.fixture(scope="module")
def emt() -> list[Structure]:
    return generate_emt(12, seed=3, **SMALL)


def random_structures(rng: np.random.Generator, sizes: list[int], labels: bool = True,
                      spread: float = 2.0) -> list[Structure]:
    return [Structure(rng.integers(1, 10, size=n), rng.normal(scale=spread, size=(n, 3)),
                      float(k) if labels else None,
                      rng.normal(size=(n, 3)) if labels else None)
            for k, n in enumerate(sizes)]


def same(a: list[Structure], b: list[Structure]) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(x.numbers, y.numbers) and np.array_equal(x.positions, y.positions)
        and x.energy == y.energy
        and (x.forces is None) == (y.forces is None)
        and (x.forces is None or np.array_equal(x.forces, y.forces))
        for x, y in zip(a, b))


def one_line_error(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# --- the generator ----------------------------------------------------------------------------


def test_generator_is_deterministic_for_a_seed(emt: list[Structure]) -> None:
    assert same(emt, generate_emt(12, seed=3, **SMALL))
    other = generate_emt(12, seed=4, **SMALL)
    assert not np.allclose(np.stack([s.positions for s in emt]),
                           np.stack([s.positions for s in other]))


def test_generator_output_is_physical_and_diverse(emt: list[Structure]) -> None:
    assert len(emt) == 12
    for s in emt:
        assert sorted(s.numbers.tolist()) == [28] * 6 + [29] * 7
        assert np.array_equal(s.numbers, emt[0].numbers)  # one atom order: rMD17 layout
        assert np.isfinite(s.energy) and np.isfinite(s.forces).all()
        assert s.forces.shape == (13, 3) and s.positions.dtype == np.float64
        dist = np.linalg.norm(s.positions[:, None] - s.positions[None], axis=-1)
        assert dist.max() < 8.0  # no atom has evaporated
        np.fill_diagonal(dist, np.inf)
        assert dist.min() > 1.8  # no atoms on top of each other
        np.testing.assert_allclose(np.abs(s.forces.sum(0)), 0, atol=1e-8)  # no net force
    energies = np.array([s.energy for s in emt])
    assert np.ptp(energies) > 0.05
    pos = np.stack([s.positions for s in emt])
    assert min(np.abs(a - b).max() for a, b in itertools.combinations(pos, 2)) > 1e-3


def test_generator_forces_are_minus_the_energy_gradient(emt: list[Structure]) -> None:
    from ase import Atoms
    from ase.calculators.emt import EMT

    s = emt[5]
    atoms = Atoms(numbers=s.numbers, positions=s.positions, calculator=EMT())
    assert atoms.get_potential_energy() == pytest.approx(s.energy, abs=1e-10)
    h = 1e-5
    for atom, axis in [(0, 0), (4, 1), (12, 2), (7, 0)]:
        energies = []
        for step in (h, -h):
            moved = s.positions.copy()
            moved[atom, axis] += step
            atoms.positions = moved
            energies.append(atoms.get_potential_energy())
        assert -(energies[0] - energies[1]) / (2 * h) == pytest.approx(
            s.forces[atom, axis], abs=1e-5)


def test_generator_chains_do_not_depend_on_n() -> None:
    four = generate_emt(4, seed=0, **SMALL)  # chains of 2 + 2
    six = generate_emt(6, seed=0, **SMALL)  # chains of 3 + 3
    assert same(four[:2], six[:2]) and same(four[2:], six[3:5])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"symbols": "H2O"}, "fcc metals"),
    ({"symbols": "Cu3Fe"}, "Fe"),
    ({"symbols": "Qq2"}, "not Qq"),
    ({"symbols": "cu7"}, "cannot read the formula"),
    ({"symbols": ""}, "empty"),
    ({"n": -1}, "n >= 0"),
    ({"stride": 0}, "stride"),
    ({"temperature_K": 0.0}, "positive"),
])
def test_generator_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_emt(**{"n": 2, **kwargs})


def test_generate_command_writes_an_npz(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "emt.npz"
    assert main(["generate", str(out), "--n", "3", "--seed", "2", "--chains", "1",
                 "--equilibration", "10", "--stride", "3", "--symbols", "Cu2Ni2"]) == 0
    assert "wrote 3 Cu2Ni2 structures" in capsys.readouterr().out
    assert same(load_npz(out), generate_emt(3, seed=2, symbols="Cu2Ni2", chains=1,
                                            equilibration_steps=10, stride=3))
    with np.load(out) as npz:
        assert str(npz["energy_unit"]) == "eV" and npz["coords"].shape == (3, 4, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["emt.npz"]  # no temporary files left


# --- batching ---------------------------------------------------------------------------------


def brute_force_edges(structures: list[Structure], cutoff: float) -> list[tuple[int, int]]:
    edges, offset = [], 0
    for s in structures:
        n = len(s.numbers)
        for i in range(n):
            for j in range(n):
                if i != j and np.linalg.norm(s.positions[j] - s.positions[i]) < cutoff:
                    edges.append((offset + i, offset + j))
        offset += n
    return sorted(edges)


def test_collate_builds_the_radius_graph() -> None:
    structures = random_structures(np.random.default_rng(0), [5, 1, 9, 3, 7])
    batch = collate(structures, cutoff=2.5)
    edges = batch.edge_index.T.tolist()
    assert [tuple(e) for e in edges] == brute_force_edges(structures, 2.5)  # also sorted
    assert 0 < len(edges) < 5 * 4 + 9 * 8 + 3 * 2 + 7 * 6  # the cutoff matters
    owner = batch.batch[batch.edge_index]
    assert torch.equal(owner[0], owner[1])  # no edge between structures
    assert not (batch.edge_index[0] == batch.edge_index[1]).any()  # no self-loops
    assert batch.batch.tolist() == [0] * 5 + [1] + [2] * 9 + [3] * 3 + [4] * 7
    assert batch.num_graphs == 5 and batch.edge_index.dtype == torch.long
    assert batch.numbers.tolist() == np.concatenate([s.numbers for s in structures]).tolist()
    assert batch.energy.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert torch.equal(batch.forces, torch.from_numpy(np.concatenate([s.forces for s in
                                                                       structures])))


def test_collate_cutoff_is_exclusive() -> None:
    pair = Structure(np.array([1, 1]), np.array([[0.0, 0, 0], [0, 0, 1.5]]), None, None)
    assert collate([pair], cutoff=1.5).edge_index.shape == (2, 0)
    assert collate([pair], cutoff=1.5000001).edge_index.tolist() == [[0, 1], [1, 0]]
    assert radius_graph(pair.positions, 1.6).tolist() == [[0, 1], [1, 0]]


def test_collate_honours_the_dtype_and_missing_labels() -> None:
    rng = np.random.default_rng(1)
    structures = random_structures(rng, [4, 6])
    b32 = collate(structures, cutoff=3.0, dtype=torch.float32)
    b64 = collate(structures, cutoff=3.0)
    assert b32.positions.dtype == b32.energy.dtype == b32.forces.dtype == torch.float32
    assert b64.positions.dtype == torch.float64 and b32.numbers.dtype == torch.long
    assert torch.equal(b32.edge_index, b64.edge_index)  # graph computed in float64
    bare = collate(random_structures(rng, [3, 2], labels=False), cutoff=3.0)
    assert bare.energy is None and bare.forces is None
    mixed = [structures[0], random_structures(rng, [2], labels=False)[0]]
    with pytest.raises(ValueError, match="energies are known for 1 of 2"):
        collate(mixed, cutoff=3.0)
    with pytest.raises(ValueError, match="cutoff"):
        collate(structures, cutoff=0.0)
    with pytest.raises(ValueError, match="no structures"):
        collate([], cutoff=1.0)


def test_batch_to_casts_only_floats() -> None:
    batch = collate(random_structures(np.random.default_rng(2), [3, 4]), cutoff=3.0)
    moved = batch.to("cpu", torch.float32)
    assert isinstance(moved, Batch) and moved.num_graphs == 2
    assert moved.positions.dtype == moved.energy.dtype == moved.forces.dtype == torch.float32
    assert moved.edge_index.dtype == moved.batch.dtype == moved.numbers.dtype == torch.long
    assert torch.equal(moved.edge_index, batch.edge_index)
    assert batch.positions.dtype == torch.float64  # the original is untouched
    assert batch.to().positions.dtype == torch.float64
    with pytest.raises(ValueError, match="floating"):
        batch.to(dtype=torch.int32)


def test_batches_cover_every_structure_once_deterministically() -> None:
    structures = random_structures(np.random.default_rng(3), [2, 3, 4] * 7)  # energy = index

    def order(**kwargs: object) -> list[list[int]]:
        return [b.energy.long().tolist() for b in batches(structures, 4, 2.0, **kwargs)]

    plain = order()
    assert plain == [list(range(k, min(k + 4, 21))) for k in range(0, 21, 4)]
    shuffled = order(shuffle=True, seed=5)
    assert sorted(itertools.chain(*shuffled)) == list(range(21)) and shuffled != plain
    assert [len(b) for b in shuffled] == [4, 4, 4, 4, 4, 1]
    assert order(shuffle=True, seed=5) == shuffled and order(shuffle=True, seed=6) != shuffled
    b32 = next(batches(structures, 4, 2.0, dtype=torch.float32))
    assert b32.positions.dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(structures, 0, 2.0))


def test_split_is_disjoint_and_deterministic() -> None:
    items = list(range(50))
    train, val, test = split(items, 30, 5, seed=1)
    assert (len(train), len(val), len(test)) == (30, 5, 15)
    assert sorted(train + val + test) == items
    assert split(items, 30, 5, seed=1) == (train, val, test)
    assert split(items, 30, 5, seed=2)[0] != train
    assert split(items, 50, 0) [2] == []
    with pytest.raises(ValueError, match="cannot take 40 \\+ 11 from 50"):
        split(items, 40, 11)


def test_structure_checks_shapes() -> None:
    with pytest.raises(ValueError, match="shapes"):
        Structure(np.array([1, 1]), np.zeros((3, 3)), None, None)
    with pytest.raises(ValueError, match="forces"):
        Structure(np.array([1, 1]), np.zeros((2, 3)), 0.0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="positive"):
        Structure(np.array([0, 1]), np.zeros((2, 3)), None, None)


# --- files ------------------------------------------------------------------------------------


def test_npz_round_trip_fixed_and_ragged(tmp_path: Path, emt: list[Structure]) -> None:
    save_npz(tmp_path / "fixed.npz", emt)
    assert same(load_npz(tmp_path / "fixed.npz"), emt)
    ragged = random_structures(np.random.default_rng(4), [3, 1, 5])
    save_npz(tmp_path / "ragged.npz", ragged)
    assert same(load_npz(tmp_path / "ragged.npz"), ragged)
    bare = random_structures(np.random.default_rng(5), [2, 4], labels=False)
    save_npz(tmp_path / "bare", bare)  # written under exactly this name
    assert same(load_npz(tmp_path / "bare"), bare)
    with pytest.raises(ValueError, match="forces are known for 1 of 2"):
        save_npz(tmp_path / "mixed.npz", [ragged[0], Structure(bare[0].numbers,
                                                                bare[0].positions, 1.0, None)])
    with pytest.raises(FileNotFoundError, match="does not exist") as exc:
        save_npz(tmp_path / "no" / "such.npz", ragged)
    one_line_error(exc, tmp_path / "no" / "such.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "fixed.npz", "ragged.npz"]


def write_rmd17(path: Path, m: int = 4, n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(6)
    arrays = {"nuclear_charges": np.array([8, 1, 1][:n]), "coords": rng.normal(size=(m, n, 3)),
              "energies": rng.normal(-47000.0, 5.0, size=m),
              "forces": rng.normal(scale=30.0, size=(m, n, 3)),
              "old_indices": np.arange(m), "old_energies": rng.normal(size=m),
              "old_forces": rng.normal(size=(m, n, 3))}
    np.savez(path, **arrays)
    return arrays


def test_read_rmd17_converts_kcal_per_mol(tmp_path: Path) -> None:
    arrays = write_rmd17(tmp_path / "rmd17_water.npz")
    structures = read_rmd17(tmp_path / "rmd17_water.npz")
    assert len(structures) == 4
    for k, s in enumerate(structures):
        assert s.numbers.tolist() == [8, 1, 1]
        np.testing.assert_array_equal(s.positions, arrays["coords"][k])
        assert s.energy == pytest.approx(arrays["energies"][k] * KCAL_MOL_IN_EV, rel=1e-6)
        np.testing.assert_allclose(s.forces, arrays["forces"][k] * KCAL_MOL_IN_EV, rtol=1e-6)
    in_ev = read_rmd17(tmp_path / "rmd17_water.npz", energy_unit="eV")
    assert in_ev[0].energy == arrays["energies"][0]
    with pytest.raises(ValueError, match="read_rmd17") as exc:
        load_npz(tmp_path / "rmd17_water.npz")
    one_line_error(exc, tmp_path / "rmd17_water.npz")


def test_read_rmd17_reads_our_files_in_ev(tmp_path: Path, emt: list[Structure]) -> None:
    save_npz(tmp_path / "emt.npz", emt)
    assert same(read_rmd17(tmp_path / "emt.npz"), emt)
    with pytest.raises(ValueError, match="in eV, not kcal/mol"):
        read_rmd17(tmp_path / "emt.npz", energy_unit="kcal/mol")


@pytest.mark.parametrize(("change", "match"), [
    (lambda a: a.pop("coords"), "missing key\\(s\\) 'coords'"),
    (lambda a: a.pop("energies"), "missing key\\(s\\) 'energies'"),
    (lambda a: a.update(coords=a["coords"][:, :2]), "'coords' has shape \\[4, 2, 3\\], "
                                                    "expected \\[4, 3, 3\\]"),
    (lambda a: a.update(energies=a["energies"][:3]), "'energies' has shape \\[3\\]"),
    (lambda a: a.update(forces=a["forces"][..., :2]), "'forces' has shape"),
    (lambda a: a.update(nuclear_charges=a["nuclear_charges"][None]), "'nuclear_charges'"),
])
def test_read_rmd17_names_the_file_and_the_problem(tmp_path: Path, change: object,
                                                   match: str) -> None:
    arrays = write_rmd17(tmp_path / "good.npz")
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match) as exc:
        read_rmd17(tmp_path / "bad.npz")
    one_line_error(exc, tmp_path / "bad.npz")


def test_unreadable_files_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as exc:
        read_rmd17(tmp_path / "nothing.npz")
    one_line_error(exc, tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not an archive\nat all\n")
    with pytest.raises(ValueError, match=r"not a readable \.npz") as exc:
        load_npz(tmp_path / "text.npz")
    one_line_error(exc, tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"not a readable \.npz") as exc:
        read_rmd17(tmp_path / "single.npy")
    one_line_error(exc, tmp_path / "single.npy")
    np.savez(tmp_path / "unit.npz", nuclear_charges=np.array([1]), coords=np.zeros((1, 1, 3)),
             energy_unit=np.array("furlongs"))
    with pytest.raises(ValueError, match="energy_unit") as exc:
        load_npz(tmp_path / "unit.npz")
    one_line_error(exc, tmp_path / "unit.npz")


def write_db(path: Path) -> list:
    """Three rows the ways QM9 databases store properties, as ase and schnetpack do."""
    import ase.db
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(7)
    molecules = [Atoms("CH4", positions=rng.normal(size=(5, 3))),
                 Atoms("H2O", positions=rng.normal(size=(3, 3))),
                 Atoms("NH3", positions=rng.normal(size=(4, 3)))]
    with ase.db.connect(path) as db:
        for k, atoms in enumerate(molecules):
            forces = rng.normal(size=(len(atoms), 3))
            atoms.calc = SinglePointCalculator(atoms, energy=-10.0 * (k + 1), forces=forces)
            db.write(atoms, energy_U0=-100.0 - k,  # a key-value pair
                     data={"energy_U": np.array([-200.0 - k]), "gap": np.array([0.1, 0.2])})
    return molecules


def test_read_ase_db_finds_properties_in_all_three_places(tmp_path: Path) -> None:
    molecules = write_db(tmp_path / "qm9.db")
    calc = read_ase_db(tmp_path / "qm9.db")
    assert [s.energy for s in calc] == [-10.0, -20.0, -30.0]
    for s, atoms in zip(calc, molecules):
        assert s.numbers.tolist() == atoms.numbers.tolist()
        np.testing.assert_allclose(s.positions, atoms.positions)
        np.testing.assert_allclose(s.forces, atoms.get_forces())
    kvp = read_ase_db(tmp_path / "qm9.db", energy_key="energy_U0", forces=False)
    assert [s.energy for s in kvp] == [-100.0, -101.0, -102.0] and kvp[0].forces is None
    data = read_ase_db(tmp_path / "qm9.db", "energy_U", forces=False, energy_unit="kcal/mol",
                       limit=2)
    assert [s.energy for s in data] == pytest.approx([-200.0 * KCAL_MOL_IN_EV,
                                                      -201.0 * KCAL_MOL_IN_EV], rel=1e-6)
    assert read_ase_db(tmp_path / "qm9.db", None, forces=False)[1].energy is None


def test_read_ase_db_takes_the_unit_from_schnetpack_metadata(tmp_path: Path) -> None:
    import ase.db
    from ase import units

    write_db(tmp_path / "qm9.db")
    with ase.db.connect(tmp_path / "qm9.db") as db:
        db.metadata = {"_distance_unit": "Ang", "_property_unit_dict": {"energy_U0": "Ha"}}
    hartree = read_ase_db(tmp_path / "qm9.db", "energy_U0", forces=False)
    assert [s.energy for s in hartree] == pytest.approx(
        [-100.0 * units.Hartree, -101.0 * units.Hartree, -102.0 * units.Hartree])
    assert read_ase_db(tmp_path / "qm9.db", "energy_U0", False, energy_unit="Hartree")[0].energy \
        == hartree[0].energy
    assert read_ase_db(tmp_path / "qm9.db")[0].energy == -10.0  # no unit recorded: eV
    with pytest.raises(ValueError, match="says 'energy_U0' is in Hartree, not eV") as exc:
        read_ase_db(tmp_path / "qm9.db", "energy_U0", forces=False, energy_unit="eV")
    one_line_error(exc, tmp_path / "qm9.db")
    with ase.db.connect(tmp_path / "qm9.db") as db:
        db.metadata = {"_distance_unit": "Bohr"}
    with pytest.raises(ValueError, match="positions are in Bohr"):
        read_ase_db(tmp_path / "qm9.db", "energy_U0", forces=False)


def test_read_ase_db_errors(tmp_path: Path) -> None:
    import ase.db
    from ase import Atoms

    write_db(tmp_path / "qm9.db")
    with pytest.raises(ValueError, match=r"row 1 has no 'energy_U1'.*energy_U0") as exc:
        read_ase_db(tmp_path / "qm9.db", "energy_U1")
    one_line_error(exc, tmp_path / "qm9.db")
    with pytest.raises(ValueError, match="'gap' has shape \\(2,\\)"):
        read_ase_db(tmp_path / "qm9.db", "gap")
    with ase.db.connect(tmp_path / "plain.db") as db:
        db.write(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), energy_U0=-1.0)
    with pytest.raises(ValueError, match="no forces \\(pass forces=False\\)"):
        read_ase_db(tmp_path / "plain.db", "energy_U0")
    with pytest.raises(FileNotFoundError) as exc:
        read_ase_db(tmp_path / "missing.db")
    one_line_error(exc, tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()  # ase.db.connect would have made one
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a readable ase database") as exc:
        read_ase_db(tmp_path / "junk.db")
    one_line_error(exc, tmp_path / "junk.db")

"""Training (fusiondsl.models.train) and the experiment command (fusiondsl.models.experiment).

A small learnable pair potential (Morse with a smooth cosine cutoff) stands in for the real
models: it is rotation invariant, smooth, and cheap, so each test trains in a fraction of a
second. Its "teacher" copy labels synthetic clusters exactly.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusiondsl.models.base import Potential
from fusiondsl.models.data import Batch, Structure, collate, save_npz
from fusiondsl.models.experiment import (
    ExperimentConfig,
    load_model,
    main,
    run_experiment,
    save_checkpoint,
)
from fusiondsl.models.train import (
    History,
    batch_loss,
    energy_and_forces,
    evaluate,
    fit,
    fit_references,
)

CUTOFF = 4.0
ROOT = Path(__file__).resolve().parent.parent


class PairMorse(Potential):
    """E = ½ Σ_{i≠j} D_{s_i s_j} (x² − 2x) f_c(r), x = exp(−α (r − r0)); smooth at the cutoff."""

    def __init__(self, species, *, cutoff: float = CUTOFF, depth: float = 0.3,
                 alpha: float = 1.5, r0: float = 2.5) -> None:
        super().__init__(species)
        k = len(self.species)
        self.cutoff = cutoff
        self.log_depth = torch.nn.Parameter(torch.full((k, k), math.log(depth)))
        self.alpha = torch.nn.Parameter(torch.tensor(alpha))
        self.r0 = torch.nn.Parameter(torch.tensor(r0))

    def atomic_outputs(self, batch: Batch) -> torch.Tensor:
        i, j = batch.edge_index
        r = (batch.positions[j] - batch.positions[i]).norm(dim=-1)
        s = self.species_of(batch.numbers)
        depth = self.log_depth.exp()
        depth = 0.5 * (depth + depth.T)[s[i], s[j]]
        x = torch.exp(-self.alpha * (r - self.r0))
        cut = 0.5 * (torch.cos(math.pi * r / self.cutoff) + 1.0)
        pair = depth * (x * x - 2.0 * x) * cut
        return 0.5 * pair.new_zeros(batch.positions.shape[0]).index_add(0, i, pair)


class Constant(Potential):
    """Only the per-species reference energies: E = Σ e_s, no forces."""

    def atomic_outputs(self, batch: Batch) -> torch.Tensor:
        return torch.zeros(batch.numbers.shape[0], dtype=self.energy_scale.dtype)


def teacher(species=(28, 29)) -> PairMorse:
    model = PairMorse(species, depth=0.4, alpha=1.3, r0=2.6).double()
    with torch.no_grad():
        model.log_depth[0, 1] = model.log_depth[1, 0] = math.log(0.5)
        model.atomic_energies.copy_(torch.tensor([-1.5, -2.0]))
    return model


def synthetic_structures(n: int, seed: int = 0, n_atoms: int = 8) -> list[Structure]:
    """Jittered 2×2×2 cubes (spacing 2.5 Å) of Ni/Cu, labelled by the teacher."""
    rng = np.random.default_rng(seed)
    grid = 2.5 * np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    model = teacher()
    out = []
    for _ in range(n):
        numbers = rng.choice([28, 29], size=n_atoms)
        positions = grid[:n_atoms] + rng.normal(scale=0.15, size=(n_atoms, 3))
        bare = Structure(numbers, positions, energy=None, forces=None)
        energy, forces = energy_and_forces(model, collate([bare], CUTOFF), create_graph=False)
        out.append(Structure(numbers, positions, float(energy[0]), forces.numpy()))
    return out


@pytest.fixture(scope="module")
def data() -> list[Structure]:
    return synthetic_structures(24)


@pytest.fixture
def registry(monkeypatch):
    from fusiondsl.models import zoo

    monkeypatch.setitem(zoo.MODELS, "pair", PairMorse)
    monkeypatch.setitem(zoo.MODELS, "const", Constant)
    return zoo.MODELS


def student() -> PairMorse:
    torch.manual_seed(0)
    return PairMorse((28, 29), depth=0.2, alpha=1.8, r0=2.3)


# ---------------------------------------------------------------- energy_and_forces


def test_forces_are_minus_the_finite_difference_gradient(data):
    model = teacher()
    batch = collate(data[:2], CUTOFF)
    energy, forces = energy_and_forces(model, batch, create_graph=False)
    assert energy.shape == (2,) and forces.shape == (16, 3)
    assert not energy.requires_grad and not forces.requires_grad
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (9, 2), (15, 0)]:
        plus, minus = batch.positions.clone(), batch.positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        with torch.no_grad():
            e_plus = model(Batch(**{**vars(batch), "positions": plus})).sum()
            e_minus = model(Batch(**{**vars(batch), "positions": minus})).sum()
        fd = -(e_plus - e_minus) / (2 * h)
        assert float(forces[atom, axis]) == pytest.approx(float(fd), abs=1e-7)


def test_create_graph_lets_a_force_loss_reach_the_weights(data):
    model = teacher()
    batch = collate(data[:3], CUTOFF)
    _, forces = energy_and_forces(model, batch, create_graph=True)
    assert forces.requires_grad and not batch.positions.requires_grad
    forces.pow(2).sum().backward()
    assert model.alpha.grad is not None and float(model.alpha.grad.abs()) > 0


def test_position_independent_energy_has_zero_forces(data):
    model = Constant((28, 29)).double()
    _, forces = energy_and_forces(model, collate(data[:2], CUTOFF), create_graph=False)
    assert torch.equal(forces, torch.zeros(16, 3, dtype=torch.float64))


# ---------------------------------------------------------------- fit_references


def test_fit_references_recovers_species_energies_and_force_scale():
    rng = np.random.default_rng(1)
    refs = {28: -1.25, 29: -3.5, 46: 0.75}
    structures = []
    for n in rng.integers(2, 7, size=10):
        numbers = rng.choice(list(refs), size=n)
        forces = rng.normal(scale=0.3, size=(n, 3))
        structures.append(Structure(numbers, rng.normal(size=(n, 3)),
                                    sum(refs[int(z)] for z in numbers), forces))
    model = Constant((28, 29, 46)).double()
    summary = fit_references(model, structures)
    assert model.atomic_energies.tolist() == pytest.approx([-1.25, -3.5, 0.75], abs=1e-10)
    rms = np.sqrt(np.mean(np.concatenate([s.forces.ravel() for s in structures]) ** 2))
    assert float(model.energy_scale) == pytest.approx(rms, rel=1e-12)
    assert summary["scale_from"] == "force_rms"
    assert summary["atomic_energies"][29] == pytest.approx(-3.5, abs=1e-10)


def test_fit_references_with_one_composition_removes_the_mean():
    numbers = np.array([28, 28, 29])
    energies = [-5.0, -5.2, -4.9]
    structures = [Structure(numbers, np.eye(3) * k, e, None) for k, e in enumerate(energies, 1)]
    model = Constant((28, 29)).double()
    summary = fit_references(model, structures)
    e_ni, e_cu = model.atomic_energies.tolist()
    assert 2 * e_ni + e_cu == pytest.approx(np.mean(energies), abs=1e-12)
    assert summary["scale_from"] == "energy_std"
    assert float(model.energy_scale) == pytest.approx(np.std(energies) / 3, rel=1e-12)


# ---------------------------------------------------------------- fit


def test_fit_reduces_the_loss_and_keeps_the_best_epoch(data):
    train, val = data[:16], data[16:]
    model = student()
    loss_before = float(batch_loss(model.double(), collate(train, CUTOFF), energy_weight=1.0,
                                   force_weight=100.0, create_graph=False))
    history = fit(model, train, val, epochs=6, batch_size=4, lr=0.02, cutoff=CUTOFF,
                  progress=False)
    loss_after = float(batch_loss(model, collate(train, CUTOFF), energy_weight=1.0,
                                  force_weight=100.0, create_graph=False))
    assert loss_after < 0.5 * loss_before
    assert len(history.records) == 6
    assert history.records[-1].val_loss < history.records[0].val_loss
    best = history.records[history.best_epoch - 1]
    assert best.val_loss == min(history.column("val_loss")) == history.best_val_loss
    metrics = evaluate(model, val, cutoff=CUTOFF, batch_size=3)  # the best weights are back
    assert metrics["force_mae"] == pytest.approx(best.val_force_mae, rel=1e-9)
    assert metrics["energy_mae_per_atom"] == pytest.approx(best.val_energy_mae, rel=1e-9)
    assert all(r.seconds > 0 and r.lr > 0 for r in history.records)


def _fit_once(data, seed: int, dtype=torch.float64) -> tuple[History, dict]:
    model = student()
    history = fit(model, data[:16], data[16:], epochs=3, batch_size=5, lr=0.01, cutoff=CUTOFF,
                  seed=seed, dtype=dtype, progress=False)
    return history, model.state_dict()


def _numbers(history: History) -> list[tuple]:
    return [(r.train_loss, r.val_loss, r.val_energy_mae, r.val_force_mae, r.lr)
            for r in history.records]


def test_fit_is_deterministic_for_a_seed(data):
    (h1, s1), (h2, s2), (h3, _) = _fit_once(data, 7), _fit_once(data, 7), _fit_once(data, 8)
    assert _numbers(h1) == _numbers(h2) and h1.best_epoch == h2.best_epoch
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert _numbers(h1) != _numbers(h3)  # another seed shuffles the batches differently


def test_fit_in_float32(data):
    history, state = _fit_once(data, 0, dtype=torch.float32)
    assert state["alpha"].dtype == torch.float32
    assert all(math.isfinite(r.val_loss) for r in history.records)


def test_fit_without_validation_set_uses_the_training_loss(data):
    history = fit(student(), data[:8], [], epochs=2, batch_size=4, lr=0.01, cutoff=CUTOFF,
                  scheduler="cosine", progress=False)
    assert [r.val_loss for r in history.records] == [r.train_loss for r in history.records]
    assert math.isnan(history.records[0].val_force_mae)
    json.dumps(history.to_dict())


def test_fit_progress_bar(data, capsys):
    stream = io.StringIO()
    fit(student(), data[:8], data[8:10], epochs=2, batch_size=4, lr=0.01, cutoff=CUTOFF,
        progress=stream)
    lines = stream.getvalue().splitlines()  # not a terminal: whole lines, no \r
    bars = [line for line in lines if "ETA" in line]
    summaries = [line for line in lines if "meV/atom" in line]
    assert "epoch 1/2 [" in bars[0] and "loss" in bars[0] and "\r" not in stream.getvalue()
    assert "epoch 2/2 [########################] 2/2" in bars[-1]
    assert [line.split()[1] for line in summaries] == ["1/2", "2/2"]
    assert len(bars) + len(summaries) == len(lines)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    fit(student(), data[:8], data[8:10], epochs=1, batch_size=4, lr=0.01, cutoff=CUTOFF,
        progress=terminal)
    assert terminal.getvalue().startswith("\repoch 1/1 [") and terminal.getvalue().count("\n") == 1
    fit(student(), data[:4], data[4:6], epochs=1, batch_size=4, lr=0.01, cutoff=CUTOFF,
        progress=False)
    assert capsys.readouterr().err == ""


def test_fit_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="epochs"):
        fit(student(), data[:4], [], epochs=0, batch_size=2, lr=0.01, cutoff=CUTOFF)
    with pytest.raises(ValueError, match="scheduler"):
        fit(student(), data[:4], [], epochs=1, batch_size=2, lr=0.01, cutoff=CUTOFF,
            scheduler="step", progress=False)


# ---------------------------------------------------------------- evaluate


def test_evaluate_on_a_hand_made_case():
    model = Constant((1, 8)).double()
    with torch.no_grad():
        model.atomic_energies.copy_(torch.tensor([-0.5, -2.0]))
    forces_a = np.array([[0.01, -0.02, 0.0], [0.0, 0.0, 0.03]])
    forces_b = np.zeros((4, 3))
    forces_b[0] = [0.004, 0.0, -0.008]
    a = Structure([1, 8], np.eye(2, 3), energy=-2.5 + 0.010, forces=forces_a)  # ΔE = -10 meV
    b = Structure([1, 1, 8, 8], np.eye(4, 3), energy=-5.0 - 0.040, forces=forces_b)  # +40 meV
    m = evaluate(model, [a, b], cutoff=1.0, batch_size=1)
    assert m["energy_mae"] == pytest.approx(25.0)
    assert m["energy_rmse"] == pytest.approx(math.sqrt((10**2 + 40**2) / 2))
    assert m["energy_mae_per_atom"] == pytest.approx((5.0 + 10.0) / 2)
    assert m["energy_rmse_per_atom"] == pytest.approx(math.sqrt((25 + 100) / 2))
    assert m["force_mae"] == pytest.approx((10 + 20 + 30 + 4 + 8) / 18)
    assert m["force_rmse"] == pytest.approx(math.sqrt((100 + 400 + 900 + 16 + 64) / 18))
    assert m["n_structures"] == 2 and m["n_atoms"] == 6


def test_evaluate_without_labels_gives_nan():
    s = Structure([1, 8], np.eye(2, 3), energy=None, forces=None)
    m = evaluate(Constant((1, 8)).double(), [s], cutoff=1.0)
    assert math.isnan(m["energy_mae"]) and math.isnan(m["force_rmse"])


# ---------------------------------------------------------------- experiment


def _run(args, registry, tmp_path, data) -> Path:
    path = tmp_path / "data.npz"
    save_npz(path, data)
    out = tmp_path / "out"
    rc = main(["--data", str(path), "--out", str(out), "--n-train", "12", "--n-val", "6",
               "--epochs", "2", "--batch-size", "4", "--cutoff", str(CUTOFF), "--quiet",
               *args])
    assert rc == 0
    return out


def test_experiment_writes_results_table_curves_and_checkpoints(registry, tmp_path, data,
                                                                capsys):
    out = _run(["--models", "pair,const", "--hyper", "pair.alpha=1.7", "--lr", "0.02"],
               registry, tmp_path, data)
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in results["models"]] == ["pair", "const"]
    assert results["split"] == {"train": 12, "val": 6, "test": 6}
    pair = results["models"][0]
    assert pair["hyper"] == {"alpha": 1.7, "cutoff": CUTOFF} and pair["parameters"] == 6
    assert len(pair["history"]["records"]) == 2 and pair["scored_on"] == "test"
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | parameters | energy MAE (meV/atom) | force MAE")
    assert rows[1].startswith("| pair | 6 | ") and rows[2].startswith("| const | 0 | ")
    assert f"{pair['metrics']['force_mae']:.1f}" in rows[1]
    assert "- seed: 0" in table and "torch " + torch.__version__ in table
    assert "machine:" in table and "date:" in table and "data.npz (24 structures)" in table
    assert rows[1] in printed
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    assert (out / "results.md").stat().st_mode & 0o044  # readable by others, unlike mkstemp
    model, info = load_model(out / "pair.pt")
    assert info["cutoff"] == CUTOFF and info["hyper"]["alpha"] == 1.7
    assert float(model.alpha.detach()) != 1.7  # trained weights, not a fresh model
    batch = collate(data[:2], CUTOFF)
    e_loaded, _ = energy_and_forces(model, batch, create_graph=False)
    assert torch.isfinite(e_loaded).all()


def test_experiment_resume_keeps_finished_models_and_trains_the_rest(registry, tmp_path, data,
                                                                    monkeypatch):
    from fusiondsl.models import experiment

    out = _run(["--models", "pair"], registry, tmp_path, data)
    first = json.loads((out / "results.json").read_text())["models"][0]
    assert not list(out.glob("*.state.pt"))  # a finished model leaves nothing to resume
    trained = []
    real_fit = experiment.fit

    def counting_fit(model, *args, **kwargs):
        trained.append(kwargs["state_path"].name)
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(experiment, "fit", counting_fit)
    _run(["--models", "pair,const", "--resume"], registry, tmp_path, data)
    results = json.loads((out / "results.json").read_text())
    assert trained == ["const.state.pt"]
    assert results["models"][0] == first and results["models"][1]["name"] == "const"


def test_experiment_with_md_adds_drift_columns(registry, tmp_path, data):
    out = _run(["--models", "pair", "--md-steps", "10", "--n-structures", "5"],
               registry, tmp_path, data)
    table = (out / "results.md").read_text()
    assert "MD drift (meV/atom/ps)" in table and "10 steps of 0.5 fs" in table
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    assert header.count("|") == 9  # 8 columns, no stray pipe
    md = json.loads((out / "results.json").read_text())["models"][0]["md"]
    assert md["steps"] == 10 and md["finite"]


def test_experiment_generates_data_when_none_is_given(registry, tmp_path, data, monkeypatch):
    from fusiondsl.models import experiment

    calls = []

    def fake_generate_emt(n, seed=0, symbols="Cu7Ni6", temperature_K=600.0):  # noqa: N803
        calls.append((n, seed, symbols, temperature_K))
        return data[:n]

    monkeypatch.setattr(experiment, "generate_emt", fake_generate_emt)
    results = run_experiment(ExperimentConfig(
        models=["const"], out=tmp_path, n_structures=10, symbols="Cu3Pt", seed=3,
        data_temperature_K=450.0, n_train=5, n_val=3, epochs=1, progress=False))
    assert calls == [(10, 3, "Cu3Pt", 450.0)]
    assert results["data"] == "ase EMT Cu3Pt at 450 K, 10 structures generated with seed 3"
    assert results["split"] == {"train": 5, "val": 3, "test": 2}
    assert results["data"] in (tmp_path / "results.md").read_text()


def test_checkpoint_round_trip(registry, tmp_path):
    model = teacher()
    save_checkpoint(tmp_path / "t.pt", model, name="pair", hyper={"depth": 0.4}, cutoff=3.5)
    loaded, info = load_model(tmp_path / "t.pt")
    assert info == {"name": "pair", "hyper": {"depth": 0.4}, "species": [28, 29],
                    "cutoff": 3.5, "dtype": "float64"}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "nope"], "unknown model 'nope'"),
    (["--models", "pair", "--n-train", "30"], "exceeds the 24 structures"),
    (["--models", "pair", "--epochs", "x"], "invalid int value"),
    (["--models", "pair", "--hyper", "bogus"], "expected KEY=VALUE"),
    (["--models", "pair", "--hyper", "colour=3"], "unexpected keyword argument 'colour'"),
    (["--models", "pair", "--hyper", "const.depth=3"], "models not trained"),
    (["--models", "pair", "--data", "missing.npz"], "no such file"),
    (["--models", "pair", "--dtype", "float16"], "invalid choice"),
    (["--models", "pair", "--data", "bad.npz"], "bad.npz"),
])
def test_experiment_bad_arguments_exit_2_with_one_line(registry, tmp_path, data, capsys,
                                                       monkeypatch, args, message):
    path = tmp_path / "data.npz"
    save_npz(path, data)
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    argv = ["--data", str(path), "--out", str(tmp_path / "o"), "--quiet", *args]
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exit_:
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o" / "results.json").exists()


def test_python_dash_m_entry_point_reports_a_bad_model():
    proc = subprocess.run([sys.executable, "-m", "fusiondsl.models.train", "--models", "nope",
                           "--out", "unused"], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("python -m fusiondsl.models.train: error: unknown model "
                                   "'nope'; known: cofd, cormorant, mace, mofd")

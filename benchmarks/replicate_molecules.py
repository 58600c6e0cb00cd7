"""Replicate the paper's molecule claims at small scale: MACE vs MoFD, Cormorant vs CoFD.

For each molecule (GFN2-xTB Langevin data at 500 K made by ``fusiondsl.models.molecules``,
read with ``read_rmd17``), one fixed split (1000 train / 100 validation / 500 test), and for
each seed: train the two baselines and, for each, its fusion variant at a matched parameter
count and at the paper's reduced size (MoFD −29 %, CoFD −59 %), all at the same depth, for
the same epochs on the same data. Writes into ``--out``:

- ``runs.json``: every run (rewritten after each, so an interrupted grid keeps what it did
  and ``--resume`` continues it);
- ``tables.md``: per molecule, energy and force MAE on the test set, mean ± std over seeds;
- ``curves_<molecule>.png``: validation MAE against epoch, mean with a ±1 std band.

Example (what examples/RESULTS.md records)::

    OMP_NUM_THREADS=1 python benchmarks/replicate_molecules.py --out examples/results/molecules
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusiondsl.core.fileio import write_atomic
from fusiondsl.models.experiment import build_model
from fusiondsl.models.molecules import MoleculeSettings, molecule_dataset
from fusiondsl.models.radial import RadialMLP
from fusiondsl.models.readers import read_rmd17
from fusiondsl.models.train import evaluate, fit, fit_references

# variant -> (registry name, baseline variant, parameter ratio to the baseline)
VARIANTS = {
    "mace": ("mace", None, 1.0),
    "mofd=": ("mofd", "mace", 1.0),
    "mofd-29%": ("mofd", "mace", 0.71),
    "cormorant": ("cormorant", None, 1.0),
    "cofd=": ("cofd", "cormorant", 1.0),
    "cofd-59%": ("cofd", "cormorant", 0.41),
}
PAIRS = (("mace", "mofd=", "mofd-29%"), ("cormorant", "cofd=", "cofd-59%"))


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def radial_free_count(name: str, species: list[int], hyper: dict[str, Any]) -> tuple[int, list]:
    """Parameters outside the radial MLPs, and each radial MLP's output width."""
    model = build_model(name, species, **hyper)
    radials = [m for m in model.modules() if isinstance(m, RadialMLP)]
    outs = [r.mlp[-1].out_features for r in radials]
    return n_parameters(model) - sum(n_parameters(r) for r in radials), outs


def count_with_hidden(base: int, outs: list[int], num_basis: int, hidden: int) -> int:
    """Total parameters when every radial MLP (two hidden layers) has width ``hidden``."""
    return base + sum(num_basis * hidden + hidden * hidden + hidden * out for out in outs)


def size_variant(name: str, species: list[int], common: dict[str, Any], target: int,
                 channels: range) -> dict[str, Any]:
    """The (channels, radial_hidden) whose parameter count is nearest ``target``.

    Among channel counts that reach the target within 2 %, the one whose radial width stays
    nearest the baseline's (in ratio) wins, so the size is changed mostly through channels.
    """
    best: tuple[float, dict[str, Any]] | None = None
    hidden0 = common["radial_hidden"]
    for c in channels:
        base, outs = radial_free_count(name, species, {**common, "channels": c})
        for h in range(4, 4 * hidden0 + 1):
            count = count_with_hidden(base, outs, common["num_basis"], h)
            error = abs(count - target) / target
            score = (error > 0.02, error if error > 0.02 else abs(math.log(h / hidden0)))
            if best is None or score < best[0]:
                best = (score, {**common, "channels": c, "radial_hidden": h})
    assert best is not None
    return best[1]


def sized_hyper(species: list[int], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Hyperparameters of every variant for one molecule's species."""
    common = {"lmax": args.lmax, "num_layers": args.layers, "num_basis": 8,
              "radial_hidden": args.radial_hidden, "cutoff": args.cutoff}
    hyper = {"mace": {**common, "channels": args.channels},
             "cormorant": {**common, "channels": args.channels}}
    for variant, (name, baseline, ratio) in VARIANTS.items():
        if baseline is None:
            continue
        target = round(ratio * n_parameters(build_model(baseline, species, **hyper[baseline])))
        hyper[variant] = size_variant(name, species, common, target,
                                      range(2, 2 * args.channels + 1))
    return hyper


def load_molecule(molecule: str, args: argparse.Namespace) -> tuple[list, list, list]:
    path = molecule_dataset(MoleculeSettings(molecule, args.n_train + args.n_val + args.n_test,
                                             seed=0))
    structures = read_rmd17(path)
    order = np.random.default_rng(0).permutation(len(structures))  # one split for every seed
    pick = [structures[k] for k in order]
    n, v = args.n_train, args.n_val
    return pick[:n], pick[n:n + v], pick[n + v:]


def train_one(variant: str, hyper: dict[str, Any], seed: int, data: tuple[list, list, list],
              args: argparse.Namespace) -> dict[str, Any]:
    train, val, test = data
    species = sorted({int(z) for z in train[0].numbers})
    torch.manual_seed(seed)
    model = build_model(VARIANTS[variant][0], species, **hyper).double()
    fit_references(model, train)
    start = time.perf_counter()
    history = fit(model, train, val, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  cutoff=args.cutoff, seed=seed, scheduler=args.scheduler, references=False,
                  progress=False)
    seconds = time.perf_counter() - start
    metrics = evaluate(model, test, cutoff=args.cutoff, batch_size=50)
    return {"variant": variant, "model": VARIANTS[variant][0], "hyper": hyper, "seed": seed,
            "parameters": n_parameters(model), "metrics": metrics, "seconds": seconds,
            "seconds_per_epoch": float(np.mean(history.column("seconds"))),
            "best_epoch": history.best_epoch, "history": history.to_dict()["records"]}


def run_grid(args: argparse.Namespace) -> dict[str, Any]:
    runs_path = args.out / "runs.json"
    state = json.loads(runs_path.read_text()) if args.resume and runs_path.is_file() else {}
    state.setdefault("settings", {k: str(v) for k, v in vars(args).items()})
    state.setdefault("runs", [])
    done = {(r["molecule"], r["variant"], r["seed"]) for r in state["runs"]}
    data = {m: load_molecule(m, args) for m in args.molecules}
    hyper = {m: sized_hyper(sorted({int(z) for z in data[m][0][0].numbers}), args)
             for m in args.molecules}
    for seed in args.seeds:  # seed-major: a grid cut short still has every model
        for molecule in args.molecules:
            for variant in args.variants:
                if (molecule, variant, seed) in done:
                    continue
                run = train_one(variant, hyper[molecule][variant], seed, data[molecule], args)
                run["molecule"] = molecule
                state["runs"].append(run)
                write_atomic(runs_path, json.dumps(state, indent=1) + "\n")
                m = run["metrics"]
                print(f"{molecule} {variant} seed {seed}: {run['parameters']} params, "
                      f"E {m['energy_mae_per_atom']:.2f} meV/atom, F {m['force_mae']:.1f} "
                      f"meV/Å, {run['seconds']:.0f} s", file=sys.stderr, flush=True)
    return state


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.2f}"


def tables(state: dict[str, Any]) -> str:
    lines = []
    for molecule in dict.fromkeys(r["molecule"] for r in state["runs"]):
        runs = [r for r in state["runs"] if r["molecule"] == molecule]
        lines += [f"### {molecule}", "",
                  "| model | parameters | seeds | energy MAE (meV/atom) | energy MAE (meV) | "
                  "force MAE (meV/Å) | s/epoch |", "|---|---:|---:|---:|---:|---:|---:|"]
        for variant in dict.fromkeys(r["variant"] for r in runs):
            rs = [r for r in runs if r["variant"] == variant]
            cells = [variant, f"{rs[0]['parameters']:,}", str(len(rs)),
                     _mean_std([r["metrics"]["energy_mae_per_atom"] for r in rs]),
                     _mean_std([r["metrics"]["energy_mae"] for r in rs]),
                     _mean_std([r["metrics"]["force_mae"] for r in rs]),
                     f"{np.mean([r['seconds_per_epoch'] for r in rs]):.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _stats(runs: list[dict[str, Any]], variant: str, key: str) -> tuple[float, float, int]:
    values = [r["metrics"][key] for r in runs if r["variant"] == variant]
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, \
        len(values)


def verdicts(state: dict[str, Any]) -> str:
    """Each fusion variant against its baseline: the difference of the seed means, and
    whether it is larger than the seed spread (the two standard deviations added in
    quadrature)."""
    lines = ["| molecule | variant vs baseline | parameters | Δ energy MAE (meV/atom) | "
             "Δ force MAE (meV/Å) |", "|---|---|---:|---:|---:|"]
    for molecule in dict.fromkeys(r["molecule"] for r in state["runs"]):
        runs = [r for r in state["runs"] if r["molecule"] == molecule]
        have = {r["variant"] for r in runs}
        params = {r["variant"]: r["parameters"] for r in runs}
        for base, *variants in PAIRS:
            for variant in (v for v in variants if v in have and base in have):
                cells = [molecule, f"{variant} vs {base}",
                         f"{params[variant]:,} vs {params[base]:,}"]
                for key in ("energy_mae_per_atom", "force_mae"):
                    (m1, s1, n1), (m0, s0, n0) = (_stats(runs, variant, key),
                                                  _stats(runs, base, key))
                    spread = math.hypot(s1, s0)
                    word = "inside the seed spread" if abs(m1 - m0) <= spread else (
                        "better" if m1 < m0 else "worse")
                    if min(n0, n1) < 2:
                        word = "one seed: no spread to judge by"
                    cells.append(f"{m1 - m0:+.2f} ± {spread:.2f} ({word})")
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(state: dict[str, Any], molecule: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in state["runs"] if r["molecule"] == molecule]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for variant in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == variant]
        for ax, key in zip(axes, ("val_force_mae", "val_energy_mae")):
            curves = np.array([[rec[key] for rec in r["history"]] for r in rs])
            epochs = np.arange(1, curves.shape[1] + 1)
            mean, std = curves.mean(0), curves.std(0)
            line = ax.plot(epochs, mean, label=f"{variant} ({len(rs)} seeds)")[0]
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for ax, what in zip(axes, ("force MAE (meV/Å)", "energy MAE (meV/atom)")):
        ax.set(xlabel="epoch", ylabel=f"validation {what}", yscale="log", title=molecule)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(state: dict[str, Any], out: Path) -> None:
    write_atomic(out / "tables.md", tables(state) + "\n" + verdicts(state))
    for molecule in dict.fromkeys(r["molecule"] for r in state["runs"]):
        plot(state, molecule, out / f"curves_{molecule}.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--out", type=Path, required=True)
    add("--molecules", nargs="+", default=["ethanol", "malonaldehyde", "uracil"])
    add("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    add("--seeds", nargs="+", type=int, default=[0, 1, 2])
    add("--n-train", type=int, default=1000)
    add("--n-val", type=int, default=100)
    add("--n-test", type=int, default=500)
    add("--epochs", type=int, default=12)
    add("--batch-size", type=int, default=25)
    add("--lr", type=float, default=5e-3)
    add("--scheduler", default="cosine", choices=("plateau", "cosine", "none"))
    add("--channels", type=int, default=4, help="channels of both baselines")
    add("--lmax", type=int, default=1)
    add("--layers", type=int, default=2)
    add("--radial-hidden", type=int, default=16)
    add("--cutoff", type=float, default=5.0)
    add("--resume", action="store_true", help="keep the runs already in runs.json")
    add("--report-only", action="store_true", help="rewrite tables and curves from runs.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        state = json.loads((args.out / "runs.json").read_text())
    else:
        state = run_grid(args)
    report(state, args.out)
    print(tables(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Split a trained model's energy error into a constant offset and the rest.

With every structure of one composition (the EMT Cu7Ni6 set), a constant energy offset is
invisible to the forces and weakly constrained by the energy loss (weight 1 against 100 for
forces), so the test energy MAE of `python -m fusiondsl.models.train` mixes a constant with
the model's real error. This re-creates the run's data and split and prints both.

    python examples/energy_offset.py runs/emt/mace.pt runs/emt/mofd.pt --n-structures 1000 \
        --n-train 400 --n-val 100 --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fusiondsl.models.data import batches, generate_emt, split
from fusiondsl.models.experiment import load_model


def residuals(model: torch.nn.Module, structures: list, cutoff: float) -> np.ndarray:
    """Predicted minus reference energy per atom (eV) for each structure."""
    out = []
    with torch.no_grad():
        for batch in batches(structures, 50, cutoff):
            out.append(model(batch).numpy())
    sizes = np.array([len(s.numbers) for s in structures])
    return (np.concatenate(out) - np.array([s.energy for s in structures])) / sizes


def main() -> None:
    """Print, per checkpoint, the test MAE with and without the training set's mean error."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--n-structures", type=int, default=1000)
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-val", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    structures = generate_emt(args.n_structures, seed=args.seed)
    train, _, test = split(structures, args.n_train, args.n_val, seed=args.seed)
    print("| model | test energy MAE (meV/atom) | mean error | MAE, train mean error removed |")
    print("|---|---:|---:|---:|")
    for path in args.checkpoints:
        model, info = load_model(path)
        r_train = residuals(model, train, info["cutoff"])
        r_test = residuals(model, test, info["cutoff"])
        print(f"| {info['name']} | {1e3 * np.abs(r_test).mean():.2f} | {1e3 * r_test.mean():+.2f} "
              f"| {1e3 * np.abs(r_test - r_train.mean()).mean():.2f} |")


if __name__ == "__main__":
    main()

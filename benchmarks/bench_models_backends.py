"""Seconds per training epoch of the replication's models, einsum backend against C.

Builds each model of ``benchmarks/replicate_molecules.py`` (the sizes it chose for the
molecule) once per backend, with the same initial weights, and times ``--epochs`` epochs of
:func:`fusiondsl.models.fitting.fit` on the first ``--n-train`` training structures (the
validation set is 100 structures, as in the grid). The first build of a C layer compiles it
(minutes for some); builds are timed apart from the epochs. One torch thread. Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_models_backends.py --molecule ethanol
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replicate_molecules as grid

from fusiondsl.models.experiment import build_model
from fusiondsl.models.fitting import fit
from fusiondsl.models.loss import fit_references


def time_backend(variant: str, hyper: dict, backend: str, data: tuple, args) -> dict:
    train, val = data[0][:args.n_train], data[1]
    start = time.perf_counter()
    torch.manual_seed(0)
    model = build_model(grid.VARIANTS[variant][0], sorted({int(z) for z in train[0].numbers}),
                        **hyper, backend=backend).double()
    built = time.perf_counter() - start
    fit_references(model, train)
    history = fit(model, train, val, epochs=args.epochs, batch_size=25, lr=5e-3,
                  cutoff=hyper["cutoff"], seed=0, scheduler="cosine", references=False,
                  progress=False)
    seconds = history.column("seconds")
    return {"variant": variant, "backend": backend, "build_s": built,
            "seconds_per_epoch": float(np.median(seconds)), "epochs": seconds,
            "val_force_mae": history.records[-1].val_force_mae}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--molecule", default="ethanol")
    p.add_argument("--variants", nargs="+", default=["mace", "mofd=", "cormorant", "cofd="])
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("examples/results/molecules"))
    args = p.parse_args()
    torch.set_num_threads(1)
    gargs = grid.parse_args(["--out", str(args.out)])
    data = grid.load_molecule(args.molecule, gargs)
    hyper = grid.sized_hyper(sorted({int(z) for z in data[0][0].numbers}), gargs)
    rows = []
    for variant in args.variants:
        for backend in ("einsum", "c"):
            rows.append(time_backend(variant, hyper[variant], backend, data, args))
            r = rows[-1]
            print(f"{variant:<10} {backend:<6} build {r['build_s']:6.1f} s  "
                  f"{r['seconds_per_epoch']:.2f} s/epoch  val F {r['val_force_mae']:.2f}",
                  flush=True)
    (args.out / f"backends_{args.molecule}.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Swap a real NequIP model (nequip from PyPI, e3nn 0.6) and compare energies and forces.

Correctness only, no timings. Run in the environment made by ``benchmarks/swap_env_nequip.sh``:

    bash benchmarks/swap_env_nequip.sh
    /tmp/nequip-venv/bin/python benchmarks/swap_nequip.py [--backend einsum|c] [--config NAME]

It builds NequIP models with nequip's own builders (``NequIPGNNModel``,
``PresetNequIPGNNModel``) in float64 — a small one with parity and ℓ ≤ 2 (NequIP's default
``parity=True``), and the foundation-model preset ``S`` (no parity, ℓ ≤ 1, 128/64 features) —
evaluates energy and forces (NequIP's own ``ForceStressOutput``: autograd through the model)
on a few random molecules, swaps a deep copy with ``fusiondsl.swap``, evaluates again and
prints the swap report and the largest differences. It exits 1 unless every model agrees to
1e-10 (relative to max(1, |value|)).
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from typing import Any

import numpy as np
import torch

TYPES = ["H", "O"]
R_MAX = 4.0
COMMON = {"r_max": R_MAX, "type_names": TYPES, "avg_num_neighbors": 6.0,
          "per_type_energy_scales": 1.0, "per_type_energy_shifts": {"H": -1.5, "O": -4.0}}
CONFIGS: dict[str, dict[str, Any]] = {
    # NequIP's default (parity=True): even and odd features of every ℓ ≤ 2, three convolutions
    "parity": {"builder": "NequIPGNNModel", "num_layers": 3, "l_max": 2, "parity": True,
               "num_features": 8, "radial_mlp_width": 16},
    # the foundation-model preset S, as nequip ships it: 2 layers, ℓ ≤ 1, no parity, [128, 64]
    "preset-S": {"builder": "PresetNequIPGNNModel", "preset": "S"},
}


def build_model(config: str, dtype: str = "float64", do_derivatives: bool = True,
                seed: int = 0) -> torch.nn.Module:
    """A NequIP model from nequip's own builders (the global state set first, as nequip asks)."""
    from nequip import model as nequip_model
    from nequip.utils.global_state import set_global_state

    set_global_state()
    options = dict(CONFIGS[config])
    builder = getattr(nequip_model, options.pop("builder"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return builder(seed=seed, model_dtype=dtype, do_derivatives=do_derivatives,
                       **COMMON, **options)


def molecules(num: int = 3, atoms: int = 6, seed: int = 0) -> list[Any]:
    """Random H/O molecules (``ase.Atoms``) in a 3 Å box."""
    import ase

    rng = np.random.default_rng(seed)
    box = 3.0 * (atoms / 6) ** (1 / 3)  # the same density for any number of atoms
    return [ase.Atoms(numbers=rng.choice([1, 8], atoms), positions=rng.uniform(0, box, (atoms, 3)))
            for _ in range(num)]


def graph(mol: Any, dtype: torch.dtype = torch.float64) -> dict[str, torch.Tensor]:
    """NequIP's input dict for one molecule: neighbour list within R_MAX, atom types."""
    from nequip.data import compute_neighborlist_, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper

    data = compute_neighborlist_(from_ase(mol), R_MAX)
    data = ChemicalSpeciesToAtomTypeMapper(TYPES)(data)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in data.items()}


def evaluate(model: torch.nn.Module, mol: Any) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(graph(mol))
    return out["total_energy"].detach(), out["forces"].detach()


def modules_left(model: torch.nn.Module, report: Any) -> list[str]:
    """e3nn products still in the swapped model that the report does not account for."""
    from fusiondsl.nn.e3nn_kind import kind

    named = {e.name for e in report.left}
    return [n for n, m in model.named_modules() if kind(m) is not None and n not in named]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1))


def check(name: str, backend: str) -> bool:
    import fusiondsl

    model = build_model(name)
    swapped = copy.deepcopy(model)
    print(f"\n== NequIP {name} {CONFIGS[name]}: "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    report = fusiondsl.swap(swapped, backend=backend)
    print(report)
    worst_e = worst_f = 0.0
    for mol in molecules():
        (e0, f0), (e1, f1) = evaluate(model, mol), evaluate(swapped, mol)
        worst_e, worst_f = max(worst_e, relative(e1, e0)), max(worst_f, relative(f1, f0))
        print(f"energy {float(e0.sum()):+.12f} -> {float(e1.sum()):+.12f}   "
              f"max |dF| {float((f1 - f0).abs().max()):.3e}")
    unaccounted = modules_left(swapped, report)
    ok = worst_e <= 1e-10 and worst_f <= 1e-10 and bool(report.replaced) and not unaccounted
    print(f"e3nn products neither replaced nor reported: {unaccounted or 'none'}")
    print(f"largest relative difference: energy {worst_e:.3e}, forces {worst_f:.3e} "
          f"-> {'EQUAL to 1e-10' if ok else 'DIFFERENT'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="einsum", choices=["einsum", "c", "triton"])
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    args = parser.parse_args(argv)
    import e3nn
    import nequip

    print(f"torch {torch.__version__}, e3nn {e3nn.__version__}, nequip {nequip.__version__}, "
          f"backend {args.backend}")
    results = [check(name, args.backend) for name in args.config or CONFIGS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

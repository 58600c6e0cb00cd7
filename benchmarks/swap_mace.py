"""Swap a real MACE model (mace-torch from PyPI, e3nn 0.4.4) and compare energies and forces.

Correctness only, no timings. Run in the environment made by ``benchmarks/swap_env.sh``:

    bash benchmarks/swap_env.sh
    /tmp/mace-venv/bin/python benchmarks/swap_mace.py [--backend einsum|c] [--max-ell 3]

It builds two small MACE models (two interactions, correlation 3, ℓ ≤ 3 spherical harmonics)
with mace-torch's own constructor — the default O(3) one and a ``use_so3`` one whose
convolutions use couplings that e3nn 0.4.4 signs differently from 0.6 — evaluates energy and
forces on a few random molecules in float64, swaps a deep copy with ``fusiondsl.nn.swap``,
evaluates again and prints the swap report and the largest differences. It exits 1 unless
both agree to 1e-10.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

CONFIGS = {
    # MACE's default O(3) model: parity keeps every coupling of e3nn 0.4.4's six sign-flipped
    # blocks out of it
    "o3": {"hidden_irreps": "8x0e+8x1o", "use_so3": False},
    # use_so3 drops parity: its convolutions couple 2 ⊗ 1 → 2 and 2 ⊗ 2 → 1, two of the blocks
    # whose sign e3nn 0.4.4 flips relative to 0.6, so the swap must read the convention
    "so3": {"hidden_irreps": "8x0e+8x1o+8x2e", "use_so3": True},
}


def build_model(max_ell: int, hidden_irreps: str, use_so3: bool) -> torch.nn.Module:
    from e3nn import o3
    from mace import modules

    return modules.MACE(
        r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=max_ell,
        interaction_cls=modules.RealAgnosticResidualInteractionBlock,
        interaction_cls_first=modules.RealAgnosticResidualInteractionBlock,
        num_interactions=2, num_elements=2, hidden_irreps=o3.Irreps(hidden_irreps),
        MLP_irreps=o3.Irreps("8x0e"), atomic_energies=np.array([-1.5, -4.0]),
        avg_num_neighbors=6.0, atomic_numbers=[1, 8], correlation=3,
        gate=torch.nn.functional.silu, use_so3=use_so3)


def flipped_blocks(model: torch.nn.Module) -> list[tuple[int, int, int]]:
    """The couplings of the model's products whose sign this e3nn flips relative to 0.6."""
    from fusiondsl.nn.e3nn_kind import kind
    from fusiondsl.nn.interop_convention import signs

    keys, tps = set(), [m for m in model.modules() if kind(m) in ("tensor_product",
                                                                 "tensor_square")]
    for m in tps:
        for i in m.instructions:
            keys.add((i.connection_mode, i.has_weight, m.irreps_in1[i.i_in1].ir.l,
                      m.irreps_in2[i.i_in2].ir.l, m.irreps_out[i.i_out].ir.l))
    return sorted({k[2:] for k, s in signs(tps[0], keys).items() if s < 0}) if tps else []


def batches(num: int = 3, atoms: int = 6, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    import ase
    from mace import data
    from mace.tools import torch_geometric, utils

    rng = np.random.default_rng(seed)
    table = utils.AtomicNumberTable([1, 8])
    out = []
    for _ in range(num):
        mol = ase.Atoms(numbers=rng.choice([1, 8], atoms), positions=rng.uniform(0, 3, (atoms, 3)))
        config = data.config_from_atoms(mol)
        graph = data.AtomicData.from_config(config, z_table=table, cutoff=4.0)
        loader = torch_geometric.dataloader.DataLoader([graph], batch_size=1)
        out.append(next(iter(loader)).to_dict())
    return out


def evaluate(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    result = model(dict(batch), compute_force=True, training=False)
    return result["energy"].detach(), result["forces"].detach()


def check(name: str, backend: str, max_ell: int) -> bool:
    import fusiondsl

    models = []
    for _ in range(2):  # the same model twice (some MACE modules cannot be deep-copied)
        torch.manual_seed(0)
        models.append(build_model(max_ell, **CONFIGS[name]))
    model, swapped = models
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 swapped.state_dict().values()))
    print(f"\n== MACE {name} {CONFIGS[name]}: {sum(p.numel() for p in model.parameters())} "
          f"parameters; couplings with e3nn-version sign flips: {flipped_blocks(model) or 'none'}")
    report = fusiondsl.swap(swapped, backend=backend)
    print(report)
    worst_e = worst_f = 0.0
    for batch in batches():
        (e0, f0), (e1, f1) = evaluate(model, batch), evaluate(swapped, batch)
        worst_e = max(worst_e, float((e1 - e0).abs().max() / e0.abs().max().clamp(min=1)))
        worst_f = max(worst_f, float((f1 - f0).abs().max() / f0.abs().max().clamp(min=1)))
        print(f"energy {float(e0[0]):+.12f} -> {float(e1[0]):+.12f}   "
              f"max |dF| {float((f1 - f0).abs().max()):.3e}")
    if flipped_blocks(model):
        control(model, backend, max_ell, CONFIGS[name])
    ok = worst_e <= 1e-10 and worst_f <= 1e-10 and bool(report.replaced)
    print(f"largest relative difference: energy {worst_e:.3e}, forces {worst_f:.3e} "
          f"-> {'EQUAL to 1e-10' if ok else 'DIFFERENT'}")
    return ok


def control(model: torch.nn.Module, backend: str, max_ell: int, config: dict) -> None:
    """What assuming e3nn 0.6's signs (instead of reading them) would do to this model."""
    import fusiondsl
    import fusiondsl.nn.interop_tp as interop_tp

    measured = interop_tp.signs
    interop_tp.signs = lambda obj, keys: dict.fromkeys(keys, 1.0)  # the wrong assumption
    try:
        torch.manual_seed(0)
        wrong = build_model(max_ell, **config)
        checked = fusiondsl.swap(wrong, backend=backend)
        torch.manual_seed(0)
        unchecked = build_model(max_ell, **config)
        fusiondsl.swap(unchecked, backend=backend, check=False)
    finally:
        interop_tp.signs = measured
    batch = batches()[0]
    (e0, _), (e1, _) = evaluate(model, batch), evaluate(unchecked, batch)
    print(f"control, assuming e3nn 0.6's signs: swap's own check leaves "
          f"{sum('check failed' in e.why for e in checked.left)} products; without the "
          f"check the energy moves {float((e1 - e0).abs().max()):.3e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="einsum", choices=["einsum", "c", "triton"])
    parser.add_argument("--max-ell", type=int, default=3)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS))
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    import e3nn
    import mace

    print(f"torch {torch.__version__}, e3nn {e3nn.__version__}, "
          f"mace {getattr(mace, '__version__', '?')}, backend {args.backend}")
    results = [check(name, args.backend, args.max_ell) for name in args.config or CONFIGS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

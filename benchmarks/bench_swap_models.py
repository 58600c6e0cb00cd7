"""Model-level speed of the swap: one energy + forces step, e3nn vs swapped (einsum, c).

Run in the peer's own environment (``swap_env.sh`` for MACE, ``swap_env_nequip.sh`` for
NequIP), one at a time, under the benchmark lock:

    flock /tmp/fusiondsl-bench.lock /tmp/mace-venv/bin/python benchmarks/bench_swap_models.py mace
    flock /tmp/fusiondsl-bench.lock /tmp/nequip-venv/bin/python benchmarks/bench_swap_models.py \
        nequip

For each model of ``swap_mace.CONFIGS`` / ``swap_nequip.CONFIGS``, dtype and thread count, it
builds three equal models (the same seed): the e3nn original and two swapped with
``fusiondsl.swap(backend=...)``, then times one step on one random molecule: the energy, then
``torch.autograd.grad(energy, positions)`` for the forces (MACE with ``compute_force=False``,
NequIP with ``do_derivatives=False``, so that both take the same step). The variants run
interleaved within each repeat; the median over ``--repeats`` after ``--warmup`` steps is
printed as a markdown row, with each swapped model's time as a ratio to the original's (above
1: the swap is faster) and its largest force difference from the original.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

Step = Callable[[], tuple[torch.Tensor, torch.Tensor]]
VARIANTS = ("e3nn", "einsum", "c")


def _mace_steps(config: str, dtype: torch.dtype, atoms: int) -> dict[str, Step]:
    import swap_mace

    torch.set_default_dtype(dtype)  # MACE builds its constants (U matrices …) in the default
    batch = swap_mace.batches(num=1, atoms=atoms)[0]
    batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}
    steps = {}
    for variant in VARIANTS:
        torch.manual_seed(0)  # the same model each time (some MACE modules cannot be copied)
        model = swap_mace.build_model(3, **swap_mace.CONFIGS[config]).to(dtype)
        if variant != "e3nn":
            swap(model, variant)

        def step(model: torch.nn.Module = model) -> tuple[torch.Tensor, torch.Tensor]:
            data = {k: v.clone() for k, v in batch.items()}
            energy = model(data, compute_force=False, training=False)["energy"].sum()
            forces, = torch.autograd.grad(-energy, data["positions"])
            return energy.detach(), forces

        steps[variant] = step
    return steps


def _nequip_steps(config: str, dtype: torch.dtype, atoms: int) -> dict[str, Step]:
    import swap_nequip

    mol = swap_nequip.molecules(num=1, atoms=atoms)[0]
    name = str(dtype).removeprefix("torch.")
    steps = {}
    for variant in VARIANTS:
        model = swap_nequip.build_model(config, dtype=name, do_derivatives=False)
        if variant != "e3nn":
            swap(model, variant)

        def step(model: torch.nn.Module = model) -> tuple[torch.Tensor, torch.Tensor]:
            data = swap_nequip.graph(mol, dtype)
            pos = data["pos"].requires_grad_(True)
            energy = model(data)["total_energy"].sum()
            forces, = torch.autograd.grad(-energy, pos)
            return energy.detach(), forces

        steps[variant] = step
    return steps


def swap(model: torch.nn.Module, backend: str) -> None:
    import fusiondsl

    report = fusiondsl.swap(model, backend=backend)
    failed = [e for e in report.left if "check failed" in e.why]
    if not report.replaced or failed:
        raise SystemExit(f"swap ({backend}) did not replace the products:\n{report}")


def measure(steps: dict[str, Step], warmup: int, repeats: int) -> dict[str, Any]:
    """Median seconds per variant (interleaved repeats) and the force differences."""
    results = {v: steps[v]() for v in VARIANTS}
    for _ in range(warmup):
        for v in VARIANTS:
            steps[v]()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for v in VARIANTS:
            start = time.perf_counter()
            steps[v]()
            times[v].append(time.perf_counter() - start)
    f0 = results["e3nn"][1]
    return {"median": {v: statistics.median(t) for v, t in times.items()},
            "dF": {v: float((results[v][1] - f0).abs().max()) for v in VARIANTS}}


def row(model: str, config: str, dtype: torch.dtype, threads: int, m: dict[str, Any]) -> str:
    t0 = m["median"]["e3nn"]
    cells = [f"{model} {config}", str(dtype).removeprefix("torch."), str(threads),
             f"{1e3 * t0:.1f}"]
    for v in VARIANTS[1:]:
        t = m["median"][v]
        cells.append(f"{1e3 * t:.1f} ({t0 / t:.2f}×)")
    cells.append(" / ".join(f"{m['dF'][v]:.0e}" for v in VARIANTS[1:]))
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["mace", "nequip"])
    parser.add_argument("--config", action="append")
    parser.add_argument("--atoms", type=int, default=24)
    parser.add_argument("--threads", type=int, action="append")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if args.model == "mace":
        import swap_mace as peer
        make = _mace_steps
    else:
        import swap_nequip as peer
        make = _nequip_steps
    print(f"torch {torch.__version__}, {args.atoms} atoms, median of {args.repeats} after "
          f"{args.warmup} warm-up steps")
    print("| model | dtype | threads | e3nn ms | einsum ms (ratio) | c ms (ratio) | max abs dF |")
    print("|---|---|---:|---:|---:|---:|---|")
    for config in args.config or list(peer.CONFIGS):
        for dtype in (torch.float32, torch.float64):
            steps = make(config, dtype, args.atoms)
            for threads in args.threads or [1, 2]:
                torch.set_num_threads(threads)
                m = measure(steps, args.warmup, args.repeats)
                print(row(args.model, config, dtype, threads, m), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

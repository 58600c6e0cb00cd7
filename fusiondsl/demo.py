"""The README's main job: compile every example and check each layer once.

For each diagram: its paths and weights, the compile time, and a one-line equivariance check
(random rotations and an inversion, float64) — or, for closed graphs, the exact value.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from fusiondsl.ir import Diagram
from fusiondsl.program import load
from fusiondsl.testing import equivariance_error


def _row(spec: Path, name: str, layer: torch.nn.Module, ms: float) -> str:
    d = layer.diagram
    if isinstance(d, Diagram):
        what = f"{layer.plan.paths.num_paths:4d} paths {layer.weight_numel:7d} weights"
    else:
        what = f"graph, {len(d.vertices)} vertices".ljust(26)
    if not layer.irreps_in:
        check = f"closed graph = {complex(layer()).real:+.12f}"
    else:
        err = equivariance_error(layer, trials=(False, True, False))
        check = f"equivariance error {err:.1e} {'ok' if err < 1e-10 else 'FAILED'}"
    return f"{spec.name:<20} {name:<18} {what}  compile {ms:6.1f} ms  {check}"


def run(directory: str | Path = "examples") -> int:
    """Compile and check every ``*.fd`` in a directory; returns 1 if any check fails."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    failures = 0
    try:
        specs = sorted(Path(directory).glob("*.fd"))
        print(f"fusiondsl demo: {len(specs)} specs in {directory}/ (float64)")
        for spec in specs:
            prog = load(spec)
            for name in prog.names:
                start = time.perf_counter()
                layer = prog.compile(name)
                row = _row(spec, name, layer, (time.perf_counter() - start) * 1e3)
                failures += "FAILED" in row
                print(row)
    finally:
        torch.set_default_dtype(old)
    print("all layers equivariant" if not failures else f"{failures} layer(s) FAILED")
    return 1 if failures else 0

"""The README's main job: compile every example and check each layer once.

For each diagram: its paths and weights, the compile time, and a one-line equivariance check
(random rotations and an inversion, float64) — or, for closed graphs, the exact value.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.program import load
from fusiondsl.nn.testing import equivariance_error


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


def _check_spec(spec: Path) -> int:
    """Print one row per layer of a spec (errors to stderr); how many files or layers failed."""
    try:
        prog = load(spec)
    except FusionError as err:  # a bad file is reported, and the demo goes on
        print(err.render(), file=sys.stderr)
        return 1
    except OSError as err:
        print(f"fusiondsl: error: {err}", file=sys.stderr)
        return 1
    if not prog.names:
        print(f"{spec}: error: no diagram in {spec}", file=sys.stderr)
        return 1
    failures = 0
    for name in prog.names:
        start = time.perf_counter()
        try:
            layer = prog.compile(name)
        except FusionError as err:
            print(err.render(), file=sys.stderr)
            failures += 1
            continue
        row = _row(spec, name, layer, (time.perf_counter() - start) * 1e3)
        failures += "FAILED" in row
        print(row)
    return failures


def run(directory: str | Path = "examples") -> int:
    """Compile and check every ``*.fd`` in a directory; returns 1 if any file or check fails.

    A file that does not check, or a layer that does not compile, is reported (with its
    ``file:line:col`` error) and the demo goes on with the rest.
    """
    folder = Path(directory)
    if not folder.is_dir():
        print(f"fusiondsl: error: no folder {str(folder)!r}", file=sys.stderr)
        return 1
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    failures = 0
    try:
        specs = sorted(folder.glob("*.fd"))
        print(f"fusiondsl demo: {len(specs)} specs in {directory}/ (float64)")
        for spec in specs:
            failures += _check_spec(spec)
    finally:
        torch.set_default_dtype(old)
    if not specs:
        print(f"fusiondsl: error: no .fd files in {str(folder)!r}", file=sys.stderr)
        return 1
    print("all layers equivariant" if not failures else f"{failures} file(s) or layer(s) FAILED")
    return 1 if failures else 0

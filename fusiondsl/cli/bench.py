"""``fusiondsl bench FILE``: medians of every pass for each tree diagram, e3nn beside it."""

from __future__ import annotations

import torch

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.program import Program
from fusiondsl.nn.timing import PASSES, e3nn_peer, inputs_for, make_pass, median_ms


def bench_program(prog: Program, batch: int, dtype_name: str, repeats: int,
                  strategy: str = "auto", backend: str = "auto") -> str:
    """A table: diagram, plan, pass, fusiondsl ms, e3nn ms and their ratio (when e3nn has it)."""
    dtype = getattr(torch, dtype_name)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lines = [f"backend {backend}, batch {batch}, {dtype_name}, {torch.get_num_threads()} "
             f"threads, median of {repeats}; ratio = e3nn / fusiondsl"]
    for d in prog.diagrams.values():
        if not isinstance(d, Diagram) or d.is_neighbourhood or d.group == "SU2":
            lines.append(f"{d.name}: skipped (graphs, neighbourhood and SU2 layers are timed "
                         "by the benchmarks/ scripts)")
            continue
        try:
            layer = prog.compile(d.name, backend=backend, strategy=strategy, batch=batch)
        except FusionError as err:  # this backend does not lower the diagram: time the others
            lines.append(f"{d.name}: skipped ({err.first.message})")
            continue
        layer = layer.to(dtype)
        xs = inputs_for(layer.irreps_in, batch, dtype, layer.external_weight_numel)
        peer = e3nn_peer(layer)
        for kind in PASSES:
            ours = median_ms(make_pass(layer, xs, kind), repeats)
            text = f"{d.name:<16} {layer.plan.strategy:<18} {kind:<17} {ours:9.2f} ms"
            if peer is not None:
                theirs = median_ms(make_pass(peer.to(dtype), xs, kind), repeats)
                text += f"   e3nn {theirs:9.2f} ms   ({theirs / ours:.2f}x)"
            lines.append(text)
    return "\n".join(lines)

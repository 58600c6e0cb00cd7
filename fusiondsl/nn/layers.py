"""Compiled layers: generated source executed into a ``torch.nn.Module`` with metadata."""

from __future__ import annotations

import linecache
import sys
import types
from typing import Any, Literal

import torch

from fusiondsl.backends.c import runtime as c_runtime
from fusiondsl.backends.c.lower import lower_c
from fusiondsl.backends.c.support import refusal
from fusiondsl.backends.c.support import require_support as require_c_support
from fusiondsl.backends.einsum.graph import lower_graph
from fusiondsl.backends.einsum.lower import lower_einsum
from fusiondsl.backends.names import safe_diagram
from fusiondsl.backends.triton.lower import load_module, lower_triton, require_support
from fusiondsl.core.irreps import Irreps
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.ir.paths import IrrepNormalization, PathNormalization
from fusiondsl.nn.arguments import checked_class
from fusiondsl.nn.autotune import autotune
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import DEFAULT_BATCH, Strategy, make_plan

Backend = Literal["einsum", "triton", "c", "auto"]
_counter = iter(range(1 << 62))


# The allowed values of every compile option with a closed set of values.
OPTION_VALUES: dict[str, tuple[Any, ...]] = {
    "backend": ("einsum", "triton", "c", "auto"),
    "strategy": ("auto", "autotune", "per-path", "grouped"),
    "irrep_normalization": ("component", "norm", "none"),
    "path_normalization": ("element", "path", "none"),
    "hoist": (True, False),
}


def check_options(**options: Any) -> None:
    """Refuse, in one line with the allowed values, a compile option that has no meaning.

    >>> check_options(strategy="fast")
    Traceback (most recent call last):
    ...
    ValueError: unknown strategy 'fast': use one of 'auto', 'autotune', 'per-path', 'grouped'
    """
    for key, value in options.items():
        allowed = OPTION_VALUES.get(key)
        if allowed is not None and not any(value is v or (type(value) is type(v) and value == v)
                                           for v in allowed):
            raise ValueError(f"unknown {key} {value!r}: use one of "
                             + ", ".join(repr(v) for v in allowed))
    batch = options.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    name = options.get("spec_name")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"spec_name must be a string, got {type(name).__name__}")


def choose_backend(d: AnyDiagram) -> tuple[str, str]:
    """What ``backend="auto"`` picks for a diagram on this machine, and why, in one line.

    The C backend where it lowers the diagram and a C compiler is found; einsum otherwise.
    (Triton needs CUDA tensors, which a layer only sees when called: ask for it by name.)
    """
    why_not = refusal(d)
    if why_not is not None:
        message = why_not.diagnostics[0].message.split(" (diagram")[0]
        return "einsum", f"einsum, because {message}"
    if not c_runtime.available():
        return "einsum", "einsum, because no C compiler (cc, gcc, clang or $CC) was found"
    return "c", "c, the fast CPU path (a C compiler was found)"


def exec_source(source: str, name: str) -> dict[str, Any]:
    """Run generated source under a fake filename that tracebacks and inspect can read."""
    number = next(_counter)
    filename = f"<fusiondsl:{name}:{number}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # A registered module, so that tools which look a function's module up (torch.compile's
    # tracer, pickle) find it.
    module = types.ModuleType(f"fusiondsl_generated_{name}_{number}")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module.__dict__


def generate(
    d: AnyDiagram,
    backend: Backend = "einsum",
    irrep_normalization: IrrepNormalization = "component",
    path_normalization: PathNormalization = "element",
    spec_name: str = "<string>",
    strategy: Strategy = "auto",
    batch: int = DEFAULT_BATCH,
    hoist: bool = True,
) -> tuple[str, Any]:
    """Source code of a diagram's layer, and the plan behind it (``None`` for graphs).

    Raises:
        TritonUnsupportedError: (a ``FusionError`` and ``NotImplementedError``) when the triton
            backend is asked for a construct it does not lower; ``CUnsupportedError`` likewise
            for the c backend.
    """
    d = safe_diagram(d)  # users' names can collide neither with each other nor with ours
    if backend == "triton":
        require_support(d)
    if backend == "c":
        require_c_support(d)
    if not isinstance(d, Diagram):
        return lower_graph(d, spec_name), None
    plan = make_plan(expand(d, irrep_normalization, path_normalization), strategy, batch, hoist)
    if backend == "triton":
        return lower_triton(plan, spec_name), plan
    if backend == "c":
        return lower_c(plan, spec_name), plan

    return lower_einsum(plan, spec_name), plan


def build(
    d: AnyDiagram,
    backend: Backend = "einsum",
    irrep_normalization: IrrepNormalization = "component",
    path_normalization: PathNormalization = "element",
    spec_name: str = "<string>",
    strategy: Strategy = "auto",
    batch: int = DEFAULT_BATCH,
    hoist: bool = True,
) -> torch.nn.Module:
    """Compile a checked diagram into a module.

    The module has ``irreps_in`` (one :class:`Irreps` per input leg), ``irreps_out``,
    ``weight_numel``, ``source`` (the generated code) and ``plan``. ``strategy`` forces a
    plan family (``per-path``, ``grouped``) instead of the cost model's choice (``auto``) at
    batch size ``batch``. ``hoist`` lets neighbour sums couple centre-only factors once per
    node after the sum (see :mod:`fusiondsl.plan.hoist`).
    """
    check_options(backend=backend, strategy=strategy, batch=batch, hoist=hoist,
                  irrep_normalization=irrep_normalization, path_normalization=path_normalization,
                  spec_name=spec_name)
    reason = f"{backend}, as asked"
    if backend == "auto":
        backend, reason = choose_backend(d)  # type: ignore[assignment]
    if strategy == "autotune" and isinstance(d, Diagram) and not d.is_neighbourhood:
        strategy, _ = autotune(d, batch, build, irrep_normalization=irrep_normalization,
                               path_normalization=path_normalization)  # type: ignore[assignment]
    elif strategy == "autotune":
        strategy = "auto"
    source, plan = generate(d, backend, irrep_normalization, path_normalization, spec_name,
                            strategy, batch, hoist)
    if backend == "triton":  # triton.jit reads kernel source from a real file
        namespace = load_module(source, d.name)
    else:
        namespace = exec_source(source, d.name)
    cls = next(v for k, v in namespace.items() if isinstance(v, type) and
               issubclass(v, torch.nn.Module) and not k.startswith("_"))

    layer = checked_class(cls)()
    layer.source = source
    layer.backend, layer.backend_reason = backend, reason
    layer.plan = plan
    layer.diagram = d
    if isinstance(d, Diagram):
        layer.irreps_in = [leg.irreps for leg in d.legs]
        layer.irreps_out = d.irreps_out
    else:
        layer.irreps_in = [Irreps.parse(f"{e.mul}x{e.ir}", d.group) for e in d.inputs]
        layer.irreps_out = (Irreps.parse(f"{d.outputs[0].mul}x{d.outputs[0].ir}", d.group)
                            if d.outputs else Irreps())
    return layer

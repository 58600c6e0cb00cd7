"""Backends by name: what each can lower, how it lowers a plan, how its source is loaded.

Each backend registers itself when its lowering module is imported (:func:`register`);
:mod:`fusiondsl.backends.available` imports all of them. The compiler asks the registry
(:func:`get`) instead of branching on backend names.
"""

from __future__ import annotations

import linecache
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.ir.diagram import AnyDiagram, GraphDiagram
from fusiondsl.plan.planner import Plan

_counter = iter(range(1 << 62))


@dataclass(frozen=True)
class Backend:
    """One executor of plans.

    Attributes:
        name: what ``backend=`` says (``einsum``, ``c``, ``triton``).
        refusal: the one-line error for a diagram it does not lower, or ``None``.
        lower: the generated module's source for a plan and a spec name.
        load: the generated module's namespace from its source and the diagram's name.
        lower_graph: the source for a graph diagram, for a backend that lowers graphs.
        available: whether it can run here at all (a compiler found, CUDA present, …).
    """

    name: str
    refusal: Callable[[AnyDiagram], FusionError | None]
    lower: Callable[[Plan, str], str]
    load: Callable[[str, str], dict[str, Any]]
    lower_graph: Callable[[GraphDiagram, str], str] | None = None
    available: Callable[[], bool] = lambda: True

    def require(self, d: AnyDiagram) -> None:
        """Raise the backend's refusal of ``d``, if it has one."""
        err = self.refusal(d)
        if err is not None:
            raise err


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Make a backend known by its name (a second registration of a name replaces the first)."""
    BACKENDS[backend.name] = backend
    return backend


def get(name: str) -> Backend:
    """The backend called ``name``.

    Raises:
        ValueError: for a name no backend registered.
    """
    if name not in BACKENDS:
        known = ", ".join(repr(n) for n in BACKENDS)
        raise ValueError(f"unknown backend {name!r}: use one of {known}")
    return BACKENDS[name]


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

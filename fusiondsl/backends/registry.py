"""Backends by name: what each can lower, how it lowers a plan, how its source is loaded.

Each backend registers itself when its lowering module is imported (:func:`register`);
:mod:`fusiondsl.backends.available` imports all of them. The compiler asks the registry
(:func:`get`) instead of branching on backend names.
"""

from __future__ import annotations

import contextlib
import linecache
import marshal
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fusiondsl.core import cachefile
from fusiondsl.core.cg import cache_dir
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
    """Run generated source under a fake filename that tracebacks and inspect can read.

    The filename names the source by its hash, so the same source always compiles to the
    same code, which is cached like a ``.pyc`` (:func:`_code`).
    """
    number = next(_counter)
    digest = cachefile.digest(source.encode())
    filename = f"<fusiondsl:{name}:{digest[:12]}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # A registered module, so that tools which look a function's module up (torch.compile's
    # tracer, pickle) find it.
    module = types.ModuleType(f"fusiondsl_generated_{name}_{number}")
    module.__file__ = filename
    sys.modules[module.__name__] = module
    exec(_code(source, filename, digest), module.__dict__)
    return module.__dict__


def _code(source: str, filename: str, digest: str) -> types.CodeType:
    """``compile(source)``, kept on disk per interpreter version.

    fusion4's einsum module takes 60 ms to compile and 0.2 ms to unmarshal.
    """
    name = cachefile.digest(f"{digest} {filename}".encode())[:32]
    path = cache_dir() / "code" / f"{name}.{sys.implementation.cache_tag}"
    data = cachefile.load(path)
    if data is not None:
        with contextlib.suppress(ValueError, EOFError, TypeError):
            code = marshal.loads(data)
            if isinstance(code, types.CodeType) and code.co_filename == filename:
                return code
        cachefile.reject(path, "not a code object of this source")
    code = compile(source, filename, "exec")
    cachefile.store(path, marshal.dumps(code))
    return code

"""The whole compiler in one function, stage by stage, stopping after any of them.

``run(text, until=STAGE)`` goes text → ``parse`` (syntax tree) → ``check`` (checked diagrams)
→ ``expand`` (paths) → ``plan`` (contraction plan) → ``lower`` (generated source) → ``load``
(the ``torch.nn.Module``), and returns every result it reached. It is what
:meth:`fusiondsl.Program.compile` does, written out so that a reader can follow one diagram
from text to kernel (docs/pipeline.md) and a tool can stop where it needs to.

>>> from fusiondsl.nn.pipeline import run
>>> s = run("diagram tp(x: 2x1o, y: 1o) -> z: 2x0e { z = fuse(x, y) weights uvw }", until="plan")
>>> s.paths.num_paths, s.plan.strategy, s.source is None
(1, 'per-path', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fusiondsl.backends import available as backends
from fusiondsl.backends.names import safe_diagram
from fusiondsl.core.diagnostics import FusionError
from fusiondsl.front import ast
from fusiondsl.front.parse import parse
from fusiondsl.front.validate import validate
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.ir.paths import Paths
from fusiondsl.nn.layers import (
    assemble,
    auto_c_source,
    c_build_failed,
    check_options,
    resolve,
    route_auto,
)
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import DEFAULT_BATCH, Plan, make_plan

STAGES = ("parse", "check", "expand", "plan", "lower", "load")


@dataclass
class Stages:
    """What each stage produced (``None``: not reached, or not made for this diagram kind)."""

    module: ast.Module | None = None
    diagrams: tuple[AnyDiagram, ...] | None = None
    diagram: AnyDiagram | None = None
    backend: str | None = None
    backend_reason: str | None = None
    paths: Paths | None = None
    plan: Plan | None = None
    source: str | None = None
    layer: torch.nn.Module | None = None


def run(text: str, name: str | None = None, *, until: str = "load", filename: str = "<string>",
        backend: str = "auto", **options: Any) -> Stages:
    """Compile diagram ``name`` of ``text`` (the only one if omitted) up to stage ``until``.

    ``options`` are :meth:`fusiondsl.Program.compile`'s: ``irrep_normalization``,
    ``path_normalization``, ``strategy``, ``batch``, ``hoist``, ``spec_name``.

    Raises:
        FusionError: for text that does not parse or check, as :func:`fusiondsl.loads`.
        ValueError: for an unknown stage, backend or option value.
    """
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}: use one of {', '.join(STAGES)}")
    stop = STAGES.index(until)
    s = Stages(module=parse(text, filename))
    if stop >= STAGES.index("check"):
        _check(s, text, filename, name)
    if stop >= STAGES.index("expand"):
        _compile(s, stop, backend, options)
    return s


def _check(s: Stages, text: str, filename: str, name: str | None) -> None:
    assert s.module is not None
    try:
        s.diagrams = validate(s.module)
    except FusionError as err:
        raise err.with_source(text, filename) from None
    named = {d.name: d for d in s.diagrams}
    if name is None and len(named) != 1:
        raise KeyError(f"this text has {len(named)} diagrams: name one of {', '.join(named)}")
    if name is not None and name not in named:
        raise KeyError(f"no diagram {name!r}; known: {', '.join(named)}")
    s.diagram = named[name] if name is not None else s.diagrams[0]


def _compile(s: Stages, stop: int, backend: str, options: dict[str, Any]) -> None:
    """The stages after the checks, as :func:`fusiondsl.nn.layers.build` runs them."""
    o = {"irrep_normalization": "component", "path_normalization": "element",
         "strategy": "auto", "batch": DEFAULT_BATCH, "hoist": True, "spec_name": "<string>",
         **options}
    unknown = sorted(set(o) - {"irrep_normalization", "path_normalization", "strategy",
                               "batch", "hoist", "spec_name"})
    if unknown:
        raise TypeError(f"unknown compile option(s) {', '.join(unknown)}")
    check_options(backend=backend, **o)
    assert s.diagram is not None
    s.backend, s.backend_reason, strategy = resolve(
        s.diagram, backend, o["strategy"], o["batch"], o["irrep_normalization"],
        o["path_normalization"])
    d = safe_diagram(s.diagram)  # users' names can collide neither with each other nor ours
    impl = backends.get(s.backend)
    impl.require(d)
    if isinstance(d, Diagram):
        s.paths = expand(d, o["irrep_normalization"], o["path_normalization"])
        if stop >= STAGES.index("plan"):
            s.plan = make_plan(s.paths, strategy, o["batch"], o["hoist"])
    if stop >= STAGES.index("lower"):
        source = None
        if backend == "auto" and s.backend == "c" and s.plan is not None:
            source, why = auto_c_source(s.plan, o["spec_name"])  # as compile decides
            if source is None:
                s.backend, s.backend_reason = "einsum", why
        s.source = source or _lower(s, d, o["spec_name"])
    if stop >= STAGES.index("load"):
        _load(s, d, backend, {**o, "strategy": strategy})


def _load(s: Stages, d: AnyDiagram, backend: str, o: dict[str, Any]) -> None:
    """The layer; under auto, a failed C build gives einsum with a warning, as compile does."""
    assert s.diagram is not None and s.source is not None and s.backend_reason is not None
    try:
        s.layer = assemble(s.diagram, s.source, s.plan, s.backend, s.backend_reason,
                           o["spec_name"])
    except (RuntimeError, OSError) as err:
        if backend != "auto" or s.backend != "c":
            raise
        s.backend, s.backend_reason = "einsum", c_build_failed(s.diagram, err)
        s.source = _lower(s, d, o["spec_name"])
        s.layer = assemble(s.diagram, s.source, s.plan, s.backend, s.backend_reason)
    if backend == "auto":
        route_auto(s.layer, s.diagram, o)
        s.backend_reason = s.layer.backend_reason


def _lower(s: Stages, d: AnyDiagram, spec_name: str) -> str:
    """The source of ``s.backend`` for the plan (a tree) or the diagram (a graph)."""
    impl = backends.get(s.backend)
    if s.plan is not None:
        return impl.lower(s.plan, spec_name)
    assert impl.lower_graph is not None  # a backend without one refuses graphs
    return impl.lower_graph(d, spec_name)  # type: ignore[arg-type]

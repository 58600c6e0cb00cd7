"""Compiled layers: generated source executed into a ``torch.nn.Module`` with metadata."""

from __future__ import annotations

import functools
import hashlib
import re
import warnings
from pathlib import Path as FilePath
from typing import Any, Literal

import torch

from fusiondsl.backends import available as backends
from fusiondsl.backends.c.kernels import DEEP_NESTS
from fusiondsl.backends.c.runtime import is_built, library_dir
from fusiondsl.backends.names import safe_diagram
from fusiondsl.core.fileio import write_atomic
from fusiondsl.core.irreps import Irreps
from fusiondsl.ir.diagram import AnyDiagram, Diagram
from fusiondsl.ir.paths import IrrepNormalization, PathNormalization, Paths
from fusiondsl.nn import layer_cache
from fusiondsl.nn.arguments import checked_class
from fusiondsl.nn.autotune import autotune
from fusiondsl.nn.devices import cuda_backend, route_cuda
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import DEFAULT_BATCH, Plan, Strategy, make_plan
from fusiondsl.plan.text import plan_text

Backend = Literal["einsum", "triton", "c", "auto"]


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

    The C backend where it lowers the diagram and a C compiler with OpenMP works; einsum
    otherwise. CUDA tensors, which a layer only sees when called, run on a twin
    (:mod:`fusiondsl.nn.devices`).
    """
    c = backends.get("c")
    why_not = c.refusal(d)
    if why_not is not None:
        message = why_not.diagnostics[0].message.split(" (diagram")[0]
        return "einsum", f"einsum, because {message}"
    if not c.available():
        return "einsum", ("einsum, because no C compiler with OpenMP works here (cc, gcc, "
                          "clang or $CC with -fopenmp)")
    return "c", "c, the fast CPU path (a C compiler with OpenMP works)"


def auto_choice(d: AnyDiagram) -> tuple[str, str]:
    """What ``compile()`` with its defaults gives on this CPU, and why (without loading it).

    :func:`choose_backend`, then for a tree diagram the size rule of a first compile
    (:func:`auto_c_source`): ``fusiondsl check -v`` prints this line.
    """
    backend, reason = choose_backend(d)
    if backend != "c" or not isinstance(d, Diagram):
        return backend, reason
    plan = make_plan(expand(safe_diagram(d)), "auto", DEFAULT_BATCH, True)
    source, why = auto_c_source(plan, "<string>")
    return ("c", reason) if source is not None else ("einsum", why or reason)


def generate(
    d: AnyDiagram,
    backend: Backend = "auto",
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
    if backend == "auto":
        backend = choose_backend(d)[0]  # type: ignore[assignment]
    d = safe_diagram(d)  # users' names can collide neither with each other nor with ours
    impl = backends.get(backend)
    impl.require(d)
    if not isinstance(d, Diagram):
        assert impl.lower_graph is not None  # a backend without one refuses graphs
        return impl.lower_graph(d, spec_name), None
    plan = make_plan(expand(d, irrep_normalization, path_normalization), strategy, batch, hoist)
    return impl.lower(plan, spec_name), plan


def build(
    d: AnyDiagram,
    backend: Backend = "auto",
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

    ``backend="auto"`` (the default) compiles C kernels where a C compiler with OpenMP works
    and einsum otherwise (:func:`choose_backend`), and runs CUDA tensors on Triton (or
    einsum) kernels compiled on their first call; ``layer.backend`` and
    ``layer.backend_reason`` say what was chosen and why. A C build that fails falls back to
    einsum with a one-line warning.
    """
    options = {"irrep_normalization": irrep_normalization, "spec_name": spec_name,
               "path_normalization": path_normalization, "strategy": strategy,
               "batch": batch, "hoist": hoist}
    check_options(backend=backend, **options)
    asked = backend
    backend, reason, options["strategy"] = resolve(d, backend, strategy, batch,
                                                   irrep_normalization, path_normalization)
    layer = _compile_load(d, backend, reason, options, fallback=asked == "auto")
    if asked == "auto":
        route_auto(layer, d, options)
    return layer


def route_auto(layer: torch.nn.Module, d: AnyDiagram, options: dict[str, Any]) -> None:
    """A ``backend="auto"`` layer on the CPU runs CUDA tensors on a twin (``nn.devices``)."""
    if layer.backend == "triton":
        return
    twin, why = cuda_backend(d)
    layer.backend_reason += f"; {why}"
    route_cuda(layer, lambda: build(d, twin, **options))  # type: ignore[arg-type]


def _compile_load(d: AnyDiagram, backend: str, reason: str, options: dict[str, Any],
                  fallback: bool) -> torch.nn.Module:
    """Generate and load; with ``fallback``, a failed C build gives einsum and a warning."""
    o = options
    try:
        if not isinstance(d, Diagram):  # a graph lowers directly: it has no paths to plan
            source, plan = generate(d, backend, o["irrep_normalization"],  # type: ignore[arg-type]
                                    o["path_normalization"], o["spec_name"], o["strategy"],
                                    o["batch"], o["hoist"])
            return assemble(d, source, plan, backend, reason)
        safe = safe_diagram(d)  # users' names can collide neither with each other nor with ours
        backends.get(backend).require(safe)  # refused before the (costlier) expansion
        k = layer_cache.key(safe, o)
        warm = _warm(d, safe, k, backend, reason, o, auto=fallback and backend == "c")
        if warm is not None:
            return warm
        paths = expand(safe, o["irrep_normalization"], o["path_normalization"])
        if fallback and backend == "c":
            return _auto_c(d, paths, reason, o, k)
        return build_from_paths(paths, backend, o["spec_name"], o["strategy"], o["batch"],
                                o["hoist"], reason, cache_key=k)
    except (RuntimeError, OSError) as err:
        if not fallback or backend != "c":
            raise
        return _compile_load(d, "einsum", c_build_failed(d, err), o, fallback=False)


def _warm(d: Diagram, safe: Diagram, k: str, backend: str, reason: str, o: dict[str, Any],
          auto: bool) -> torch.nn.Module | None:
    """The layer from a source an earlier process cached (:mod:`.layer_cache`), if any.

    For auto's C choice: a cached C source whose kernels are built (or quick to build) gives
    C; else an einsum source that auto gave under today's size limits gives einsum, for the
    same reason (no C layer of it was loaded since, or its source would be cached); anything
    else plans again.
    """
    lazy = layer_cache.LazyPlan.of(safe, o)
    entry = layer_cache.load(k, backend)
    if entry is not None and (not auto or c_too_slow_to_build(entry.source) is None):
        return assemble(d, entry.source, lazy, backend, reason)
    if not auto:
        return None
    entry = layer_cache.load(k, "einsum")
    if entry is None or entry.auto_reason is None or entry.auto_limits != _auto_limits():
        return None
    return assemble(d, entry.source, lazy, "einsum", entry.auto_reason)


def _auto_limits() -> tuple[int, int]:
    return AUTO_C_MAX_LINES, AUTO_C_MAX_PATHS


def c_build_failed(d: AnyDiagram, err: Exception) -> str:
    """Warn (one line) that auto's C build failed; the reason einsum is used instead."""
    why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    warnings.warn(f"backend='auto': building the C kernels of {d.name!r} failed ({why}); "
                  "using einsum", RuntimeWarning, stacklevel=4)
    return f"einsum, because building the C kernels failed: {why}"


# backend="auto" builds C kernels on the first compile only when that takes seconds, not
# minutes: C source up to this many lines, where a loop nest over all three channel letters
# u, v and w (the C header declares how many: "Build cost: N loop nests over u, v and w")
# counts AUTO_C_NEST_LINES lines. Measured on the project's 2-core CPU with gcc 12 and the
# runtime's flags (PEEL included), `cc -O3` of one precision: single_path (205 lines) 0.2 s,
# nequip (1,023) 1.3 s, fctp (1,049) 1.3 s, product_basis (1,383) 1.5 s, conv (1,480) 3.1 s;
# so3 (1,403 lines with 45 such nests: 1,808 counted) 3.8 s, so about 18 ms (9 lines at
# conv's rate) a nest. so3's cold compile with backend="c" is 4.7 s, too close to the 5 s
# target for a default. Larger layers get einsum until their C kernels are built once with
# backend="c"; from then on (the build is cached) auto gives C.
AUTO_C_MAX_LINES = 1600
AUTO_C_NEST_LINES = 9


# Above this many paths a layer's C source is far over AUTO_C_MAX_LINES (the examples have
# 87-139 lines per path), so auto does not lower it (cofd: 65 ms, fusion4: 860 ms of a warm
# compile) unless a C build of the same plan was made before (a marker, _built_marker).
AUTO_C_MAX_PATHS = 40


def _auto_c(d: Diagram, paths: Paths, reason: str, o: dict[str, Any],
            cache_key: str | None = None) -> torch.nn.Module:
    """The C layer, unless building it first would take long; then einsum, saying why."""
    plan = make_plan(paths, o["strategy"], o["batch"], o["hoist"])
    source, why = auto_c_source(plan, o["spec_name"])
    backend = "c"
    if source is None:
        assert why is not None
        backend, source, reason = "einsum", backends.get("einsum").lower(plan, o["spec_name"]), why
    layer = assemble(d, source, plan, backend, reason, o["spec_name"])
    if cache_key is not None:
        layer_cache.store(cache_key, backend, source, why, _auto_limits() if why else ())
    return layer


def auto_c_source(plan: Plan, spec_name: str) -> tuple[str | None, str | None]:
    """``(C module source, None)`` where auto uses C for this plan, else ``(None, why)``."""
    n = plan.paths.num_paths
    if n > AUTO_C_MAX_PATHS and not _built_marker(plan, spec_name).exists():
        return None, _not_built_yet(f"{n} paths")
    source = backends.get("c").lower(plan, spec_name)
    why = c_too_slow_to_build(source)
    return (source, None) if why is None else (None, why)


def c_too_slow_to_build(module_source: str) -> str | None:
    """Why auto should not build this C layer's kernels now (``None``: build or load them)."""
    c_source = module_source.split('C_SOURCE = r"""', 1)[-1].split('"""', 1)[0]
    lines = c_source.count("\n")
    declared = re.search(rf"Build cost: (\d+) {DEEP_NESTS}", c_source)  # the C header's count
    nests = int(declared.group(1)) if declared else 0
    if lines + AUTO_C_NEST_LINES * nests <= AUTO_C_MAX_LINES or is_built(c_source):
        return None
    return _not_built_yet(f"{lines:,} lines" + (f", {nests} loop nests over u, v and w"
                                                  if nests else ""))


def _not_built_yet(size: str) -> str:
    """Auto's reason for einsum when a layer's C kernels (``size``) would take long to build."""
    return (f"einsum, because its C kernels ({size}) are not built yet and would take a while; "
            "compile once with backend='c' to build and cache them, and auto gives c")


def _built_marker(plan: Plan, spec_name: str) -> FilePath:
    """The file saying that a C layer of this plan was built here (``c/auto-<hash>.built``).

    It only tells auto to lower the C source and look: whether its libraries are built is
    then checked on that source (:func:`c_too_slow_to_build`), so a stale marker costs one
    lowering, never a wrong layer.
    """
    key = hashlib.sha256(f"{spec_name}\n{plan_text(plan)}".encode()).hexdigest()[:24]
    return library_dir() / f"auto-{key}.built"


def _mark_c_built(plan: Plan, spec_name: str) -> None:
    """After a C layer of ``plan`` loaded: let auto look for its build (large plans only)."""
    if plan.paths.num_paths <= AUTO_C_MAX_PATHS:
        return
    try:
        write_atomic(_built_marker(plan, spec_name), "")
    except OSError:
        pass  # a read-only cache: auto keeps giving einsum for this layer


def build_from_paths(paths: Paths, backend: str, spec_name: str = "<string>",
                     strategy: Strategy = "auto", batch: int = DEFAULT_BATCH, hoist: bool = True,
                     reason: str | None = None, cache_key: str | None = None) -> torch.nn.Module:
    """Plan, lower and load expanded paths: the backend dispatch of :func:`build`.

    For :func:`build` and for callers that bring their own paths (``from_e3nn`` carries an e3nn
    layer's coefficients as they are). ``backend`` is a registered name (``auto`` is resolved
    before). With ``reason``, the layer is :func:`build`'s (calls checked, ``backend`` and
    ``backend_reason`` set, by :func:`assemble`); without, it is the bare generated class, as
    a composite calls its parts.

    Raises:
        FusionError: (``CUnsupportedError`` / ``TritonUnsupportedError``) when the backend
            does not lower the diagram.
    """
    d, impl = paths.diagram, backends.get(backend)
    impl.require(d)
    plan = make_plan(paths, strategy, batch, hoist)
    source = impl.lower(plan, spec_name)
    if reason is not None:
        layer = assemble(d, source, plan, backend, reason, spec_name)
        if cache_key is not None:
            layer_cache.store(cache_key, backend, source)
        return layer
    namespace = impl.load(source, d.name)
    cls = next(v for k, v in namespace.items() if isinstance(v, type)
               and issubclass(v, torch.nn.Module) and not k.startswith("_"))
    layer = cls()
    layer.source, layer.plan, layer.diagram = source, plan, d
    return layer


def resolve(d: AnyDiagram, backend: str, strategy: str, batch: int,
            irrep_normalization: IrrepNormalization = "component",
            path_normalization: PathNormalization = "element") -> tuple[str, str, Strategy]:
    """The backend (and the one-line reason for it) and the strategy a compile will use.

    ``backend="auto"`` becomes what :func:`choose_backend` picks; ``strategy="autotune"``
    becomes the strategy measured fastest here (tree diagrams without neighbour sums).
    """
    reason = f"{backend}, as asked"
    if backend == "auto":
        backend, reason = choose_backend(d)
    if strategy == "autotune" and isinstance(d, Diagram) and not d.is_neighbourhood:
        strategy, _ = autotune(d, batch, build, irrep_normalization=irrep_normalization,
                               path_normalization=path_normalization)
    elif strategy == "autotune":
        strategy = "auto"
    return backend, reason, strategy  # type: ignore[return-value]


def assemble(d: AnyDiagram, source: str, plan: Any, backend: str, reason: str,
             spec_name: str | None = None) -> torch.nn.Module:
    """Load generated source with its backend and make the layer, its calls checked.

    A C layer loaded with its ``spec_name`` leaves the marker auto looks for
    (:func:`auto_c_source`).
    """
    namespace = backends.get(backend).load(source, d.name)
    if backend == "c" and isinstance(plan, Plan) and spec_name is not None:
        _mark_c_built(plan, spec_name)
    cls = next(v for k, v in namespace.items() if isinstance(v, type) and
               issubclass(v, torch.nn.Module) and not k.startswith("_"))
    checked = checked_class(cls)
    if isinstance(plan, layer_cache.LazyPlan):  # a cached source: plan again only if asked
        lazy = functools.cached_property(lambda self: self._remake_plan())
        lazy.__set_name__(checked, "plan")
        checked.plan = lazy  # type: ignore[attr-defined]
    layer = checked()
    layer.source = source
    layer.backend, layer.backend_reason = backend, reason
    if isinstance(plan, layer_cache.LazyPlan):
        layer._remake_plan = plan
    else:
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

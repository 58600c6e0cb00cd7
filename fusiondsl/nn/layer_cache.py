"""Warm compiles: a layer's generated source, cached under a hash of all it is made from.

Before it loads anything, a compile expands, plans and lowers its diagram; in a fresh process
that is most of a warm compile (fusion4: ~300 ms of opt_einsum orders, cost counts and code
generation; fctp's C source: ~25 ms). The source depends only on the checked diagram, the
compile options, the backend and fusiondsl's own code (every module, by content) and the
versions of what plans it, so :func:`key` hashes exactly those and a later process loads the
source it finds there (``layers/<key>.<backend>.json`` in :func:`fusiondsl.core.cg.cache_dir`,
checked by :mod:`fusiondsl.core.cachefile` like every cached file). The plan is made again only
when ``layer.plan`` is read (:class:`LazyPlan`).

Only einsum and C sources are kept: Triton's lowering reads the environment
(``TRITON_INTERPRET``), and its layers compile on their first CUDA call anyway.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusiondsl.core import cachefile
from fusiondsl.core.cg import cache_dir
from fusiondsl.ir.diagram import Diagram
from fusiondsl.passes.expand import expand
from fusiondsl.plan.planner import Plan, make_plan

CACHED_BACKENDS = ("einsum", "c")
# The compile options the generated source depends on (all of build's but the backend).
OPTIONS = ("irrep_normalization", "path_normalization", "strategy", "batch", "hoist", "spec_name")
PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Entry:
    """A cached layer source, and why auto gave it instead of C (with the size limits then)."""

    source: str
    auto_reason: str | None = None
    auto_limits: tuple[int, ...] = ()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A hash of every fusiondsl module and of the planner's libraries (once per process, 3 ms).

    By content, not version: an edit to the planner or a lowering never reuses stale source.
    """
    h = hashlib.sha256()
    for name in ("opt_einsum", "sympy", "torch"):
        try:
            h.update(f"{name}={importlib.metadata.version(name)}\n".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{name}=?\n".encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(f"{path.relative_to(PACKAGE)}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def key(d: Diagram, options: dict[str, Any]) -> str:
    """The hash naming a layer's cached sources: code, options and the checked diagram.

    ``d`` is the diagram as lowered (after :func:`fusiondsl.backends.names.safe_diagram`); its
    ``repr`` spells every field that reaches the IR (spans, which only messages use, are left
    out by design).
    """
    opts = json.dumps({k: options[k] for k in OPTIONS}, sort_keys=True)
    text = f"{code_digest()}\n{opts}\n{d!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _path(k: str, backend: str) -> Path:
    return cache_dir() / "layers" / f"{k}.{backend}.json"


def load(k: str, backend: str) -> Entry | None:
    """The cached source of layer ``k`` for ``backend``, if there is a sound one."""
    if backend not in CACHED_BACKENDS:
        return None
    data = cachefile.load(_path(k, backend))
    if data is None:
        return None
    try:
        entry = json.loads(data)
        why, limits = entry.get("auto_reason"), tuple(int(x) for x in entry["auto_limits"])
        return Entry(str(entry["source"]), None if why is None else str(why), limits)
    except (ValueError, KeyError, TypeError, AttributeError):
        cachefile.reject(_path(k, backend), "not a layer entry")
        return None


def store(k: str, backend: str, source: str, auto_reason: str | None = None,
          auto_limits: tuple[int, ...] = ()) -> None:
    """Keep a loaded layer's source for the next process (a read-only cache keeps nothing).

    ``auto_reason``: why ``backend="auto"`` gave this einsum layer rather than C, under the
    size limits ``auto_limits``; a later auto compile repeats it only under the same limits.
    """
    if backend in CACHED_BACKENDS:
        entry = {"source": source, "auto_reason": auto_reason, "auto_limits": list(auto_limits)}
        cachefile.store(_path(k, backend), json.dumps(entry).encode())


@dataclass(frozen=True)
class LazyPlan:
    """How to make a cached layer's plan again, when ``layer.plan`` is first read."""

    diagram: Diagram
    options: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, d: Diagram, options: dict[str, Any]) -> LazyPlan:
        """The recipe for ``d`` compiled with ``options`` (build's, as for :func:`key`)."""
        return cls(d, tuple((k, options[k]) for k in OPTIONS))

    def __call__(self) -> Plan:
        """Expand and plan, as the first compile did."""
        o = dict(self.options)
        paths = expand(self.diagram, o["irrep_normalization"], o["path_normalization"])
        return make_plan(paths, o["strategy"], o["batch"], o["hoist"])

"""Measured autotuning: time each candidate plan on this device, keep the fastest, cache it.

``program.compile(name, strategy="autotune")`` builds the layer under every strategy the
planner offers for the diagram, times forward+backward on random inputs at the batch bucket
(the next power of two), and remembers the winner in ``<cache dir>/autotune.json`` keyed by
diagram, device, dtype and batch bucket, so the second compile is free.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fusiondsl.core import cachefile
from fusiondsl.core.cg import cache_dir
from fusiondsl.ir.diagram import Diagram
from fusiondsl.nn.timing import inputs_for, make_pass, median_ms

CANDIDATES = ("per-path", "grouped")


def bucket(batch: int) -> int:
    """The power of two at or above ``batch``."""
    return 1 << max(0, (batch - 1).bit_length())


def _key(d: Diagram, dtype: torch.dtype, batch: int, options: dict[str, Any]) -> str:
    text = d.to_text() + repr(sorted(options.items()))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return f"{d.name}:{digest}:{device}:{str(dtype).split('.')[-1]}:{bucket(batch)}"


def _store() -> Path:
    return cache_dir() / "autotune.json"


def _load() -> dict[str, Any]:
    """The table of past winners, if its file matches the hash stored beside it."""
    data = cachefile.load(_store())
    try:
        table = json.loads(data) if data is not None else {}
    except ValueError:
        table = None
    if not isinstance(table, dict):
        cachefile.reject(_store(), "not a JSON table")
        return {}
    return table


def _save(table: dict[str, Any]) -> None:
    """Store the table and its hash (a read-only cache only costs a re-measurement)."""
    cachefile.store(_store(), json.dumps(table, indent=1, sort_keys=True).encode())


def autotune(d: Diagram, batch: int, build: Callable[..., Any],
             dtype: torch.dtype = torch.float32, **options: Any) -> tuple[str, dict[str, float]]:
    """The fastest strategy for a diagram here, and the timings (ms) it was chosen from.

    ``build(d, strategy=…, batch=…, **options)`` makes each candidate layer
    (:func:`fusiondsl.nn.layers.build`, which calls this for ``strategy="autotune"``).
    """
    key = _key(d, dtype, batch, options)
    table = _load()
    if key in table:
        return table[key]["strategy"], table[key]["ms"]
    times: dict[str, float] = {}
    n = bucket(batch)
    for strategy in CANDIDATES:
        layer = build(d, strategy=strategy, batch=n, **options).to(dtype)
        if layer.plan.strategy != strategy and strategy != "per-path":
            continue  # not applicable to this diagram
        xs = inputs_for(layer.irreps_in, n, dtype, layer.external_weight_numel)
        times[strategy] = median_ms(make_pass(layer, xs, "forward+backward"), repeats=3)
    best = min(times, key=times.__getitem__)
    table[key] = {"strategy": best, "ms": times}
    _save(table)
    return best, times

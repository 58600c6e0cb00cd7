"""Torch steps of neighbourhood blocks shared by the generated Triton and C layers.

Both backends run a block's couplings in their own kernels, with edges as rows, and the graph
steps between them in torch (differentiable to any order): the gates and the sums over
neighbours here, the gathers (``index_select``), ``cat`` and ``linear`` inline in the
generated ``forward`` (:mod:`fusiondsl.backends.forward`, which both backends use).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_COLUMNS: dict[tuple, tuple[torch.Tensor | None, torch.Tensor]] = {}


def gate_columns(layout: Sequence[tuple[int, int]], gates: int) -> tuple[list[int], list[int]]:
    """Per column of the gated result, the column of ``x`` and the channel of ``g`` it takes.

    An entry has ``max(mul, gates)`` channels after the gate: a 1-channel entry is broadcast to
    the gate's channels, a 1-channel gate scales every channel.
    """
    x_cols, g_cols, start = [], [], 0
    for mul, dim in layout:
        for c in range(max(mul, gates)):
            x_cols += [start + (c if mul > 1 else 0) * dim + m for m in range(dim)]
            g_cols += [c if gates > 1 else 0] * dim
        start += mul * dim
    return x_cols, g_cols


def gate(x: torch.Tensor, g: torch.Tensor, layout: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``x * g``: channel ``u`` of every entry of ``x`` times ``g[:, u]``, per row.

    One column gather of ``g`` (and of ``x`` where an entry is broadcast) and one multiply,
    so that the backward is two ops, not one full-width zero tensor per entry.

    Args:
        x: ``[Z, dim]`` in e3nn's mul_ir layout.
        g: ``[Z, mul]`` invariant scalars (a gate of one channel scales every channel).
        layout: per entry of ``x``, ``(mul, 2l + 1)``; a 1-channel entry takes ``g``'s channels.
    """
    key = (tuple(layout), g.shape[1], x.device)
    if key not in _COLUMNS:
        x_cols, g_cols = gate_columns(layout, g.shape[1])
        same = x_cols == list(range(x.shape[1]))
        _COLUMNS[key] = (None if same else torch.tensor(x_cols, device=x.device),
                         torch.tensor(g_cols, device=x.device))
    x_index, g_index = _COLUMNS[key]
    if x_index is not None:
        x = x.index_select(1, x_index)
    return x * g.index_select(1, g_index)


def scatter_sum(x: torch.Tensor, receivers: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Σ_j: each edge's row added into the row of its receiver (``index_add``, any order)."""
    return x.new_zeros((num_nodes, x.shape[1])).index_add(0, receivers, x)

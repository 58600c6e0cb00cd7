"""Limits that keep checking and compiling bounded, whatever the text asks for.

The checker counts what a diagram would build before it builds it (paths by dynamic
programming over labels, weights from the counted paths, multiplicities as parsed) and
refuses, with the count, the limit and how to raise it, a diagram that exceeds one. Each limit
is read from an environment variable at check time, so a user who means it can raise it:

==========================  =============  ==================================================
variable                    default        what it bounds
==========================  =============  ==================================================
``FUSIONDSL_MAX_MUL``       1,000,000      the multiplicity of one irreps entry
``FUSIONDSL_MAX_PATHS``     20,000         the paths of one ``fuse`` (and an intermediate's
                                           entries, one per path)
``FUSIONDSL_MAX_WEIGHTS``   100,000,000    the weights of one diagram (400 MB in float32)
``FUSIONDSL_MAX_L``         16             the largest label a coupling may produce (exact
                                           coefficients grow as (2l+1)^3)
==========================  =============  ==================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fusiondsl.core.irreps import Irrep, Irreps

DEFAULTS = {"MAX_MUL": 1_000_000, "MAX_PATHS": 20_000, "MAX_WEIGHTS": 100_000_000,
            "MAX_L": 16}


def limit(name: str) -> int:
    """The limit ``name`` (a key of :data:`DEFAULTS`), from ``FUSIONDSL_<name>`` if set."""
    text = os.environ.get(f"FUSIONDSL_{name}", "")
    try:
        return int(text) if text.strip() else DEFAULTS[name]
    except ValueError:
        return DEFAULTS[name]


def advice(name: str) -> str:
    """How to raise a limit."""
    return f"set FUSIONDSL_{name} to raise the limit of {limit(name):,}"


def chain_size(operands: Sequence[Irreps], keep: Irreps | None,
               layout: Irreps | None) -> tuple[int, int]:
    """How many paths a left-to-right chain over ``operands`` has, and its largest label.

    Counted by dynamic programming over labels, without listing the paths: the work is
    polynomial in the text even when the paths are exponentially many. The largest label is
    returned as twice its spin.

    >>> from fusiondsl.core.irreps import Irreps
    >>> x = Irreps.parse("0e + 1o")
    >>> chain_size([x, x], None, None)  # 0e⊗0e, 0e⊗1o, 1o⊗0e, 1o⊗1o → 0e, 1e, 2e
    (6, 4)
    """
    counts: dict[Irrep, int] = {}
    for entry in operands[0]:
        counts[entry.ir] = counts.get(entry.ir, 0) + 1
    largest = max((ir.j2 for ir in counts), default=0)
    for operand in operands[1:]:
        largest = max([largest, *(ir.j2 for ir in counts)])  # an internal label
        new: dict[Irrep, int] = {}
        for a, n in counts.items():
            for entry in operand:
                for c in a * entry.ir:
                    new[c] = new.get(c, 0) + n
        counts = new
    total = 0
    for ir, n in counts.items():
        if keep is not None and keep.count(ir) == 0:
            continue
        entries = sum(1 for e in layout if e.ir == ir) if layout is not None else 1
        if entries:
            total += n * entries
            largest = max(largest, ir.j2)
    return total, largest

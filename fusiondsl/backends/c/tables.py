"""Coupling tables as C data: each distinct coefficient tensor once per C file.

A kernel loops over a table's nonzeros (``for (t = 0; t < nnz; ++t)``) instead of unrolling
them, so the source grows with the number of paths, not of nonzeros. An entry holds the three
component indices in the coupling's own axis order and the value as ``K(...)`` (rounded once
to the build's precision); a kernel that contracts toward another axis (a gradient) reads the
same entries with the index fields permuted, chosen when the code is generated.
"""

from __future__ import annotations

import numpy as np

from fusiondsl.backends.emit import Emitter

# The index fields of an entry, in the coupling's axis order (a ⊗ b → c).
FIELDS = ("a", "b", "c")
# Entries per line of a table's initialiser.
PER_LINE = 4
TYPEDEF = ("/* One nonzero of a coupling tensor: component indices (axis order a ⊗ b → c) and "
           "value. */",
           "typedef struct { unsigned char a, b, c; real v; } cg_entry;")


def stored(values: np.ndarray) -> np.ndarray:
    """Which coefficients a table holds (the others are zero to 1e-15)."""
    return np.abs(values) > 1e-15


class CTables:
    """The coupling tables of one C file, each emitted once, named after its dimensions."""

    def __init__(self) -> None:
        self.names: dict[bytes, str] = {}
        self.blocks: list[list[str]] = []

    def table(self, values: np.ndarray, doc: str) -> tuple[str, int]:
        """The name and nonzero count of the table of ``values`` (registered on first use)."""
        key = values.tobytes() + str(values.shape).encode()
        nonzero = [(idx, float(values[idx])) for idx in zip(*np.nonzero(stored(values)))]
        if key not in self.names:
            base = "cg_" + "_".join(str((d - 1) // 2) if d % 2 else f"{d}d" for d in values.shape)
            name, n = base, 1
            while name in self.names.values():
                n += 1
                name = f"{base}_{n}"
            self.names[key] = name
            self.blocks.append(self.render(name, nonzero, doc))
        return self.names[key], len(nonzero)

    @staticmethod
    def render(name: str, nonzero: list[tuple[tuple[int, ...], float]], doc: str) -> list[str]:
        """``static const cg_entry name[n] = { … };``, several entries per line."""
        em = Emitter()
        em.line(f"/* {doc}: {len(nonzero)} nonzeros */")
        em.line(f"static const cg_entry {name}[{max(len(nonzero), 1)}] = {{")
        texts = [f"{{{i}, {j}, {k}, K({v!r})}}," for (i, j, k), v in nonzero] or ["{0, 0, 0, 0},"]
        with em.indent():
            for s in range(0, len(texts), PER_LINE):
                em.line(" ".join(texts[s:s + PER_LINE]))
        em.line("};")
        return em.lines

    def source_lines(self) -> list[str]:
        """The typedef and every table, for the top of the C file."""
        if not self.blocks:
            return []
        lines = ["", *TYPEDEF]
        for block in self.blocks:
            lines += ["", *block]
        return lines

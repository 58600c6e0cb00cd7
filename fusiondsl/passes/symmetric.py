"""Symmetric powers and zero paths: keep only the linearly independent couplings of a fuse.

When operands repeat (``fuse(A, A, A)``, MACE's product basis), each channel sees the same
vector ``x`` in several slots, so a path computes the polynomial ``f_p(x) = T_p(x, x, …, x)``,
which equals the evaluation of its slot-symmetrised tensor. Distinct paths can then give
linearly dependent polynomials (``1o ⊗ 1o → 1e`` on one entry even gives zero). This module
keeps, in path order, exactly the paths whose polynomials raise the rank; the kept paths span
the same functions, so a weighted layer loses nothing but dependent weights.

The rank test evaluates every polynomial at random points (float64, fixed seed) and runs a
greedy Gram–Schmidt with a relative tolerance. Paths whose entries form different multisets,
or that end in different output entries, are independent by construction (different
multi-degree), so the test runs per such group and stays small.

>>> from fusiondsl.core.irreps import Irreps
>>> from fusiondsl.core.coupling import expand_fuse
>>> a = Irreps.parse("1o + 2e")
>>> local, _ = expand_fuse([a, a], "uuu", None, Irreps.parse("2o"))  # 1o ⊗ 2e and 2e ⊗ 1o
>>> [[str(ir) for ir in p.irs] for p in prune_paths(local, [a, a], [0, 0], "O3", "uuu")]
[['1o', '2e']]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fusiondsl.core import cg
from fusiondsl.core.irreps import Group, Irrep, Irreps

if TYPE_CHECKING:
    from fusiondsl.core.coupling import LocalPath
    from fusiondsl.ir.diagram import Diagram, FuseNode

SYMMETRIC_MODES = ("uuu", "path", "uuw")
"""Modes in which repeated operands share one channel index: dependent paths may go."""

ZERO_ONLY_MODES = ("none",)
"""Modes without weights: dropping a dependent path would change the sum; drop only zeros."""

TOLERANCE = 1e-9


def coupling(group: Group, a: Irrep, b: Irrep, c: Irrep) -> np.ndarray:
    """A real coupling tensor ``a ⊗ b → c`` (any normalisation: only ranks are used here)."""
    if group == "SU2":
        return np.real(cg.su2_cg(a.j2, b.j2, c.j2))
    return cg.real_w3j(a.l, b.l, c.l)


def evaluate_chain(
    group: Group, blocks: Sequence[np.ndarray], irs: Sequence[Irrep], labels: Sequence[Irrep]
) -> np.ndarray:
    """Left-to-right chain ``((x0 ⊗ x1 → k1) ⊗ x2 → k2) …`` on ``[s, dim]``; last label: out."""
    t = blocks[0]
    left = irs[0]
    for x, ir, k in zip(blocks[1:], irs[1:], labels):
        t = np.einsum("sa,sb,abc->sc", t, x, coupling(group, left, ir, k))
        left = k
    return t


def slot_classes(args: Sequence[object]) -> list[int]:
    """For each slot, the first slot with an equal operand (equal operands share a vector).

    >>> slot_classes(["A", "B", "A"])
    [0, 1, 0]
    """
    return [list(args).index(a) for a in args]


def _group_key(p: LocalPath, classes: Sequence[int]) -> tuple:
    per_class = {c: sorted(p.inputs[s] for s in range(len(classes)) if classes[s] == c)
                 for c in set(classes)}
    return (p.out_entry, p.out, tuple((c, tuple(v)) for c, v in sorted(per_class.items())))


def _samples(
    group: Group, operands: Sequence[Irreps], classes: Sequence[int], num: int, seed: int
) -> dict[tuple[int, int], np.ndarray]:
    """Random per-channel vectors: one block ``[num, dim]`` per (slot class, entry)."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in sorted(set(classes)):
        for i, entry in enumerate(operands[c]):
            out[c, i] = rng.standard_normal((num, entry.ir.dim))
    return out


def _values(
    group: Group, paths: Sequence[LocalPath], operands: Sequence[Irreps],
    classes: Sequence[int],
) -> np.ndarray:
    """Each path's polynomial at random points, flattened: ``[num_paths, points * dim]``."""
    x = _samples(group, operands, classes, len(paths) + 4, seed=len(paths))
    rows = []
    for p in paths:
        blocks = [x[classes[s], i] for s, i in enumerate(p.inputs)]
        rows.append(evaluate_chain(group, blocks, p.irs, (*p.labels, p.out)).ravel())
    return np.array(rows)


def independent(rows: np.ndarray, rank_only: bool = True) -> list[int]:
    """Indices of the rows that raise the rank, greedily in order.

    With ``rank_only=False``: of every row that is not identically zero. Rows are values of
    polynomials at standard normal points, of order one, so zero is tested absolutely.

    >>> independent(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0], [1.0, 1.0]]))
    [0, 3]
    """
    scale = max(float(np.abs(rows).max(initial=0.0)), 1.0)
    basis: list[np.ndarray] = []
    kept = []
    for i, row in enumerate(rows):
        norm = np.linalg.norm(row)
        if norm <= TOLERANCE * scale * np.sqrt(row.size):
            continue
        if not rank_only:
            kept.append(i)
            continue
        r = row / norm
        for _ in range(2):  # twice is enough (Kahan–Parlett)
            for q in basis:
                r = r - (q @ r) * q
        if np.linalg.norm(r) > 1e-7:
            basis.append(r / np.linalg.norm(r))
            kept.append(i)
    return kept


def prune_paths(
    paths: Sequence[LocalPath],
    operands: Sequence[Irreps],
    args: Sequence[object],
    group: Group,
    mode: str,
) -> list[LocalPath]:
    """Keep the linearly independent paths of a fuse with repeated operands, in path order.

    Args:
        paths: the node's paths from :func:`fusiondsl.core.coupling.expand_fuse`.
        operands: irreps of each operand.
        args: the operands themselves (equal ones are the same vector in every channel).
        group: the diagram's group.
        mode: the weight mode; ``none`` drops only identically zero paths, the modes of
            :data:`SYMMETRIC_MODES` every dependent one; other modes keep everything.

    Returns:
        The kept paths (the input list when no operand repeats). An output entry that no
        independent path reaches keeps its first path, which is identically zero, so that
        every declared entry is still written.
    """
    classes = slot_classes(args)
    if classes == list(range(len(args))) or mode not in SYMMETRIC_MODES + ZERO_ONLY_MODES:
        return list(paths)
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(_group_key(p, classes), []).append(i)
    keep: set[int] = set()
    for members in groups.values():
        rows = _values(group, [paths[i] for i in members], operands, classes)
        keep.update(members[k] for k in independent(rows, mode in SYMMETRIC_MODES))
    for entry in {p.out_entry for p in paths} - {paths[i].out_entry for i in keep}:
        # Lowerings expect every declared entry to have a path: keep one (identically zero).
        keep.add(next(i for i, p in enumerate(paths) if p.out_entry == entry))
    return [p for i, p in enumerate(paths) if i in keep]


def prune_node(d: Diagram, node: FuseNode, paths: Sequence[LocalPath]) -> list[LocalPath]:
    """:func:`prune_paths` for one fuse node of a diagram (its operands read from ``d``)."""
    operands = [d.operand_irreps(a) for a in node.args]
    return prune_paths(paths, operands, node.args, d.group, node.mode)

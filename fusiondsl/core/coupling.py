"""The coupling rules of one fuse step and its coupling tensors: what every stage agrees on.

*Rules.* A path of a ``fuse`` node picks one entry of every operand, a label for every
internal edge of its (left-to-right) binary coupling chain, and an output entry
(:func:`expand_fuse`). Channel (multiplicity) rules come from the weight mode, one rule per
mode in :data:`MODE_RULES`, as in e3nn.

*Tensors.* The coupling tensor of one step ``a ⊗ b → c`` by name (:func:`fuse_coupling`, e3nn's
wigner_3j in O3/SO3), its number of nonzeros (:func:`nnz`), and its rendering as a source
literal: generated modules embed their coefficients as nonzero lists so that they need only
torch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from fusiondsl.core import cg
from fusiondsl.core.irreps import Group, Irrep, Irreps, MulIr

BINARY_MODES = ("uvw", "uvu", "uvv", "uuw", "uvuv")
CHANNELWISE_MODES = ("uuu", "path", "none")
WEIGHT_MODES = BINARY_MODES + CHANNELWISE_MODES


class ExpansionError(ValueError):
    """A coupling whose channels or labels do not fit; the validator adds the span."""


@dataclass(frozen=True)
class Channels:
    """What a weight mode makes of the operands' multiplicities for one path."""

    out_mul: int
    weight_shape: tuple[int, ...] | None
    num_elements: int


def _binary(muls: Sequence[int], mode: str) -> tuple[int, int]:
    if len(muls) != 2:
        raise ExpansionError(f"weights {mode} couples exactly two operands, got {len(muls)}")
    return muls[0], muls[1]


def _uvw(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvw")
    if w is None:
        raise ExpansionError("weights uvw needs output multiplicities (write them in '-> …')")
    return Channels(w, (u, v, w), u * v)


def _uvu(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvu")
    return Channels(u, (u, v), v)


def _uvv(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvv")
    return Channels(v, (u, v), u)


def _uuw(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uuw")
    if u != v:
        raise ExpansionError(f"weights uuw needs equal multiplicities, got {u} and {v}")
    if w is None:
        raise ExpansionError("weights uuw needs output multiplicities (write them in '-> …')")
    return Channels(w, (u, w), u)


def _uvuv(muls: Sequence[int], w: int | None) -> Channels:
    u, v = _binary(muls, "uvuv")
    return Channels(u * v, (u, v), 1)


def _channelwise(shape: Callable[[int], tuple[int, ...] | None], mode: str) -> Callable:
    def rule(muls: Sequence[int], w: int | None) -> Channels:
        u = max(muls)
        if any(m not in (1, u) for m in muls):
            raise ExpansionError(
                f"{mode} couples channel by channel: multiplicities must agree or be 1, "
                f"got {', '.join(map(str, muls))}"
            )
        return Channels(u, shape(u), 1)

    return rule


MODE_RULES: dict[str, Callable[[Sequence[int], int | None], Channels]] = {
    "uvw": _uvw,
    "uvu": _uvu,
    "uvv": _uvv,
    "uuw": _uuw,
    "uvuv": _uvuv,
    "uuu": _channelwise(lambda u: (u,), "uuu"),
    "path": _channelwise(lambda u: (), "weights path"),
    "none": _channelwise(lambda u: None, "a fuse without weights"),
}

# Modes whose output multiplicity is read from the declared output (or the filter).
OUT_MUL_FROM_LAYOUT = ("uvw", "uuw")


def chains(irs: Sequence[Irrep],
           viable: Sequence[set[Irrep]] | None = None) -> Iterator[tuple[Irrep, ...]]:
    """Every labelling of the left-to-right chain ((a ⊗ b) ⊗ c) ⊗ …; last label = output.

    With ``viable`` (from :func:`viable_labels`), only the labellings whose label after step
    ``s`` is in ``viable[s]``: those that end in a wanted output, in the same order.
    """
    ok = (lambda s, k: True) if viable is None else (lambda s, k: k in viable[s])
    frontier: list[tuple[Irrep, ...]] = [(irs[0],)] if ok(0, irs[0]) else []
    for s, ir in enumerate(irs[1:], 1):
        frontier = [(*c, k) for c in frontier for k in c[-1] * ir if ok(s, k)]
    for c in frontier:
        yield c[1:]


def viable_labels(steps: Sequence[Sequence[Irrep]],
                  wanted: Callable[[Irrep], bool]) -> list[set[Irrep]]:
    """Per chain position ``s``, the labels from which a wanted output can still be reached.

    ``steps[s]`` are the irreps operand ``s`` may take. A label counts when the chain reaches
    it (forward) and some choice of the later operands' irreps and labels ends in a ``wanted``
    output (backward). Listing only such chains keeps the work proportional to the paths
    kept, not to every labelling (``4x1o`` coupled 17 times to ``0e`` used to list 3^16
    chains to find none).
    """
    forward = [set(steps[0])]
    for irs in steps[1:]:
        forward.append({c for a in forward[-1] for b in set(irs) for c in a * b})
    back = [set() for _ in steps]
    back[-1] = {k for k in forward[-1] if wanted(k)}
    for s in range(len(steps) - 2, -1, -1):
        nxt = back[s + 1]
        back[s] = {k for k in forward[s] if any(c in nxt for b in set(steps[s + 1]) for c in k * b)}
    return back


def _entry_choices(operands: Sequence[Irreps],
                   viable: Sequence[set[Irrep]]) -> Iterator[tuple[int, ...]]:
    """The operands' entry indices as ``itertools.product`` lists them (in its order).

    Less the choices of which no chain ends in a wanted output.
    """
    n = len(operands)
    stack: list[tuple[tuple[int, ...], set[Irrep]]] = [((), set())]
    while stack:
        prefix, labels = stack.pop()
        s = len(prefix)
        if s == n:
            yield prefix
            continue
        pushed = []
        for i, e in enumerate(operands[s]):
            nxt = {e.ir} if s == 0 else {c for a in labels for c in a * e.ir}
            nxt &= viable[s]
            if nxt:
                pushed.append(((*prefix, i), nxt))
        stack.extend(reversed(pushed))  # popped in index order: product's order


@dataclass(frozen=True)
class LocalPath:
    """One path of one fuse node, before normalisation and weight offsets."""

    inputs: tuple[int, ...]
    irs: tuple[Irrep, ...]
    muls: tuple[int, ...]
    labels: tuple[Irrep, ...]
    out: Irrep
    out_entry: int
    channels: Channels


def _out_entries(out: Irrep, layout: Irreps | None) -> list[tuple[int, int | None]]:
    if layout is None:
        return [(-1, None)]
    return [(i, e.mul) for i, e in enumerate(layout) if e.ir == out]


def expand_fuse(
    operands: Sequence[Irreps],
    mode: str,
    keep: Irreps | None,
    layout: Irreps | None,
) -> tuple[list[LocalPath], Irreps]:
    """All paths of one fuse node and the layout of its result.

    Args:
        operands: irreps of each operand, in coupling order.
        mode: the weight mode (a key of :data:`MODE_RULES`).
        keep: the ``-> …`` filter: labels kept (and ``w`` multiplicities), or ``None``.
        layout: the declared output irreps when this node is the diagram's output: paths are
            routed into every entry with their label and summed, as e3nn's irreps_out;
            ``None`` for an intermediate, which gets one entry per path.

    Raises:
        ExpansionError: when multiplicities do not fit the mode.
    """
    rule = MODE_RULES[mode]
    paths: list[LocalPath] = []
    entries: list[MulIr] = []

    def wanted(ir: Irrep) -> bool:
        return ((keep is None or keep.count(ir) > 0)
                and (layout is None or any(e.ir == ir for e in layout)))

    viable = viable_labels([[e.ir for e in x] for x in operands], wanted)
    for idx in _entry_choices(operands, viable):
        irs = tuple(operands[k][i].ir for k, i in enumerate(idx))
        muls = tuple(operands[k][i].mul for k, i in enumerate(idx))
        for chain in chains(irs, viable_labels([[ir] for ir in irs], wanted)):
            out = chain[-1]
            if keep is not None and keep.count(out) == 0:
                continue
            for entry, declared in _out_entries(out, layout):
                w = declared if layout is not None else _filter_mul(keep, out)
                ch = rule(muls, w if mode in OUT_MUL_FROM_LAYOUT else None)
                if declared is not None and ch.out_mul != declared:
                    raise ExpansionError(
                        f"{_describe(irs, out)} gives {ch.out_mul} channels "
                        f"but the output declares {declared}x{out}"
                    )
                if layout is None:
                    entry = len(entries)
                    entries.append(MulIr(ch.out_mul, out))
                paths.append(LocalPath(idx, irs, muls, chain[:-1], out, entry, ch))
    return paths, (layout if layout is not None else Irreps(tuple(entries)))


def _filter_mul(keep: Irreps | None, out: Irrep) -> int | None:
    if keep is None:
        return None
    muls = [e.mul for e in keep if e.ir == out]
    return muls[0] if muls else None


def _describe(irs: Sequence[Irrep], out: Irrep) -> str:
    return " ⊗ ".join(map(str, irs)) + f" → {out}"


def describe_path(irs: Sequence[Irrep], labels: Sequence[Irrep], out: Irrep) -> str:
    """``1o ⊗ 2e → 1o``; with internal labels ``(1o ⊗ 1o → 2e) ⊗ 1o → 1o``."""
    steps = zip(irs[1:], (*labels, out))
    ir, k = next(steps)
    text = f"{irs[0]} ⊗ {ir} → {k}"
    for ir, k in steps:
        text = f"({text}) ⊗ {ir} → {k}"
    return text


@dataclass(frozen=True)
class Coupling:
    """One named coefficient tensor (float64 values; complex-basis ones are real too)."""

    name: str
    values: np.ndarray
    doc: str


def fuse_coupling(group: Group, a: Irrep, b: Irrep, c: Irrep) -> Coupling:
    """The norm-1 coupling tensor of one step ``a ⊗ b → c`` (e3nn's wigner_3j in O3/SO3).

    In SU2 it is the Condon–Shortley CG divided by sqrt(2c + 1), so that component
    normalisation (× sqrt(2c + 1)) gives back the standard Clebsch–Gordan coefficients.
    """
    if group == "SU2":
        values = np.real(cg.su2_cg(a.j2, b.j2, c.j2)) / math.sqrt(c.dim)
        return Coupling(f"cg_{a.j2}_{b.j2}_{c.j2}", values,
                        f"SU2 CG <{a} {b} | {c}> / sqrt({c.dim}) (spins as 2j in the name)")
    values = cg.real_w3j(a.l, b.l, c.l)
    return Coupling(f"w3j_{a.l}_{b.l}_{c.l}", values, f"wigner_3j({a.l}, {b.l}, {c.l})")


@functools.lru_cache(maxsize=4096)
def nnz(group: Group, a: Irrep, b: Irrep, c: Irrep) -> int:
    """Number of nonzeros of the coupling tensor ``a ⊗ b → c`` (the one count every stage uses)."""
    return int(np.count_nonzero(fuse_coupling(group, a, b, c).values))


def chain_nnz(group: Group, irs: Sequence[Irrep], steps: Sequence[Irrep]) -> list[int]:
    """Nonzeros of each step of the chain ``((irs[0] ⊗ irs[1] → steps[0]) ⊗ irs[2] → …``."""
    out, left = [], irs[0]
    for ir, k in zip(irs[1:], steps):
        out.append(nnz(group, left, ir, k))
        left = k
    return out


def vertex_coupling(group: Group, a: Irrep, b: Irrep, c: Irrep) -> Coupling:
    """A graph vertex: e3nn's wigner_3j (real basis) or the Wigner 3j symbol (SU2)."""
    if group == "SU2":
        values = np.real(cg.su2_3j(a.j2, b.j2, c.j2))
        return Coupling(f"tj_{a.j2}_{b.j2}_{c.j2}", values,
                        f"Wigner 3j symbol ({a} {b} {c}) (spins as 2j in the name)")
    return fuse_coupling(group, a, b, c)


def metric(ir: Irrep) -> Coupling:
    """The SU2 1j symbol (-1)^(j - m) δ(m', -m) that joins two vertex slots."""
    return Coupling(f"g_{ir.j2}", np.real(cg.su2_metric(ir.j2)), f"1j symbol of spin {ir}")

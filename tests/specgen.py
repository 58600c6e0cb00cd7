"""Seeded random ``.fd`` programs across the language, valid by construction (Csmith-style).

``random_program(seed)`` returns ``(text, diagram_name, features)``: one program with one
diagram, and the set of constructs it uses (``FEATURES`` lists them all) so a run can count
its coverage. The generator carries its own small model of the language's semantics, written
from ``docs/language.md`` (paths of a left-to-right chain, the result multiplicity of each weight
mode, one entry per path for an intermediate, the declared output's routing, ``linear`` and
``cat`` layouts): declared outputs are picked from what the couplings actually give, so the
checker accepts every program; a rejection is a disagreement between the docs and the checker.
Only ``fusiondsl.core.irreps`` is used (label products, ``simplify``). Sizes stay small
(multiplicities 1-4, ℓ ≤ 2 but for a few ℓ = 3, at most ``MAX_PATHS`` paths per fuse).

``python tests/specgen.py [N]`` prints N programs' coverage counts (default 300).
"""

from __future__ import annotations

import itertools
import random
import sys
from collections import Counter
from dataclasses import dataclass

from fusiondsl.core.irreps import Irrep, Irreps, MulIr

BINARY = ("uvw", "uvu", "uvv", "uuw", "uvuv")
CHANNELWISE = ("uuu", "path", "none")
MODES = BINARY + CHANNELWISE
MAX_PATHS = 10  # paths of one fuse
MAX_J2 = 4  # labels of intermediates: ℓ ≤ 2 (declared outputs: ℓ ≤ 3)
MAX_MUL = 8  # channels of any result
E3NN_MODES = ("uvw", "uvu", "uvv", "uuw", "uvuv", "uuu", "none")
FEATURES = (
    "form:tree", "form:neighbourhood", "form:graph", "group:O3", "group:SO3", "group:SU2",
    *(f"mode:{m}" for m in MODES), "weights:internal", "weights:external", "fuse()", "fuse{}",
    "nary", "symmetric_power", "nested", "intermediate", "filter", "gate", "node_gate",
    "sum_j", "h[i]", "h[j]", "k[j]", "edge_leg", "two_sums", "cat", "linear", "output:fuse",
    "output:linear", "output:cat", "output:sum_j", "let", "sh", "mixed_parity", "half_integer",
    "broadcast", "graph:loop", "graph:chain", "graph:self_loop", "graph:no_out",
    "graph:out_narrower", "graph:out_wider", "external:edge", "external:node",
    "external:mixed", "external_mul1", "tree_gate", "e3nn",
)


@dataclass(frozen=True)
class Value:
    """Something an expression can read: its text, irreps, the names it reads, its index."""

    ref: str
    irreps: Irreps
    names: frozenset[str]
    at: str | None = None  # "i" for a centre read h[i] inside sum_j


def chains(irs: list[Irrep]) -> list[tuple[Irrep, ...]]:
    """Labellings of ((a ⊗ b) ⊗ c) ⊗ …, internal labels then the output, increasing spin."""
    frontier: list[tuple[Irrep, ...]] = [(irs[0],)]
    for ir in irs[1:]:
        frontier = [(*c, k) for c in frontier for k in c[-1] * ir]
    return [c[1:] for c in frontier]


def raw_paths(ops: list[Irreps]) -> list[tuple[tuple[int, ...], Irrep]]:
    """(multiplicities, output label) of every path, in the documented path order."""
    out = []
    for idx in itertools.product(*(range(len(x)) for x in ops)):
        muls = tuple(ops[k][i].mul for k, i in enumerate(idx))
        irs = [ops[k][i].ir for k, i in enumerate(idx)]
        out += [(muls, c[-1]) for c in chains(irs)]
    return out


def result_mul(mode: str, muls: tuple[int, ...], w: int | None) -> int | None:
    """Channels of one path's result under a weight mode (``None``: the mode does not fit)."""
    if mode in BINARY:
        if len(muls) != 2:
            return None
        u, v = muls
        return {"uvw": w, "uvu": u, "uvv": v, "uuw": w if u == v else None, "uvuv": u * v}[mode]
    top = max(muls)
    return top if all(m in (1, top) for m in muls) else None


def fits(mode: str, ops: list[Irreps]) -> bool:
    """Whether every path of these operands fits the mode's channel rule."""
    return all(result_mul(mode, m, 1) is not None for m, _ in raw_paths(ops))


def fmt_mul(m: MulIr, explicit: bool = False) -> str:
    return f"{m.mul}x{m.ir}" if m.mul > 1 or explicit else str(m.ir)


class Builder:
    """The state of one program being written: random source, group, legs, body, features."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.features: set[str] = set()
        self.legs: list[tuple[str, str, str]] = []  # name, domain, irreps text
        self.lets: list[str] = []
        self.body: list[str] = []
        self.group = "O3"
        self.out_decl = ""
        self.last: dict[str, object] = {}

    def feat(self, *names: str) -> None:
        self.features.update(names)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    # ---- irreps ----------------------------------------------------------------------------
    def label(self, lmax: int = 2) -> Irrep:
        r = self.rng
        if self.group == "SU2":
            return Irrep(r.randint(0, 2 * lmax - 1), 0)
        ell = r.choice([*range(lmax + 1), *range(lmax + 1)[:2]]) if not self.chance(0.04) else 3
        if self.group == "SO3":
            return Irrep(2 * ell, 0)
        natural = (-1) ** ell
        return Irrep(2 * ell, natural if self.chance(0.7) else -natural)

    def irreps(self, num: int, mul: int, spread: float = 0.25, lmax: int = 2) -> Irreps:
        """``num`` distinct labels, multiplicity ``mul`` (some entries 1, or any, by chance)."""
        labels: list[Irrep] = []
        while len(labels) < num:
            ir = self.label(lmax)
            if ir not in labels or self.chance(0.05):
                labels.append(ir)
        muls = [mul if not self.chance(spread) else self.rng.choice([1, self.rng.randint(1, 4)])
                for _ in labels]
        return Irreps(tuple(MulIr(m, ir) for m, ir in zip(muls, labels)))

    def text(self, irreps: Irreps) -> str:
        """e3nn syntax in one of its spellings: ``sh(L)``, ``Nx(a + b)`` or entry by entry."""
        r, n = self.rng, len(irreps)
        self.note_irreps(irreps)
        if irreps == Irreps.spherical_harmonics(n - 1, self.group) and self.chance(0.7):
            self.feat("sh")
            return f"sh({n - 1})"
        muls = {m.mul for m in irreps}
        if n > 1 and len(muls) == 1 and muls != {1} and self.chance(0.4):
            return f"{irreps[0].mul}x(" + " + ".join(str(m.ir) for m in irreps) + ")"
        sep = r.choice(["+", " + "])
        return sep.join(fmt_mul(m, self.chance(0.5)) for m in irreps)

    def note_irreps(self, irreps: Irreps) -> None:
        if any(m.ir.j2 % 2 for m in irreps):
            self.feat("half_integer")
        if self.group == "O3" and any(m.ir.p != (-1) ** (m.ir.j2 // 2) for m in irreps):
            self.feat("mixed_parity")

    def leg(self, name: str, irreps: Irreps, domain: str = "node") -> Value:
        spelled = self.text(irreps)
        if domain == "node" and len(irreps) > 1 and self.chance(0.2):
            self.lets.append(f"let {name.upper()}_T = {spelled}")
            spelled = f"{name.upper()}_T"
            self.feat("let")
        self.legs.append((name, domain, spelled))
        if domain == "edge":
            self.feat("edge_leg")
        return Value(name, irreps, frozenset([name]))

    def gate_leg(self, result: Irreps, edge: bool) -> str:
        """A new leg of invariant scalars for ``* g``: the result's channels, or 1."""
        muls = {m.mul for m in result}
        n = muls.pop() if len(muls) == 1 and self.chance(0.8) else 1
        name = f"g{sum(1 for leg in self.legs if leg[0].startswith('g'))}"
        scalar = Irrep(0, 1 if self.group == "O3" else 0)
        self.leg(name, Irreps((MulIr(n, scalar),)), "edge" if edge else "node")
        self.feat("gate" if edge else "node_gate")
        if "form:tree" in self.features:
            self.feat("tree_gate")
        return name

    # ---- fuse --------------------------------------------------------------------------
    def fuse(self, ops: list[Value], out: bool, in_sum: bool = False,
             aggregate: bool = False) -> tuple[str, Irreps] | None:
        """A fuse over ``ops``: its text and its result irreps (the declared ones if ``out``).

        ``None`` when these operands give no small valid fuse (the caller tries another).
        """
        ordered = self.chance(0.55)
        order = list(range(len(ops)))
        if not ordered and aggregate and len(ops) >= 3:  # centre reads couple last
            order.sort(key=lambda i: ops[i].at == "i")
        coupled = [ops[i].irreps for i in order]
        modes = [m for m in MODES if fits(m, coupled)]
        if not modes:
            return None
        mode = self.rng.choice(modes)
        raw = raw_paths(coupled)
        got = self.declare(raw, mode) if out else self.keep(raw, mode)
        if got is None:
            return None
        irreps, keep = got
        mods = [] if keep is None else [keep]
        mods += self.weights(mode, in_sum)
        kept = [(m, ir) for m, ir in raw if ir in irreps.labels]
        if mode in ("uvu", "uuu") and "external" in mods[-1] and all(
                set(m) == {1} for m, _ in kept):
            self.feat("external_mul1")
        if self.chance(0.3 if in_sum else 0.12):
            mods.append(f"* {self.gate_leg(irreps, in_sum)}")
        self.rng.shuffle(mods)
        args = ", ".join(op.ref for op in ops)
        self.feat(f"mode:{mode}", "fuse()" if ordered else "fuse{}")
        if len(ops) > 2:
            self.feat("nary")
        if len({op.ref for op in ops}) < len(ops):
            self.feat("symmetric_power")
        if any(max(m) > 1 and min(m) == 1 for m, _ in raw) and mode in CHANNELWISE:
            self.feat("broadcast")
        brackets = "()" if ordered else "{}"
        self.last = {"mode": mode, "gated": any(m.startswith("*") for m in mods),
                     "broadcast": any(len(set(m)) > 1 for m, _ in raw)}
        return " ".join([f"fuse{brackets[0]}{args}{brackets[1]}", *mods]), irreps

    def weights(self, mode: str, in_sum: bool) -> list[str]:
        if mode == "none":
            return ["weights none"] if self.chance(0.3) else []
        node_level = "sum_j" in self.features and not in_sum  # rarer: a known bug (see tests)
        external = self.chance(0.08 if node_level else 0.35)
        self.feat("weights:external" if external else "weights:internal")
        if external and "sum_j" in self.features:  # per-edge or per-node weight rows
            self.feat("external:edge" if in_sum else "external:node")
            if {"external:edge", "external:node"} <= self.features:
                self.feat("external:mixed")
        return [f"weights {mode}" + (" external" if external else "")]

    def keep(self, raw: list, mode: str) -> tuple[Irreps, str | None] | None:
        """An intermediate's layout (one entry per path) and its ``->`` filter, if any."""
        every = list(dict.fromkeys(ir for _, ir in raw))
        labels = [ir for ir in every if ir.j2 <= MAX_J2]
        needs_w = mode in ("uvw", "uuw")
        if (not needs_w and len(raw) <= MAX_PATHS and labels == every
                and max(result_mul(mode, m, 1) for m, _ in raw) <= MAX_MUL  # type: ignore[type-var]
                and not self.chance(0.4)):
            return Irreps(tuple(MulIr(result_mul(mode, m, None), ir) for m, ir in raw)), None
        self.rng.shuffle(labels)
        chosen: dict[Irrep, int] = {}
        for ir in labels[: self.rng.randint(1, 3)]:
            if sum(1 for _, x in raw if x in chosen or x == ir) <= MAX_PATHS:
                chosen[ir] = self.rng.randint(1, 3) if needs_w else self.rng.choice([1, 1, 2])
        entries = tuple(MulIr(result_mul(mode, m, chosen[ir]), ir) for m, ir in raw
                        if ir in chosen)
        if not entries or max(e.mul for e in entries) > MAX_MUL:
            return None
        self.feat("filter")
        return Irreps(entries), "-> " + " + ".join(
            fmt_mul(MulIr(w, ir), self.chance(0.3)) for ir, w in chosen.items())

    def declare(self, raw: list, mode: str) -> tuple[Irreps, str | None] | None:
        """A declared output the paths reach (one multiplicity per label unless uvw/uuw)."""
        free = mode in ("uvw", "uuw")
        muls: dict[Irrep, set[int]] = {}
        for m, ir in raw:
            muls.setdefault(ir, set()).add(result_mul(mode, m, 1))  # type: ignore[arg-type]
        labels = [ir for ir, ms in muls.items() if (free or len(ms) == 1) and ir.j2 <= MAX_J2 + 2
                  and max(ms) <= MAX_MUL]
        self.rng.shuffle(labels)
        entries: list[MulIr] = []
        for ir in labels[: self.rng.randint(1, 3)]:
            if sum(1 for _, x in raw if x == ir or x in {e.ir for e in entries}) > MAX_PATHS:
                continue
            copies = 2 if free and self.chance(0.1) else 1
            entries += [MulIr(self.rng.randint(1, 4) if free else next(iter(muls[ir])), ir)
                        for _ in range(copies)]
        if not entries:
            return None
        keep = None
        if self.chance(0.2):
            names = list(dict.fromkeys(e.ir for e in entries))
            self.rng.shuffle(names)
            keep = "-> " + " + ".join(map(str, names))
            self.feat("filter")
        return Irreps(tuple(entries)), keep

    # ---- calls ---------------------------------------------------------------------------
    def linear_layout(self, source: Irreps) -> Irreps:
        labels = list(dict.fromkeys(m.ir for m in source))
        self.rng.shuffle(labels)
        take = labels[: self.rng.randint(1, len(labels))]
        return Irreps(tuple(MulIr(self.rng.randint(1, 4), ir) for ir in take))

    def call(self, ops: list[Value], out: bool) -> tuple[str, Irreps]:
        """``linear(x)``, ``cat(a, …)`` or ``linear(cat(a, …))`` over ``ops``."""
        if len(ops) == 1 or self.chance(0.6):
            source = ops[0] if len(ops) == 1 else self.cat_value(ops)
            self.feat("linear")
            irreps = self.linear_layout(source.irreps) if out else source.irreps.simplify()
            return f"linear({source.ref})", irreps
        cat = self.cat_value(ops)
        return cat.ref, cat.irreps

    def cat_value(self, ops: list[Value]) -> Value:
        self.feat("cat")
        irreps = Irreps(tuple(m for op in ops for m in op.irreps))
        return Value(f"cat({', '.join(op.ref for op in ops)})", irreps,
                     frozenset().union(*(op.names for op in ops)))

    def program(self, name: str) -> str:
        head = [] if self.group == "O3" and self.chance(0.3) else [f"group {self.group}"]
        legs = ", ".join(f"{n}: {'edge ' if d == 'edge' else 'node ' * self.chance(0.1)}{t}"
                         for n, d, t in self.legs)
        return "\n".join([*head, *self.lets, f"diagram {name}({legs}) -> {self.out_decl} {{",
                          *(f"    {line}" for line in self.body), "}", ""])

    def checkpoint(self) -> tuple[int, int, frozenset[str]]:
        return len(self.legs), len(self.lets), frozenset(self.features)

    def restore(self, cp: tuple[int, int, frozenset[str]]) -> None:
        """Forget the legs and features of an attempt that was given up."""
        del self.legs[cp[0]:], self.lets[cp[1]:]
        self.features = set(cp[2])

    def attempt(self, make, tries: int = 12):  # type: ignore[no-untyped-def]
        """``make()`` until it gives a value, undoing the side effects of failed tries."""
        for _ in range(tries):
            cp = self.checkpoint()
            got = make()
            if got is not None:
                return got
            self.restore(cp)
        return None


# ---- tree diagrams -------------------------------------------------------------------------
def pick(b: Builder, pool: list[Value], unused: list[Value], arity: int) -> list[Value]:
    """Operands: unread values first, then any; now and then one value repeated (a power)."""
    if b.chance(0.12):
        v = (unused or pool)[0]
        return [v] * (3 if arity > 2 or b.chance(0.3) else 2)
    ops = unused[:arity] + [b.rng.choice(pool) for _ in range(arity - len(unused[:arity]))]
    b.rng.shuffle(ops)
    return ops


def reads(ops: list[Value]) -> frozenset[str]:
    return frozenset().union(*(op.names for op in ops))


def intermediate(b: Builder, pool: list[Value], unused: list[Value], nested: bool = True,
                 in_sum: bool = False) -> Value:
    """An expression for an intermediate value: a fuse (maybe with a nested one) or a call."""
    def fuse() -> Value | None:
        ops = pick(b, pool, unused, b.rng.choice([2, 2, 2, 3]))
        if nested and b.chance(0.15):
            inner = intermediate(b, pool, [], nested=False, in_sum=in_sum)
            ops[b.rng.randrange(len(ops))] = inner
            b.feat("nested")
        got = b.fuse(ops, out=False, in_sum=in_sum)
        return None if got is None else Value(got[0], got[1], reads(ops))

    got = b.attempt(fuse) if in_sum or b.chance(0.75) else None
    if got is None:
        ops = unused[:2] or [b.rng.choice(pool)]
        text, irreps = b.call(ops, out=False)
        got = Value(text, irreps, reads(ops))
    return got


def output(b: Builder, pool: list[Value], unused: list[Value]) -> str:
    """The last assignment: it reads every value not read yet; returns the declared irreps."""
    def fuse() -> tuple[str, Irreps] | None:
        ops = list(unused)
        while len(ops) < 2:
            ops.append(b.rng.choice(pool))
        got = b.fuse(ops, out=True) if len(ops) <= 3 else None
        if got is not None:
            b.feat("output:fuse")
        return got

    got = b.attempt(fuse) if b.chance(0.55) else None
    if got is None:
        got = b.call(unused or [b.rng.choice(pool)], out=True)
        b.feat("output:linear" if got[0].startswith("linear") else "output:cat")
    b.body.append(f"o = {got[0]}")
    return b.text(got[1])


def tree(b: Builder) -> None:
    b.feat("form:tree")
    channels = b.rng.randint(1, 4)
    if b.group == "O3" and b.chance(0.3):  # the e3nn shape: one binary fuse of two legs
        x = [b.leg(f"x{i}", b.irreps(b.rng.randint(1, 3), channels)) for i in range(2)]
        got = b.attempt(lambda: b.fuse(x, out=True))
        if got is not None:
            b.body.append(f"o = {got[0]}")
            b.out_decl = f"o: {b.text(got[1])}"
            if b.last["mode"] in E3NN_MODES and not b.last["gated"] and (
                    b.last["mode"] not in CHANNELWISE or not b.last["broadcast"]):
                b.feat("e3nn")
            b.feat("output:fuse")
            return
        b.restore((0, 0, frozenset(["form:tree"])))
    pool = [b.leg(f"x{i}", b.irreps(b.rng.randint(1, 3), channels))
            for i in range(b.rng.choice([1, 2, 2, 2, 3]))]
    unused = list(pool)
    for t in range(b.rng.choice([0, 0, 1, 1, 2])):
        v = intermediate(b, pool, unused)
        b.body.append(f"t{t} = {v.ref}")
        b.feat("intermediate")
        unused = [u for u in unused if u.names.isdisjoint(v.names)]
        value = Value(f"t{t}", v.irreps, frozenset([f"t{t}"]))
        pool.append(value)
        unused.append(value)
    b.out_decl = f"o: {output(b, pool, unused)}"


# ---- neighbourhood blocks ----------------------------------------------------------------
def at(v: Value, index: str) -> Value:
    return Value(f"{v.ref}[{index}]", v.irreps, v.names, index)


def edge_operands(b: Builder, h: Value, k: Value | None, y: Value) -> list[Value]:
    """The operands of one summed fuse: centre, neighbour and bond reads in some shape."""
    nb = at(k, "j") if k is not None and b.chance(0.6) else at(h, "j")
    shapes = [[nb, y], [at(h, "i"), nb, y], [at(h, "i"), nb, y], [at(h, "i"), y],
              [nb, y, y], [nb, nb, y], "nested_ij", "nested_jy"]
    shape = b.rng.choice(shapes)
    if shape == "nested_ij":
        inner = b.fuse([at(h, "i"), nb], out=False, in_sum=True)
        ops = [] if inner is None else [Value(inner[0], inner[1], reads([h, nb])), y]
    elif shape == "nested_jy":
        inner = b.fuse([nb, y], out=False, in_sum=True)
        ops = [] if inner is None else [Value(inner[0], inner[1], reads([nb, y])), at(h, "i")]
    else:
        ops = list(shape)
        b.rng.shuffle(ops)
    if isinstance(shape, str):
        b.feat("nested")
    return ops


def summed(b: Builder, h: Value, k: Value | None, y: Value, out: bool) -> Value | None:
    """``sum_j fuse…``: its text, result irreps and the legs it reads."""
    ops = edge_operands(b, h, k, y)
    got = b.fuse(ops, out=out, in_sum=True, aggregate=True) if ops else None
    if got is None:
        return None
    text = f"sum_j {got[0]}"
    b.feat(*(f for f, s in (("h[i]", "h[i]"), ("h[j]", "h[j]"), ("k[j]", "k[j]")) if s in text))
    return Value(text, got[1], reads(ops))


def fallback_block(h: Value, y: Value) -> Value:
    """``sum_j fuse(h[j], y) weights uvu``: fits any operands (used if no other block came)."""
    raw = raw_paths([h.irreps, y.irreps])
    irreps = Irreps(tuple(MulIr(m[0], ir) for m, ir in raw))
    return Value("sum_j fuse(h[j], y) weights uvu", irreps, frozenset("hy"))


def neighbourhood(b: Builder) -> None:
    b.feat("form:neighbourhood", "sum_j")
    channels = b.rng.randint(1, 3)
    h = b.leg("h", b.irreps(b.rng.randint(1, 3), channels, spread=0.15))
    k = b.leg("k", b.irreps(b.rng.randint(1, 2), channels, 0.1)) if b.chance(0.25) else None
    ys = Irreps.spherical_harmonics(b.rng.randint(1, 2), b.group)
    y = b.leg("y", ys if b.chance(0.7) else b.irreps(b.rng.randint(1, 2), 1, 0.1), "edge")
    legs = [h] if k is None else [h, k]
    if k is None and b.chance(0.25):
        direct = b.attempt(lambda: summed(b, h, k, y, out=True))
        if direct is not None:
            b.body.append(f"o = {direct.ref}")
            b.out_decl = f"o: {b.text(direct.irreps)}"
            b.feat("output:sum_j")
            return
    blocks = [b.attempt(lambda: summed(b, h, k, y, out=False)) or fallback_block(h, y)
              for _ in range(2 if b.chance(0.2) else 1)]
    if len(blocks) == 2:
        b.feat("two_sums")
    pool = list(legs)
    unused = [leg for leg in legs if all(leg.names.isdisjoint(bl.names) for bl in blocks)]
    if b.chance(0.15) and len(blocks) == 1:  # a nested sum_j as an operand of the output
        unused.append(Value(blocks[0].ref, blocks[0].irreps, frozenset()))
    else:
        for n, block in enumerate(blocks):
            b.body.append(f"m{n} = {block.ref}")
            value = Value(f"m{n}", block.irreps, frozenset([f"m{n}"]))
            pool.append(value)
            unused.append(value)
        b.feat("intermediate")
    b.rng.shuffle(unused)
    b.out_decl = f"o: {output(b, pool, unused)}"


# ---- graph form --------------------------------------------------------------------------
class GraphBuilder:
    """Edges, open legs and vertices of a graph, each vertex built from a label product."""

    def __init__(self, b: Builder) -> None:
        self.b = b
        self.edges: dict[str, Irrep] = {}
        self.opens: list[tuple[str, Irrep]] = []
        self.vertices: list[list[str]] = []

    def edge(self, ir: Irrep) -> str:
        name = f"e{len(self.edges)}"
        self.edges[name] = ir
        return name

    def open(self, ir: Irrep) -> str:
        name = f"x{len(self.opens)}"
        self.opens.append((name, ir))
        return name

    def third(self, a: Irrep, c: Irrep) -> Irrep:
        return self.b.rng.choice(a * c)

    def slot(self, a: str, c: str, ir: Irrep) -> None:
        """A vertex (a, c, s): s is an open leg, or (by chance) an edge to a hanging vertex."""
        if self.b.chance(0.25) and len(self.opens) < 3:
            t = self.edge(ir)
            x = self.b.label(1)
            self.vertices.append([a, c, t])
            self.vertices.append([t, self.open(x), self.open(self.third(ir, x))])
        else:
            self.vertices.append([a, c, self.open(ir)])

    def loop(self, n: int) -> None:
        ring = [self.edge(self.b.label(2)) for _ in range(n)]
        for i in range(n):
            a, c = ring[i], ring[(i + 1) % n]
            self.slot(a, c, self.third(self.edges[a], self.edges[c]))

    def self_loop(self) -> None:
        t = self.edge(self.b.label(2))
        s = self.edge(self.third(self.edges[t], self.edges[t]))
        self.vertices.append([s, t, t])
        x = self.b.label(1)
        self.vertices.append([s, self.open(x), self.open(self.third(self.edges[s], x))])

    def chain(self, n: int) -> None:
        left = self.open(self.b.label(2))
        for i in range(n):
            x = self.b.label(2)
            ir = self.third(dict(self.opens).get(left) or self.edges[left], x)
            nxt = self.edge(ir) if i < n - 1 else None
            if nxt is None:
                self.slot(left, self.open(x), ir)
            else:
                self.vertices.append([left, self.open(x), nxt])
                left = nxt


def graph(b: Builder, name: str) -> str:
    b.feat("form:graph")
    g = GraphBuilder(b)
    kind = b.rng.choice(["loop", "loop", "chain", "self_loop"])
    if kind == "loop":
        g.loop(b.rng.randint(2, 3))
    elif kind == "chain":
        g.chain(b.rng.randint(1, 3))
    else:
        g.self_loop()
    b.feat(f"graph:{kind}")
    channels = b.rng.randint(1, 3)
    out = None if b.chance(0.1) else b.rng.randrange(len(g.opens))
    if out is None:
        b.feat("graph:no_out")
    lines = []
    muls = [channels if b.chance(0.7) else 1 for _ in g.opens]
    ins = [m for n, m in enumerate(muls) if n != out]
    if out is not None:  # the out leg has the channels of the ins (else a known bug, by chance)
        muls[out] = max(ins)
        if channels > 1 and b.chance(0.1):
            muls[out] = 1 if max(ins) > 1 else channels
            b.feat("graph:out_narrower" if max(ins) > 1 else "graph:out_wider")
    for n, ((leg, ir), mul) in enumerate(zip(g.opens, muls)):
        b.note_irreps(Irreps((MulIr(mul, ir),)))
        word = "out" if n == out else "in"
        lines.append(f"{word} {leg}: {fmt_mul(MulIr(mul, ir), b.chance(0.5))}")
    decls = [f"{e}: {ir}" for e, ir in g.edges.items()]
    if decls and b.chance(0.5):
        lines.append("edge " + ", ".join(decls))
    else:
        lines += [f"edge {d}" for d in decls]
    for v in g.vertices:
        b.rng.shuffle(v)
        lines.append(f"vertex ({', '.join(v)})")
    b.rng.shuffle(lines)
    head = [] if b.group == "O3" and b.chance(0.3) else [f"group {b.group}"]
    return "\n".join([*head, f"graph {name} {{", *(f"    {x}" for x in lines), "}", ""])


# ---- programs ------------------------------------------------------------------------------
GROUPS = {"tree": [0.6, 0.2, 0.2], "neighbourhood": [0.75, 0.15, 0.1], "graph": [0.5, 0.2, 0.3]}


def random_program(seed: int) -> tuple[str, str, frozenset[str]]:
    """One valid program (deterministic per seed): text, diagram name, constructs it uses."""
    b = Builder(seed)
    form = b.rng.choices(list(GROUPS), [0.5, 0.35, 0.15])[0]
    b.group = b.rng.choices(["O3", "SO3", "SU2"], GROUPS[form])[0]
    name = f"p{seed}"
    if form == "graph":
        text = graph(b, name)
    else:
        (tree if form == "tree" else neighbourhood)(b)
        text = b.program(name)
    b.feat(f"group:{b.group}")
    return text, name, frozenset(b.features)


def coverage(seeds: range) -> Counter[str]:
    """How many of these seeds' programs use each construct."""
    counts: Counter[str] = Counter({f: 0 for f in FEATURES})
    for seed in seeds:
        counts.update(random_program(seed)[2])
    return counts


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for feature, count in sorted(coverage(range(n)).items()):
        print(f"{count:6d}  {feature}")

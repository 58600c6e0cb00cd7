"""Every e3nn product converts: a seeded sweep of random products, as e3nn's own tests make them.

Random irreps (ℓ ≤ 3, both parities, some ``0x`` entries), every connection mode (mixed within
one product and within one output entry), weighted and not, internal / shared external /
per-sample external weights, every normalisation, custom path weights and variances, shuffled
instruction orders, output blocks no instruction writes, empty instruction lists; plus the
preset classes (fully connected, elementwise, full, both TensorSquare modes, Linear with and
without biases) and a few e3nn modules that are no product, which must be refused by name.
Each product is converted and compared with e3nn in float64 (outputs and every gradient), and
its ``to_fd`` text, where there is one, is compiled and compared too.

``FUSIONDSL_E3NN_SWEEP=N`` runs N products instead of the default 250 (about a minute);
``FUSIONDSL_E3NN_SWEEP_C=N`` runs the first N tensor products through the C backend as well
(off by default: each is a C compile, ~10-40 s here; ``tests/test_interop.py`` and
``tests/test_swap.py`` keep one C conversion each in the suite). Run this file as a script
(``python tests/test_interop_sweep.py [N] [einsum|c|triton]``) for the counts.
"""

from __future__ import annotations

import functools
import os
import random
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch

import fusiondsl
import fusiondsl.nn.interop

e3nn = pytest.importorskip("e3nn")
o3 = pytest.importorskip("e3nn.o3")

NUM = int(os.environ.get("FUSIONDSL_E3NN_SWEEP", "250"))
NUM_C = int(os.environ.get("FUSIONDSL_E3NN_SWEEP_C", "0"))
SEED = 20240615
BATCH = 3
TOL = {"atol": 1e-12, "rtol": 1e-12}
MODES = ["uvw", "uvu", "uvv", "uuw", "uuu", "uvuv", "uvu<v", "u<vw"]


# ---- the generator ------------------------------------------------------------------------
def _irreps(rng: random.Random, n_max: int = 3, mul_max: int = 3, empty: float = 0.04) -> Any:
    entries = []
    for _ in range(rng.randint(1, n_max)):
        mul = 0 if rng.random() < empty else rng.randint(1, mul_max)
        entries.append((mul, (rng.randint(0, 3), rng.choice((1, -1)))))
    return o3.Irreps(entries)


def _out_mul(mode: str, m1: int, m2: int, rng: random.Random, weighted: bool) -> int | None:
    """The output multiplicity e3nn requires of a mode (``None``: the inputs do not fit)."""
    if mode in ("uuw", "uuu", "uvu<v", "u<vw") and m1 != m2:
        return None
    if mode == "uuw" and not weighted:
        return 1
    return {"uvw": rng.randint(1, 3), "uvu": m1, "uvv": m2, "uuw": rng.randint(1, 3),
            "uuu": m1, "uvuv": m1 * m2, "uvu<v": m1 * (m1 - 1) // 2,
            "u<vw": rng.randint(1, 3)}[mode]


def _options(rng: random.Random, in1: Any, out: Any) -> dict[str, Any]:
    shared = rng.random() < 0.7
    kwargs: dict[str, Any] = {"shared_weights": shared,
                              "internal_weights": shared and rng.random() < 0.6,
                              "irrep_normalization": rng.choice(("component", "norm", "none")),
                              "path_normalization": rng.choice(("element", "path", "none"))}
    if rng.random() < 0.15:
        kwargs["in1_var"] = [rng.choice((1.0, 0.5, 3.0)) for _ in in1]
        kwargs["out_var"] = [rng.choice((1.0, 2.0)) for _ in out]
    return kwargs


def random_tensor_product(rng: random.Random) -> Any:
    """A TensorProduct with random instructions: mixed modes, shared and unreached outputs."""
    for _ in range(20):  # an empty instruction list only when asked for (below)
        tp = _random_tensor_product(rng)
        if tp.instructions or rng.random() < 0.05:
            return tp
    return tp


def _random_tensor_product(rng: random.Random) -> Any:
    in1 = _irreps(rng)
    in2 = in1 if rng.random() < 0.15 else _irreps(rng)
    modes = rng.sample(MODES, rng.choice((1, 1, 1, 2, 3)))
    out: list[tuple[int, tuple[int, int]]] = []
    ins: list[tuple] = []
    for i1, (m1, ir1) in enumerate(in1):
        for i2, (m2, ir2) in enumerate(in2):
            for ir in ir1 * ir2:
                mode = rng.choice(modes)
                weighted = mode in ("uvw", "u<vw") or rng.random() < 0.7
                mul = _out_mul(mode, m1, m2, rng, weighted)
                if mul is None or rng.random() < 0.45:
                    continue
                same = [k for k, (m, r) in enumerate(out) if m == mul and r == (ir.l, ir.p)]
                k = rng.choice(same) if same and rng.random() < 0.5 else len(out)
                if k == len(out):
                    out.append((mul, (ir.l, ir.p)))
                ins.append((i1, i2, k, mode, weighted, rng.choice((1.0, 1.0, 0.5, 2.0))))
    for _ in range(rng.choice((0, 0, 1, 2))):  # an output block no instruction writes
        pos = rng.randint(0, len(out))
        out.insert(pos, (rng.randint(1, 2), (rng.randint(0, 3), rng.choice((1, -1)))))
        ins = [(a, b, c + (c >= pos), *rest) for a, b, c, *rest in ins]
    if not out:
        out = [(1, (0, 1))]
    rng.shuffle(ins)
    return o3.TensorProduct(in1, in2, o3.Irreps(out), ins, **_options(rng, in1, out))


def fully_connected(rng: random.Random) -> Any:
    kw = _options(rng, [], [])
    kw.pop("in1_var", None), kw.pop("out_var", None)
    in1, in2 = _irreps(rng, empty=0), _irreps(rng, empty=0)
    made = sorted({(ir.l, ir.p) for _, a in in1 for _, b in in2 for ir in a * b})
    out = [(rng.randint(1, 3), rng.choice(made)) for _ in range(rng.randint(1, 3))]
    out += [(rng.randint(1, 2), (rng.randint(0, 3), rng.choice((1, -1))))] * rng.randint(0, 1)
    return o3.FullyConnectedTensorProduct(in1, in2, o3.Irreps(out), **kw)


def _filter(rng: random.Random) -> list[str] | None:
    labels = ["0e", "0o", "1o", "1e", "2e", "2o", "3o", "3e"]
    return rng.sample(labels, rng.randint(2, 6)) if rng.random() < 0.5 else None


def elementwise(rng: random.Random) -> Any:
    in1 = _irreps(rng, empty=0)
    num, in2 = in1.num_irreps, []
    while num:
        mul = rng.randint(1, num)
        in2.append((mul, (rng.randint(0, 3), rng.choice((1, -1)))))
        num -= mul
    return o3.ElementwiseTensorProduct(in1, o3.Irreps(in2), _filter(rng),
                                       irrep_normalization=rng.choice(("component", "norm")))


def full(rng: random.Random) -> Any:
    return o3.FullTensorProduct(_irreps(rng, empty=0), _irreps(rng, empty=0), _filter(rng),
                                irrep_normalization=rng.choice(("component", "norm", "none")))


def square(rng: random.Random) -> Any:
    irreps = _irreps(rng, empty=0)
    norm = rng.choice(("component", "norm", "none"))
    if rng.random() < 0.5:
        return o3.TensorSquare(irreps, filter_ir_out=_filter(rng), irrep_normalization=norm)
    return o3.TensorSquare(irreps, _irreps(rng, 3, empty=0), irrep_normalization=norm)


def linear(rng: random.Random) -> Any:
    i, o = _irreps(rng, 4, 4, empty=0), _irreps(rng, 4, 4, empty=0)
    shared = rng.random() < 0.7
    kw: dict[str, Any] = {"shared_weights": shared,
                          "internal_weights": shared and rng.random() < 0.6,
                          "biases": rng.random() < 0.4,
                          "path_normalization": rng.choice(("element", "path"))}
    pairs = [(a, b) for a, (_, x) in enumerate(i) for b, (_, y) in enumerate(o) if x == y]
    if pairs and rng.random() < 0.3:
        kw["instructions"] = rng.sample(pairs, rng.randint(1, len(pairs)))
    return o3.Linear(i, o, **kw)


def not_a_product(rng: random.Random) -> Any:
    return rng.choice([lambda: o3.SphericalHarmonics(2, True),
                       lambda: o3.Norm("2x1o+1x2e"),
                       lambda: o3.Linear("2x1o", "3x1o", f_in=2, f_out=3)])()


KINDS: list[tuple[Callable[[random.Random], Any], int]] = [
    (random_tensor_product, 60), (fully_connected, 10), (elementwise, 6), (full, 6),
    (square, 8), (linear, 8), (not_a_product, 2)]


@functools.cache
def products(num: int, seed: int = SEED) -> list[Any]:
    """``num`` e3nn modules, seeded; built in float64 with e3nn's einsum optimiser off."""
    rng = random.Random(seed)
    makers = [m for m, w in KINDS for _ in range(w)]
    old = e3nn.get_optimization_defaults()
    e3nn.set_optimization_defaults(optimize_einsums=False)
    try:
        return [rng.choice(makers)(rng) for _ in range(num)]
    finally:
        e3nn.set_optimization_defaults(**old)


# ---- the comparison -----------------------------------------------------------------------
def _inputs(m: Any, gen: torch.Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs (requiring grad) and external weights/biases for one module."""
    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).requires_grad_()

    if hasattr(m, "irreps_in1"):
        xs = [rand(BATCH, m.irreps_in.dim)] if hasattr(m, "irreps_in") \
            else [rand(BATCH, m.irreps_in1.dim), rand(BATCH, m.irreps_in2.dim)]
    else:
        xs = [rand(BATCH, m.irreps_in.dim)]
    ws = []
    if not m.internal_weights:
        lead = () if m.shared_weights else (BATCH,)
        if m.weight_numel or getattr(m, "bias_numel", 0):
            ws.append(rand(*lead, m.weight_numel))
        if getattr(m, "bias_numel", 0):  # e3nn's Linear adds biases shared, whatever its weights
            ws.append(rand(m.bias_numel))
    return xs, ws


def _params(layer: torch.nn.Module, e3nn_module: Any) -> list[torch.Tensor]:
    """The converted layer's internal weight (and bias) in e3nn's layout."""
    if not e3nn_module.internal_weights:
        return []
    out = []
    for name in ("weight", "bias"):
        ref = getattr(e3nn_module, name, None)
        if not isinstance(ref, torch.nn.Parameter):
            continue
        own = getattr(layer, name, None)
        if not isinstance(own, torch.nn.Parameter):
            own = layer.parts[0].weight
        out.append(own)
    return out


def compare(layer: torch.nn.Module, m: Any, seed: int = 0) -> None:
    """Outputs and gradients (inputs, weights) of ``layer`` equal ``m``'s to 1e-12."""
    gen = torch.Generator().manual_seed(seed)
    xs, ws = _inputs(m, gen)
    ref, got = m(*xs, *ws), layer(*xs, *ws)
    torch.testing.assert_close(got, ref, **TOL)
    if ref.numel() == 0 or not ref.requires_grad:  # e3nn's zero layer has no graph
        assert not got.abs().sum().item()
        return
    cot = torch.randn(ref.shape, generator=gen)
    mine = [*xs, *ws, *_params(layer, m)]
    theirs = [*xs, *ws, *(p for p in (getattr(m, "weight", None), getattr(m, "bias", None))
                          if isinstance(p, torch.nn.Parameter))]
    g_ref = torch.autograd.grad((ref * cot).sum(), theirs, allow_unused=True)
    g_got = torch.autograd.grad((got * cot).sum(), mine, allow_unused=True)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a if a is not None else torch.zeros_like(b),
                                   b if b is not None else torch.zeros_like(a), **TOL)


def compare_fd(m: Any) -> str:
    """``to_fd`` text compiled and compared (forward), or why there is none."""
    from fusiondsl.nn.interop_fd import fd_text

    try:
        fd = fd_text(m, "d")
    except ValueError as err:
        return "refused: " + str(err).split(": ", 1)[-1].split(" (from_e3nn")[0]
    layer = fusiondsl.loads(fd.text).compile(backend="einsum", **fd.options)
    order = torch.tensor(fd.weight_order, dtype=torch.long)
    gen = torch.Generator().manual_seed(1)
    xs, ws = _inputs(m, gen)
    if m.internal_weights and m.weight_numel:
        with torch.no_grad():
            layer.weight.copy_(m.weight[order])
    mine = [w[..., order] for w in ws]
    torch.testing.assert_close(layer(*xs, *mine), m(*xs, *ws), **TOL)
    return "equal"


def outcome(m: Any, backend: str = "einsum", fd: bool = True) -> tuple[str, str]:
    """``(equal|refused|wrong, detail)`` for one module; ``detail`` gives the fd result."""
    try:
        xs, ws = _inputs(m, torch.Generator().manual_seed(0))
        m(*(t.detach() for t in (*xs, *ws)))
    except Exception as err:
        if not isinstance(err, NotImplementedError) and fusiondsl.nn.interop.kind(m) is not None:
            return "e3nn fails", f"{type(err).__name__}: {str(err)[:120]}"
    try:
        layer = fusiondsl.from_e3nn(m, backend=backend)
    except ValueError as err:
        return "refused", str(err)
    except Exception as err:
        return "wrong", f"conversion crashed: {type(err).__name__}: {err}"
    try:
        compare(layer, m)
    except Exception as err:
        return "wrong", f"{type(err).__name__}: {str(err)[:300]}"
    try:
        return "equal", compare_fd(m) if fd else ""
    except Exception as err:
        return "wrong", f"to_fd text differs: {type(err).__name__}: {str(err)[:300]}"


def sweep(num: int, backend: str = "einsum", fd: bool = True) -> list[tuple[Any, str, str]]:
    """Every product's outcome."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return [(m, *outcome(m, backend, fd)) for m in products(num)]
    finally:
        torch.set_default_dtype(old)


def _report(results: list[tuple[Any, str, str]]) -> str:
    counts = Counter(kind for _, kind, _ in results)
    fd = Counter(detail.split(":")[0] for _, kind, detail in results if kind == "equal")
    lines = [f"{len(results)} products: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
             + f"; to_fd: {fd.get('equal', 0)} texts equal, {fd.get('refused', 0)} refused"]
    reasons = Counter(detail.split(": ", 1)[-1] for _, kind, detail in results
                      if kind == "refused")
    lines += [f"  refused ({n}x): {r}" for r, n in reasons.most_common()]
    lines += [f"  WRONG {type(m).__name__} {m}: {d}" for m, k, d in results if k == "wrong"]
    return "\n".join(lines)


# ---- the tests ----------------------------------------------------------------------------
EXPECTED_REFUSALS = ("not an e3nn TensorProduct", "f_in/f_out")


def test_every_e3nn_product_converts_and_equals_e3nn() -> None:
    results = sweep(NUM)
    report = _report(results)
    print(report)
    assert not [r for r in results if r[1] == "wrong"], report
    for _m, kind, detail in results:
        if kind == "refused":
            assert any(e in detail for e in EXPECTED_REFUSALS), detail
            assert "\n" not in detail
    converted = [m for m, kind, _ in results if kind == "equal"]
    assert len(converted) >= 0.9 * NUM


@pytest.mark.skipif(not NUM_C, reason="FUSIONDSL_E3NN_SWEEP_C=0")
def test_e3nn_products_convert_on_the_c_backend() -> None:
    from fusiondsl.backends.c.runtime import available

    if not available():
        pytest.skip("no C compiler with OpenMP")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        picked = [m for m in products(max(NUM, NUM_C)) if hasattr(m, "irreps_in1")][:NUM_C]
        results = [(m, *outcome(m, "c", fd=False)) for m in picked]
    finally:
        torch.set_default_dtype(old)
    assert all(kind == "equal" for _, kind, _ in results), _report(results)


if __name__ == "__main__":
    num = int(sys.argv[1]) if len(sys.argv) > 1 else NUM
    backend = sys.argv[2] if len(sys.argv) > 2 else "einsum"
    print(_report(sweep(num, backend, fd=backend == "einsum")))

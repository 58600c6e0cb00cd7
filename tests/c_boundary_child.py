"""Child process of ``tests/test_c_boundary.py``: hostile calls into one C-backed layer.

Run as ``python tests/c_boundary_child.py SPEC``; prints ``start CASE`` before each case and
one JSON line after it, so that a crash (segfault: a negative return code) names its case.
Each case expects either an error naming an argument or the einsum layer's value.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import torch

import fusiondsl
from fusiondsl.nn.testing import random_inputs

_BLOCK = "diagram {name}({legs}) -> o: 2x0e + 2x1o {{\n    {body}\n}}"
SPECS = {
    "single_path": "examples/single_path.fd",
    "nequip": "examples/nequip.fd",
    "ext": "diagram ext(x: 3x0e + 3x1o, y: 0e + 1o) -> z: 3x0e + 3x1o "
                "{ z = fuse(x, y) weights uvu external }",
    "hoisted": _BLOCK.format(name="hoisted", legs="h: 2x0e + 2x1o, y: edge sh(1), g: edge 2x0e",
                             body="m = sum_j fuse{h[i], h[j], y} * g -> 0e + 1o weights uuu\n"
                                  "    o = linear(cat(h, m))"),
    "edge_weights": _BLOCK.format(name="edge_weights", legs="h: 2x0e + 2x1o, y: edge sh(1)",
                                  body="o = sum_j fuse(h[j], y) -> 0e + 1o weights uvu external"),
}
Args = list[torch.Tensor]
Case = tuple[str, str, Callable[[], tuple[torch.nn.Module, Args]]]


def load(spec: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The C layer (float64) and an einsum twin with the same weights."""
    text = SPECS[spec]
    prog = fusiondsl.load(text) if text.endswith(".fd") else fusiondsl.loads(text)
    c = prog.compile(spec, backend="c").double()
    ref = prog.compile(spec, backend="einsum").double()
    ref.load_state_dict(c.state_dict())
    return c, ref


def names(layer: torch.nn.Module) -> list[str]:
    d = layer.diagram
    out = [leg.name for leg in d.legs] + (["edge_index"] if d.is_neighbourhood else [])
    return out + (["weight"] if layer.external_weight_numel else [])


def replaced(xs: Args, i: int, x: object) -> Args:
    return [*xs[:i], x, *xs[i + 1:]]  # type: ignore[list-item]


def strided(x: torch.Tensor) -> torch.Tensor:
    """The same values with stride 2 in the last dimension (a non-contiguous view)."""
    return torch.stack([x, torch.zeros_like(x)], dim=-1)[..., 0]


def argument_cases(c: torch.nn.Module, xs: Args) -> list[Case]:
    """Per floating argument: wrong width, dtypes, devices, layouts; odd but valid views."""
    cases: list[Case] = []
    for i, name in enumerate(names(c)):
        if name == "edge_index":
            continue
        x = xs[i]
        bad = {"narrow": x[..., :-1], "float32": x.float(), "int64": x.long(),
               "complex": x.to(torch.complex128), "meta": x.to("meta"), "sparse": x.to_sparse(),
               "scalar": x[0, 0], "list": x.tolist()}
        cases += [(f"{name}:{k}", f"error:{name}", lambda v=v, i=i: (c, replaced(xs, i, v)))
                  for k, v in bad.items()]
        good = {"transposed": x.t().contiguous().t(), "strided": strided(x),
                "neg_view": torch._neg_view(-x), "offset": torch.cat([x[:1], x])[1:]}
        cases += [(f"{name}:{k}", "value", lambda v=v, i=i: (c, replaced(xs, i, v)))
                  for k, v in good.items()]
    return cases


def index_cases(c: torch.nn.Module, xs: Args) -> list[Case]:
    """``edge_index``: wrong dtype, shape, values, device; int32 and non-contiguous."""
    i = names(c).index("edge_index")
    e = xs[i]
    bad = {"float": e.double(), "rows3": torch.cat([e, e[:1]]), "flat": e.reshape(-1),
           "too_big": e.clone().fill_(10 ** 6), "negative": e - e.max() - 1, "meta": e.to("meta")}
    good = {"int32": e.int(), "strided": strided(e), "transposed": e.t().contiguous().t()}
    return ([(f"edge_index:{k}", "error:edge_index", lambda v=v: (c, replaced(xs, i, v)))
             for k, v in bad.items()]
            + [(f"edge_index:{k}", "value", lambda v=v: (c, replaced(xs, i, v)))
               for k, v in good.items()])


def empty(c: torch.nn.Module, xs: Args) -> Args:
    """Zero rows everywhere (no batch; or no nodes and no edges)."""
    return [x[:0] if x.dtype != torch.int64 else x[:, :0] for x in xs]


def no_edges(c: torch.nn.Module, xs: Args) -> Args:
    """Nodes but no edges: every edge tensor (and edge_index) empty."""
    d = c.diagram
    domains = [leg.domain for leg in d.legs] + ["index"] + ["edge"] * (len(xs) - len(d.legs) - 1)
    return [x[:, :0] if dom == "index" else x[:0] if dom == "edge" else x
            for x, dom in zip(xs, domains)]


def call_cases(c: torch.nn.Module, xs: Args, fresh: Callable[[], torch.nn.Module]
               ) -> list[Case]:
    """Whole-call cases: counts, empty batches, batch shapes, dtypes and devices of the layer.

    A case that converts the layer converts a fresh one (``fresh``), so that the others keep
    float64 weights.
    """
    cases: list[Case] = [
        ("good", "value", lambda: (c, xs)),
        ("too_few", "error:count", lambda: (c, xs[:-1])),
        ("too_many", "error:count", lambda: (c, [*xs, xs[0]])),
        ("empty", "value", lambda: (c, empty(c, xs))),
        ("strided_gradients", "grad", lambda: (c, [strided(x) if x.is_floating_point() else x
                                                   for x in xs])),
        ("float32_layer", "value", lambda: (fresh().float(), [
            x.float() if x.is_floating_point() else x for x in xs])),
        ("meta_layer", f"error:{names(c)[0]}", lambda: (fresh().to("meta"), [
            x.to("meta") for x in xs])),
    ]
    if c.diagram.is_neighbourhood:
        cases.append(("no_edges", "value", lambda: (c, no_edges(c, xs))))
        return cases + index_cases(c, xs)
    first = names(c)[0]
    return [
        *cases,
        ("unbatched", "value", lambda: (c, [x[0] for x in xs])),
        ("broadcast", "value", lambda: (c, [xs[0][:1], *xs[1:]])),
        ("batch_2d", "value", lambda: (c, [x.expand(2, *x.shape) for x in xs])),
        ("batch_mismatch", "error:batch", lambda: (c, [xs[0][:2], *xs[1:]])),
        (f"{first}:expanded", "value", lambda: (c, [xs[0][:1].expand_as(xs[0]), *xs[1:]])),
    ]


def judge(expect: str, c: torch.nn.Module, ref: torch.nn.Module, xs: Args) -> dict:
    """Run one call; what came, and whether it is what the case expects."""
    try:
        out = c(*xs)
    except Exception as err:  # any exception is reported; the parent judges it
        text = str(err)
        wanted = expect.split(":", 1)[1] if expect.startswith("error") else None
        named = wanted in ("count", "batch") or f"'{wanted}'" in text
        ok = (wanted is not None and isinstance(err, (ValueError, TypeError))
              and "\n" not in text and named)
        return {"ok": ok, "got": f"{type(err).__name__}: {text}"}
    if expect != "value":
        return {"ok": False, "got": f"a value of shape {list(out.shape)}"}
    real = [x.double() if x.is_floating_point() else x for x in xs
            if isinstance(x, torch.Tensor)]
    want = ref.double()(*[x.to("cpu") for x in real])
    if out.shape != want.shape:
        return {"ok": False, "got": f"shape {list(out.shape)}, want {list(want.shape)}"}
    err = (out.double().cpu() - want).abs().max().item() if want.numel() else 0.0
    scale = want.abs().max().item() if want.numel() else 1.0
    tol = 1e-10 if out.dtype == torch.float64 else 1e-4
    good = err <= tol * max(1.0, scale)
    return {"ok": good, "got": f"shape {list(out.shape)}, error {err:.1e}"}


def gradients(layer: torch.nn.Module, xs: Args) -> torch.Tensor:
    """The first derivatives of a fixed projection of the output, w.r.t. every float input."""
    leaves = [x.detach().requires_grad_() if x.is_floating_point() else x for x in xs]
    out = layer(*leaves)
    cot = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    floats = [x for x in leaves if x.is_floating_point()]
    grads = torch.autograd.grad((out * cot).sum(), floats)
    return torch.cat([g.reshape(-1) for g in grads])


def judge_grad(c: torch.nn.Module, ref: torch.nn.Module, xs: Args) -> dict:
    """Gradients through non-contiguous inputs equal einsum's."""
    got, want = gradients(c, xs), gradients(ref, [x.contiguous() for x in xs])
    err = (got - want).abs().max().item() / max(1.0, want.abs().max().item())
    return {"ok": err <= 1e-10, "got": f"gradient error {err:.1e}"}


def main(spec: str) -> None:
    torch.set_num_threads(1)
    c, ref = load(spec)
    xs = random_inputs(c, num_nodes=4, degree=2)
    def fresh() -> torch.nn.Module:
        layer = load(spec)[0]
        layer.load_state_dict(c.state_dict())
        return layer

    for name, expect, make in [*call_cases(c, xs, fresh), *argument_cases(c, xs)]:
        print(json.dumps({"start": name}), flush=True)
        layer, args = make()
        result = (judge_grad(layer, ref, args) if expect == "grad"
                  else judge(expect, layer, ref, args))
        print(json.dumps({"case": name, "expect": expect, **result}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])

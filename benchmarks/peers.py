"""The benchmark layers, each built three ways: fusiondsl, e3nn, cuequivariance-torch.

Every builder returns ``(module, inputs)``; fusiondsl and e3nn share weights wherever the two
compute the same function, so the benchmark also checks that they agree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import fusiondsl
from fusiondsl.nn.timing import e3nn_peer, inputs_for

H = "32x0e + 32x1o + 32x2e"
SPECS = {
    "fctp": f"diagram fctp(x: {H}, y: 0e + 1o + 2e) -> z: {H} {{ z = fuse(x, y) weights uvw }}",
    "conv": f"diagram conv(h: {H}, y: sh(3)) -> m: 32x(0e + 1o + 2e + 3o) "
            "{ m = fuse(h, y) weights uvu external }",
    "fusion3": "let X = 16x(0e + 1o + 2e)\n"
               "diagram fusion3(a: X, b: X, c: X) -> o: X {\n"
               "    t = fuse(a, b) -> 0e + 1o + 1e + 2e\n    o = fuse(t, c) weights uuu\n}",
    "symmetric": "diagram product_basis(A: 16x(0e + 1o + 2e + 3o)) -> B: 16x(0e + 1o) "
                 "{ B = fuse(A, A, A) weights uuu }",
}
BATCH = {"fctp": 10000, "conv": 10000, "fusion3": 10000, "symmetric": 1000}
Built = tuple[torch.nn.Module, list[torch.Tensor]]


def fusiondsl_layer(name: str, dtype: torch.dtype, batch: int, strategy: str = "auto") -> Built:
    """The layer compiled from its spec."""
    layer = fusiondsl.loads(SPECS[name]).compile(backend="einsum", strategy=strategy,
                                                 batch=batch).to(dtype)
    extra = layer.external_weight_numel
    return layer, inputs_for(layer.irreps_in, batch, dtype, extra)


def e3nn_layer(name: str, dtype: torch.dtype, batch: int) -> Built | None:
    """e3nn's counterpart: the same function with weights copied for fctp and conv (checked by
    the tests' e3nn peer), the same two-stage structure for fusion3, a reference for symmetric."""
    ours, xs = fusiondsl_layer(name, dtype, batch)
    if name in ("fctp", "conv"):
        peer = e3nn_peer(ours)
        return (peer.to(dtype), xs) if peer is not None else None
    from e3nn import o3

    if name == "fusion3":
        return _e3nn_fusion3(ours, xs, o3, dtype)
    return _e3nn_symmetric(xs, o3, dtype)


def _e3nn_fusion3(ours: torch.nn.Module, xs: list, o3, dtype: torch.dtype) -> Built:
    a = str(ours.irreps_in[0])
    t_entries = ours.diagram.nodes[0].irreps
    ins1 = [(i, j, n, "uuu", False) for n, (i, j) in enumerate(_pairs(ours, 0))]
    tp1 = o3.TensorProduct(a, a, str(t_entries), ins1)
    p2 = [p for p in ours.plan.paths.paths if p.node == 1]
    ins2 = [(p.inputs[0], p.inputs[1], p.out_entry, "uuu", True) for p in p2]
    tp2 = o3.TensorProduct(str(t_entries), a, str(ours.irreps_out), ins2)
    with torch.no_grad():
        tp2.weight.copy_(ours.weight)

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tp1, self.tp2 = tp1, tp2

        def forward(self, x, y, z):
            return self.tp2(self.tp1(x, y), z)

    return Chain().to(dtype), xs


def _pairs(ours: torch.nn.Module, node: int) -> list[tuple[int, int]]:
    return [p.inputs for p in ours.plan.paths.paths if p.node == node]


def _e3nn_symmetric(xs: list, o3, dtype: torch.dtype) -> Built:
    """A reference amount of work, as one would write it with e3nn: A ⊗ A → every label up to
    3 (channel-wise), then ⊗ A → 0e + 1o with one weight per path and channel (uuu). Unlike
    fusiondsl's it keeps the linearly dependent paths, so the two are not numerically equal."""
    a = o3.Irreps("16x0e + 16x1o + 16x2e + 16x3o")
    mids, ins1 = [], []
    for i, (_, x1) in enumerate(a):
        for j, (_, x2) in enumerate(a):
            for ir in x1 * x2:
                if ir.l <= 3:
                    ins1.append((i, j, len(mids), "uuu", False))
                    mids.append((16, ir))
    mid = o3.Irreps(mids)
    tp1 = o3.TensorProduct(a, a, mid, ins1)
    out = o3.Irreps("16x0e + 16x1o")
    ins = [(i, j, k, "uuu", True) for i, (_, x1) in enumerate(mid)
           for j, (_, x2) in enumerate(a) for k, (_, x3) in enumerate(out) if x3 in x1 * x2]
    tp2 = o3.TensorProduct(mid, a, out, ins)

    class Chain(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tp1, self.tp2 = tp1, tp2

        def forward(self, x):
            return self.tp2(self.tp1(x, x), x)

    return Chain().to(dtype), xs


def cue_layer(name: str, dtype: torch.dtype, batch: int) -> Built | None:
    """cuequivariance-torch (CPU: method='naive') for the two e3nn-style layers."""
    if name not in ("fctp", "conv"):
        return None
    try:
        import cuequivariance as cue
        import cuequivariance_torch as cuet
    except ImportError:
        return None
    irr = lambda s: cue.Irreps("O3", s.replace(" ", ""))  # noqa: E731
    _, xs = fusiondsl_layer(name, dtype, batch)
    if name == "fctp":
        m = cuet.FullyConnectedTensorProduct(irr(H), irr("0e+1o+2e"), irr(H), layout=cue.mul_ir,
                                             method="naive", device="cpu", dtype=dtype)
    else:
        m = cuet.ChannelWiseTensorProduct(irr(H), irr("0e+1o+2e+3o"),
                                          filter_irreps_out=irr("0e+1o+2e+3o"),
                                          layout=cue.mul_ir, shared_weights=False,
                                          internal_weights=False, method="naive", device="cpu",
                                          dtype=dtype)
        xs = [*xs[:2], torch.randn(batch, m.weight_numel, dtype=dtype).requires_grad_()]
    return m, xs


IMPLS: dict[str, Callable[[str, torch.dtype, int], Built | None]] = {
    "fusiondsl": fusiondsl_layer,
    "e3nn": e3nn_layer,
    "cuequivariance": cue_layer,
}

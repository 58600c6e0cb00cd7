"""Equality with e3nn: DSL layers with carried-over weights, and from_e3nn on random cases."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fusiondsl

o3 = pytest.importorskip("e3nn.o3")


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("irrep_norm", ["component", "norm"])
@pytest.mark.parametrize("path_norm", ["element", "path"])
def test_dsl_fctp_equals_e3nn(irrep_norm: str, path_norm: str) -> None:
    text = "diagram d(x: 4x0e + 3x1o + 2x2e, y: sh(2)) -> z: 2x0e + 3x1o + 2x1e + 2x2e " \
           "{ z = fuse(x, y) weights uvw }"
    layer = fusiondsl.loads(text).compile(irrep_normalization=irrep_norm,
                                         path_normalization=path_norm)
    tp = o3.FullyConnectedTensorProduct("4x0e+3x1o+2x2e", "0e+1o+2e", "2x0e+3x1o+2x1e+2x2e",
                                        irrep_normalization=irrep_norm,
                                        path_normalization=path_norm)
    assert layer.weight_numel == tp.weight_numel
    assert len(layer.plan.paths.paths) == len(tp.instructions)
    with torch.no_grad():
        layer.weight.copy_(tp.weight)
    x, y = torch.randn(7, tp.irreps_in1.dim), torch.randn(7, tp.irreps_in2.dim)
    torch.testing.assert_close(layer(x, y), tp(x, y), atol=1e-12, rtol=1e-10)


def test_dsl_conv_equals_e3nn_uvu() -> None:
    text = "diagram conv(h: 8x(0e + 1o + 2e), y: sh(3)) -> m: 8x(0e + 1o + 2e + 3o) " \
           "{ m = fuse(h, y) weights uvu external }"
    layer = fusiondsl.loads(text).compile()
    i1, i2 = o3.Irreps("8x0e+8x1o+8x2e"), o3.Irreps("0e+1o+2e+3o")
    out = o3.Irreps("8x0e+8x1o+8x2e+8x3o")
    ins = [(a, b, c, "uvu", True) for a, (_, x1) in enumerate(i1) for b, (_, x2) in enumerate(i2)
           for c, (_, x3) in enumerate(out) if x3 in x1 * x2]
    tp = o3.TensorProduct(i1, i2, out, ins, shared_weights=False, internal_weights=False)
    assert len(ins) == 17 and layer.weight_numel == tp.weight_numel
    x, y, w = torch.randn(5, i1.dim), torch.randn(5, i2.dim), torch.randn(5, tp.weight_numel)
    torch.testing.assert_close(layer(x, y, w), tp(x, y, w), atol=1e-12, rtol=1e-10)


LABELS = ["0e", "0o", "1o", "1e", "2e", "2o", "3o"]
MODES = ["uvw", "uvu", "uvv", "uuw", "uuu", "uvuv"]


@st.composite
def tensor_products(draw):
    mode = draw(st.sampled_from(MODES))
    mul = draw(st.integers(1, 3))
    same = mode in ("uuw", "uuu")
    labels = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True)
    i1 = o3.Irreps([(draw(st.integers(1, 3)) if not same else mul, ir) for ir in draw(labels)])
    i2 = o3.Irreps([(draw(st.integers(1, 3)) if not same else mul, ir) for ir in draw(labels)])
    outs = [ir for _, a in i1 for _, b in i2 for ir in a * b]
    wmul = draw(st.integers(1, 3))
    chosen = draw(st.lists(st.sampled_from(sorted(set(outs), key=str)), min_size=1, max_size=3,
                           unique=True))
    out_entries, ins = [], []
    for ir in chosen:
        for a, (m1, x1) in enumerate(i1):
            for b, (m2, x2) in enumerate(i2):
                if ir in x1 * x2:
                    weighted = draw(st.booleans()) or mode == "uvw"
                    m3 = {"uvw": wmul, "uvu": m1, "uvv": m2, "uuw": wmul if weighted else 1,
                          "uuu": m1, "uvuv": m1 * m2}[mode]
                    ins.append((a, b, len(out_entries), mode, weighted,
                                draw(st.sampled_from([1.0, 0.5, 2.0]))))
                    out_entries.append((m3, ir))
    shared = draw(st.booleans())
    internal = shared and draw(st.booleans())
    return o3.TensorProduct(i1, i2, o3.Irreps(out_entries), ins, shared_weights=shared,
                            internal_weights=internal,
                            irrep_normalization=draw(st.sampled_from(["component", "norm"])),
                            path_normalization=draw(st.sampled_from(["element", "path"])))


@settings(max_examples=40, deadline=None)
@given(tensor_products())
def test_from_e3nn_equals_e3nn(tp) -> None:
    layer = fusiondsl.from_e3nn(tp)
    assert layer.weight_numel == tp.weight_numel
    x, y = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, tp.irreps_in2.dim)
    args = [x, y]
    if not tp.internal_weights and tp.weight_numel:
        shape = (tp.weight_numel,) if tp.shared_weights else (3, tp.weight_numel)
        args.append(torch.randn(*shape))
    torch.testing.assert_close(layer(*args), tp(*args), atol=1e-10, rtol=1e-10)


def test_from_e3nn_fully_connected_keeps_weights_and_gradients() -> None:
    tp = o3.FullyConnectedTensorProduct("2x0e+2x1o", "1o+2e", "2x1o+1x2e+3x0e")
    layer = fusiondsl.from_e3nn(tp)
    x = torch.randn(4, tp.irreps_in1.dim, requires_grad=True)
    y = torch.randn(4, tp.irreps_in2.dim)
    torch.testing.assert_close(layer(x, y), tp(x, y), atol=1e-12, rtol=1e-10)
    g1, = torch.autograd.grad(layer(x, y).sum(), x)
    g2, = torch.autograd.grad(tp(x, y).sum(), x)
    torch.testing.assert_close(g1, g2)


def test_from_e3nn_refuses_unsupported_modes() -> None:
    tp = o3.TensorProduct("2x1o", "2x1o", "1x0e", [(0, 0, 0, "uvu<v", True)])
    with pytest.raises(ValueError, match="not supported"):
        fusiondsl.from_e3nn(tp)

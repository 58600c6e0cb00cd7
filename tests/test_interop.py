"""Equality with e3nn: DSL layers with carried-over weights, and from_e3nn on random cases."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fusiondsl

o3 = pytest.importorskip("e3nn.o3")


pytestmark = pytest.mark.usefixtures("float64_default")


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


@settings(max_examples=15, deadline=None)
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


def _args(tp, batch: int = 4, square: bool = False) -> list[torch.Tensor]:
    xs = [torch.randn(batch, (tp.irreps_in if square else tp.irreps_in1).dim)]
    if not square:
        xs.append(torch.randn(batch, tp.irreps_in2.dim))
    if not tp.internal_weights and tp.weight_numel:
        xs.append(torch.randn(*(() if tp.shared_weights else (batch,)), tp.weight_numel))
    return xs


def test_unreached_output_blocks_are_zeros_as_in_e3nn() -> None:
    # 3e is reachable from no pair of inputs; 2x1e is reachable but no instruction writes it
    fctp = o3.FullyConnectedTensorProduct("2x0e+2x1o", "1o+2e", "2x1o+2x3e+1x2e")
    tp = o3.TensorProduct("2x1o", "1x1o", "2x0e+2x1e+2x2e", [(0, 0, 0, "uvu", True),
                                                              (0, 0, 2, "uvu", True)])
    for m in (fctp, tp):
        layer = fusiondsl.from_e3nn(m)
        args = _args(m)
        out = layer(*args)
        torch.testing.assert_close(out, m(*args), atol=1e-12, rtol=1e-12)
    assert out[:, 2:8].abs().max() == 0


def test_empty_instruction_list_is_a_zero_layer() -> None:
    tp = o3.TensorProduct("2x1o", "2x1o", "1x0e+1x2e", [])
    layer = fusiondsl.from_e3nn(tp)
    x, y = torch.randn(3, 6), torch.randn(3, 6)
    assert layer(x, y).shape == (3, 6) and not layer(x, y).abs().sum()
    assert layer.weight_numel == 0


@pytest.mark.parametrize("irreps_out", [None, "2x0e+3x1o+2x2e+1x1e"])
def test_tensor_square_both_modes(irreps_out) -> None:
    tp = o3.TensorSquare("3x0e+2x1o+1x2e", irreps_out)
    layer = fusiondsl.from_e3nn(tp)
    x = torch.randn(5, tp.irreps_in.dim, requires_grad=True)
    torch.testing.assert_close(layer(x), tp(x), atol=1e-12, rtol=1e-12)
    g1, = torch.autograd.grad(layer(x).square().sum(), x)
    g2, = torch.autograd.grad(tp(x).square().sum(), x)
    torch.testing.assert_close(g1, g2, atol=1e-12, rtol=1e-12)
    if irreps_out is not None:  # weights carried over and trained the same
        w1, = torch.autograd.grad(layer(x).sum(), layer.weight)
        w2, = torch.autograd.grad(tp(x).sum(), tp.weight)
        torch.testing.assert_close(w1, w2, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, {"biases": True},
                                    {"internal_weights": False, "shared_weights": False},
                                    {"instructions": [(2, 0), (1, 1)], "path_normalization":
                                     "path"}])
def test_linear(kwargs) -> None:
    lin = o3.Linear("3x0e+2x1o+1x0e", "2x0e+4x1o+1x2e", **kwargs)
    if lin.bias_numel:
        with torch.no_grad():
            lin.bias.normal_()
    layer = fusiondsl.from_e3nn(lin)
    x = torch.randn(4, lin.irreps_in.dim)
    args = [x] if lin.internal_weights else [x, torch.randn(4, lin.weight_numel)]
    torch.testing.assert_close(layer(*args), lin(*args), atol=1e-12, rtol=1e-12)


def test_uvu_less_than_v_and_mixed_modes_into_one_entry() -> None:
    tp = o3.TensorProduct("3x1o", "3x1o", "3x0e+3x1e", [(0, 0, 0, "uvu<v", False, 2.0),
                                                       (0, 0, 1, "uvu<v", True),
                                                       (0, 0, 0, "uuu", True)],
                          shared_weights=False, internal_weights=False)
    layer = fusiondsl.from_e3nn(tp)
    args = _args(tp)
    torch.testing.assert_close(layer(*args), tp(*args), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("strategy", ["auto", "grouped", "per-path"])
def test_external_uuu_of_one_channel_under_every_strategy(strategy: str) -> None:
    # per-sample uuu weights of one channel once lost their channel axis in the grouped einsum
    # lowering; from_e3nn no longer forces per-path plans for them
    tp = o3.TensorProduct("1x0e+1x1o+1x2e", "0e+1o+2e", "1x1o+1x2e+1x1e",
                          [(1, 1, 1, "uuu", True), (1, 2, 0, "uuu", True),
                           (2, 1, 0, "uuu", True), (0, 1, 0, "uuu", True)],
                          shared_weights=False, internal_weights=False)
    layer = fusiondsl.from_e3nn(tp, strategy=strategy)
    args = _args(tp)
    torch.testing.assert_close(layer(*args), tp(*args), atol=1e-12, rtol=1e-12)


def test_c_backend_splits_mixed_modes() -> None:
    from fusiondsl.backends.c.runtime import available

    if not available():
        pytest.skip("no C compiler with OpenMP")
    tp = o3.TensorProduct("2x0e+2x1e", "1x1o", "2x1o", [(0, 0, 0, "uvu", True),
                                                        (1, 0, 0, "uvw", True)])
    layer = fusiondsl.from_e3nn(tp, backend="c")
    args = _args(tp)
    torch.testing.assert_close(layer(*args), tp(*args), atol=1e-12, rtol=1e-12)


def test_from_e3nn_takes_the_compile_options() -> None:
    tp = o3.FullyConnectedTensorProduct("4x0e", "1x0e", "4x0e")
    layer = fusiondsl.from_e3nn(tp, backend="einsum", strategy="per-path", batch=64)
    assert layer.plan.strategy == "per-path"
    with pytest.raises(ValueError, match="unknown backend"):
        fusiondsl.from_e3nn(tp, backend="fortran")
    with pytest.raises(ValueError, match="read from the e3nn layer"):
        fusiondsl.from_e3nn(tp, irrep_normalization="norm")
    with pytest.raises(TypeError, match="unknown compile option"):
        fusiondsl.from_e3nn(tp, colour="blue")


def test_from_e3nn_refuses_other_modules_in_one_line() -> None:
    for m in (o3.SphericalHarmonics(2, True), torch.nn.Linear(2, 2),
              o3.Linear("2x1o", "3x1o", f_in=2, f_out=3)):
        with pytest.raises(ValueError) as err:
            fusiondsl.from_e3nn(m)
        assert "\n" not in str(err.value) and type(m).__name__ in str(err.value)


def test_to_fd_round_trip() -> None:
    tp = o3.FullyConnectedTensorProduct("2x0e+2x1o", "1o+2e", "2x1o+1x2e+3x0e",
                                        irrep_normalization="norm")
    text = fusiondsl.to_fd(tp)
    assert "z = fuse(x, y) weights uvw" in text and "irrep_normalization='norm'" in text
    from fusiondsl.nn.interop_fd import fd_text

    fd = fd_text(tp, "d")
    layer = fusiondsl.loads(fd.text).compile(backend="einsum", **fd.options)
    with torch.no_grad():
        layer.weight.copy_(tp.weight[list(fd.weight_order)])
    args = _args(tp)
    torch.testing.assert_close(layer(*args), tp(*args), atol=1e-12, rtol=1e-12)


def test_to_fd_linear_and_conv() -> None:
    assert "z = linear(x)" in fusiondsl.to_fd(o3.Linear("3x0e+2x1o", "2x0e+4x1o"))
    ins = [(0, 0, 0, "uvu", True), (0, 1, 1, "uvu", True)]
    tp = o3.TensorProduct("4x0e", "0e+1o", "4x0e+4x1o", ins, shared_weights=False,
                          internal_weights=False)
    assert "weights uvu external" in fusiondsl.to_fd(tp)


@pytest.mark.parametrize(("tp", "why"), [
    (lambda: o3.TensorSquare("2x1o"), "TensorSquare"),
    (lambda: o3.FullyConnectedTensorProduct("1x1o", "1x1o", "1x0e+1x3e"), "reached by no path"),
    (lambda: o3.TensorProduct("2x1o", "1x1o", "2x1e", [(0, 0, 0, "uvu", True),
                                                       (0, 0, 0, "uvw", True)]), "mixes"),
    (lambda: o3.FullTensorProduct("2x1o", "1x1o"), "without weights"),
    (lambda: o3.TensorProduct("2x1o", "1x1o", "1x0e", []), "empty instruction list"),
])
def test_to_fd_names_what_the_language_cannot_say(tp, why) -> None:
    with pytest.raises(ValueError, match=why):
        fusiondsl.to_fd(tp())


def test_convention_of_e3nn_0_6_is_fusiondsls() -> None:
    from fusiondsl.nn.interop_convention import signs

    tp = o3.FullyConnectedTensorProduct("1x1o", "1x1o", "1x0e")
    keys = [(mode, True, a, b, c) for mode in ("uvw", "uuu") for a in range(4)
            for b in range(4) for c in range(abs(a - b), a + b + 1)]
    assert set(signs(tp, keys).values()) == {1.0}


def test_convention_sign_is_measured_not_assumed() -> None:
    import numpy as np

    from fusiondsl.nn.interop_convention import ConventionError, _sign

    ours = np.eye(3).reshape(3, 3, 1) / 3 ** 0.5
    assert _sign(ours, ours, (1, 1, 0), "uvw") == 1.0
    assert _sign(-ours, ours, (1, 1, 0), "uvw") == -1.0
    with pytest.raises(ConventionError, match="neither"):
        _sign(2 * ours, ours, (1, 1, 0), "uvw")

"""fusiondsl.swap on a hand-built model with e3nn modules inside: same energies and forces."""

from __future__ import annotations

import copy

import pytest
import torch

import fusiondsl
from fusiondsl.nn.swap import LEFT_NOT_A_PRODUCT, SYMMETRIC_CONTRACTION

e3nn_nn = pytest.importorskip("e3nn.nn")
o3 = pytest.importorskip("e3nn.o3")


pytestmark = pytest.mark.usefixtures("float64_default")


class SymmetricContraction(torch.nn.Module):
    """Stands in for MACE's module of that name (the swap must leave it and say why)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


SymmetricContraction.__module__ = "mace.modules.symmetric_contraction"


class TinyPotential(torch.nn.Module):
    """A NequIP/MACE-shaped model: embed, convolve (uvu, per-edge weights), mix, read out."""

    def __init__(self) -> None:
        super().__init__()
        hidden = o3.Irreps("4x0e+2x1o+2x2e")
        self.sh = o3.SphericalHarmonics("0e+1o+2e", normalize=True, normalization="component")
        self.embed = o3.Linear("3x0e", "4x0e")
        irreps_mid, ins = [], []
        for i, (mul, ir) in enumerate(o3.Irreps("4x0e")):
            for j, (_, ir2) in enumerate(self.sh.irreps_out):
                for ir3 in ir * ir2:
                    if ir3 in hidden:
                        ins.append((i, j, len(irreps_mid), "uvu", True))
                        irreps_mid.append((mul, ir3))
        self.conv = o3.TensorProduct("4x0e", self.sh.irreps_out, irreps_mid, ins,
                                     shared_weights=False, internal_weights=False)
        self.radial = e3nn_nn.FullyConnectedNet([1, 8, self.conv.weight_numel], torch.tanh)
        self.mix = o3.Linear(irreps_mid, hidden)
        self.square = o3.TensorSquare(hidden, "3x0e+1x1o")
        self.skip = o3.FullyConnectedTensorProduct(hidden, "3x0e", "3x0e+1x1o")
        self.contraction = SymmetricContraction()
        self.readout = torch.nn.ModuleList([o3.Linear("3x0e+1x1o", "1x0e")])

    def forward(self, species: torch.Tensor, pos: torch.Tensor,
                edges: torch.Tensor) -> torch.Tensor:
        vec = pos[edges[1]] - pos[edges[0]]
        y = self.sh(vec)
        w = self.radial(vec.norm(dim=-1, keepdim=True))
        h = self.embed(species)
        m = torch.zeros(pos.shape[0], self.conv.irreps_out.dim).index_add(
            0, edges[0], self.conv(h[edges[1]], y, w))
        h2 = self.mix(m)
        out = self.square(h2) + self.skip(h2, species)
        return self.readout[0](self.contraction(out)).sum()


def _system(n: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    species = torch.nn.functional.one_hot(torch.randint(0, 3, (n,), generator=gen), 3).double()
    pos = torch.randn(n, 3, generator=gen)
    edges = torch.tensor([(i, j) for i in range(n) for j in range(n) if i != j]).T
    return species, pos, edges


def _energy_forces(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    species, pos, edges = _system()
    pos.requires_grad_()
    energy = model(species, pos, edges)
    forces, = torch.autograd.grad(-energy, pos)
    return energy.detach(), forces


def test_swap_replaces_products_and_keeps_energy_and_forces() -> None:
    torch.manual_seed(0)
    model = TinyPotential()
    before = _energy_forces(model)
    report = fusiondsl.swap(model)
    replaced = {e.name for e in report.replaced}
    assert replaced == {"embed", "conv", "mix", "square", "skip", "readout.0"}, str(report)
    left = {e.name: e.why for e in report.left}
    assert left["sh"] == LEFT_NOT_A_PRODUCT and left["radial"] == LEFT_NOT_A_PRODUCT
    assert left["contraction"] == SYMMETRIC_CONTRACTION
    assert not any(type(m).__module__.startswith("e3nn.o3._tensor_product")
                   for m in model.modules())
    after = _energy_forces(model)
    torch.testing.assert_close(after[0], before[0], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(after[1], before[1], atol=1e-10, rtol=1e-10)
    assert "replaced conv (TensorProduct)" in str(report)
    assert "external weights per call" in {e.name: e.why for e in report.replaced}["conv"]


def test_swap_replaces_the_product_inside_a_gate() -> None:
    # NequIP's nonlinearity: an e3nn Gate multiplies gates into features by an
    # ElementwiseTensorProduct; that is replaced, its activations are reported as left
    torch.manual_seed(2)
    gate = e3nn_nn.Gate("3x0e+1x0o", [torch.tanh, torch.tanh], "3x0e", [torch.sigmoid],
                        "1x1o+1x1e+1x2e")
    model = torch.nn.Sequential(gate)
    x = torch.randn(5, gate.irreps_in.dim)
    before = model(x)
    report = fusiondsl.swap(model)
    assert [e.name for e in report.replaced] == ["0.mul"], str(report)
    assert {"0.act_scalars", "0.act_gates"} <= {e.name for e in report.left}
    torch.testing.assert_close(model(x), before, atol=1e-12, rtol=1e-12)


def test_swap_carries_weights_and_trains_the_same() -> None:
    torch.manual_seed(1)
    model = TinyPotential()
    swapped, report = fusiondsl.swap(model, inplace=False)
    assert len(report.replaced) == 6
    assert sum(p.numel() for p in swapped.parameters()) == \
        sum(p.numel() for p in model.parameters())
    species, pos, edges = _system()
    g_old = torch.autograd.grad(model(species, pos, edges), model.mix.weight)[0]
    g_new = torch.autograd.grad(swapped(species, pos, edges), swapped.mix.weight)[0]
    torch.testing.assert_close(g_new, g_old, atol=1e-10, rtol=1e-10)


def test_swap_leaves_a_product_whose_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import fusiondsl.nn.swap as swap_module

    monkeypatch.setattr(swap_module, "_check", lambda new, old, what: "check failed: test")
    model = torch.nn.Sequential(o3.Linear("2x0e", "2x0e"))
    report = fusiondsl.swap(model)
    assert [(e.name, e.action, e.why) for e in report.entries] == \
        [("0", "left", "check failed: test")]
    assert type(model[0]).__name__ == "Linear"


def test_swap_on_the_c_backend() -> None:
    from fusiondsl.backends.c.runtime import available

    if not available():
        pytest.skip("no C compiler with OpenMP")
    torch.manual_seed(2)
    model = torch.nn.Sequential(o3.Linear("3x0e+2x1o", "2x0e+2x1o"))
    x = torch.randn(4, 9)
    before = model(x)
    report = fusiondsl.swap(model, backend="c")
    assert [e.action for e in report.entries] == ["replaced"], str(report)
    torch.testing.assert_close(model(x), before, atol=1e-12, rtol=1e-12)


def test_swap_float32_model_stays_float32() -> None:
    torch.set_default_dtype(torch.float32)
    model = torch.nn.Sequential(o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x1o", "2x1o"))
    ref = copy.deepcopy(model[0])
    report = fusiondsl.swap(model)
    assert [e.action for e in report.entries] == ["replaced"], str(report)
    x, y = torch.randn(3, 5), torch.randn(3, 3)
    out = model[0](x, y)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref(x, y), atol=1e-5, rtol=1e-5)

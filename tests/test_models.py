"""The issue-8 models: symmetry at model level, their building blocks, their specs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusiondsl.core.wigner import irreps_D, random_rotation
from fusiondsl.models.blocks import EquivariantNorm
from fusiondsl.models.data import Structure, collate
from fusiondsl.models.experiment import build_model
from fusiondsl.models.radial import BesselBasis, RadialMLP
from fusiondsl.models.sh import SphericalHarmonics
from fusiondsl.models.specs import cormorant_layer, mace_layer
from fusiondsl.models.zoo import MODELS
from fusiondsl.nn.program import loads

CUTOFF = 4.0
SMALL = {"channels": 4, "cutoff": CUTOFF}


def cluster(seed: int, n: int = 7) -> Structure:
    rng = np.random.default_rng(seed)
    positions = rng.normal(size=(n, 3)) * 1.3
    numbers = rng.choice([28, 29], size=n)
    return Structure(numbers.astype(np.int64), positions, None, None)


def moved(s: Structure, matrix: np.ndarray, shift: np.ndarray | None = None,
          order: np.ndarray | None = None) -> Structure:
    positions = s.positions @ matrix.T + (0 if shift is None else shift)
    order = np.arange(len(s.numbers)) if order is None else order
    return Structure(s.numbers[order], positions[order], None, None)


def energy_forces(model, structures):
    batch = collate(structures, CUTOFF)
    positions = batch.positions.clone().requires_grad_(True)
    batch.positions = positions
    energy = model(batch)
    (grad,) = torch.autograd.grad(energy.sum(), positions)
    return energy.detach(), -grad


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    with torch.random.fork_rng():
        m = build_model(request.param, [28, 29], **SMALL).double()
    return m


@pytest.mark.parametrize("reflect", [False, True])
def test_energy_invariant_and_forces_equivariant(model, reflect):
    rng = np.random.default_rng(1)
    rotation = random_rotation(rng) * (-1 if reflect else 1)
    structures = [cluster(0), cluster(1, n=5)]
    turned = [moved(s, rotation, shift=rng.normal(size=3)) for s in structures]
    e, f = energy_forces(model, structures)
    e2, f2 = energy_forces(model, turned)
    assert f.abs().max() > 1e-4  # the check below is not vacuous
    # float64 round-off, amplified by the cubic products and the norms: still ~1e-10 relative
    torch.testing.assert_close(e2, e, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(f2, f @ torch.from_numpy(rotation).T, atol=1e-8, rtol=1e-8)


def test_energy_invariant_under_relabelling_atoms(model):
    s = cluster(2)
    order = np.random.default_rng(3).permutation(len(s.numbers))
    e, f = energy_forces(model, [s])
    e2, f2 = energy_forces(model, [moved(s, np.eye(3), order=order)])
    torch.testing.assert_close(e2, e, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(f2, f[torch.from_numpy(order)], atol=1e-8, rtol=1e-8)


def test_batched_energies_equal_one_at_a_time(model):
    structures = [cluster(4), cluster(5, n=6)]
    together, _ = energy_forces(model, structures)
    alone = torch.cat([energy_forces(model, [s])[0] for s in structures])
    torch.testing.assert_close(together, alone, atol=1e-10, rtol=1e-10)


def test_forces_are_minus_the_energy_gradient(model):
    s = cluster(6, n=4)
    _, forces = energy_forces(model, [s])
    step, atom, axis = 1e-5, 2, 1
    energies = []
    for sign in (1, -1):
        positions = s.positions.copy()
        positions[atom, axis] += sign * step
        energies.append(energy_forces(model, [Structure(s.numbers, positions, None, None)])[0])
    numeric = -(energies[0] - energies[1]) / (2 * step)
    torch.testing.assert_close(forces[atom, axis], numeric[0], atol=1e-7, rtol=1e-6)


def test_unknown_species_is_a_clear_error():
    m = build_model("mace", [28, 29], **SMALL)
    s = Structure(np.array([28, 8]), np.array([[0.0, 0, 0], [1.5, 0, 0]]), None, None)
    with pytest.raises(ValueError, match=r"atomic numbers \[8\] are not among"):
        m(collate([s], CUTOFF, dtype=torch.float32))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'schnet'; known: cofd, cormorant, mace"):
        build_model("schnet", [1])


def test_fusion_variants_add_the_fusion_diagrams():
    mace, mofd = (build_model(n, [28], **SMALL) for n in ("mace", "mofd"))
    assert "fuse(fuse(h[i], h[j]) -> 1o, y)" in mofd.specs[1]
    assert "h[i]" not in "".join(mace.specs)
    cofd = build_model("cofd", [28], **SMALL)
    assert "fuse{F[i], F[j], Y}" in cofd.specs[1]


def test_specs_parse_print_round_trip():
    for text in (mace_layer(4, 2, "4x0e", fusion_labels=("0e", "1o", "2e")),
                 cormorant_layer(4, 3, "4x(0e + 1o + 2e + 3o)", fusion=True)):
        program = loads("group O3\n" + text)
        assert loads(program.to_text()).to_text() == program.to_text()


def test_spherical_harmonics_equal_e3nn():
    e3nn = pytest.importorskip("e3nn.o3")
    vectors = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = SphericalHarmonics(4).double()(vectors)
    theirs = e3nn.spherical_harmonics(list(range(5)), vectors, normalize=True,
                                      normalization="component")
    torch.testing.assert_close(ours, theirs, atol=1e-13, rtol=1e-13)


def test_spherical_harmonics_rotate_with_wigner_d():
    rng = np.random.default_rng(7)
    rotation = random_rotation(rng)
    vectors = torch.from_numpy(rng.normal(size=(20, 3)))
    sh = SphericalHarmonics(3).double()
    from fusiondsl.core.irreps import Irreps
    d = torch.from_numpy(irreps_D(Irreps.spherical_harmonics(3), rotation))
    torch.testing.assert_close(sh(vectors @ torch.from_numpy(rotation).T), sh(vectors) @ d.T)


def test_radial_functions_vanish_smoothly_at_the_cutoff():
    r = torch.tensor([4.999999, 5.0, 6.0], dtype=torch.float64, requires_grad=True)
    values = BesselBasis(5.0, 6).double()(r)
    assert values[1:].abs().max() == 0
    assert values[0].abs().max() < 1e-12
    (grad,) = torch.autograd.grad(values.sum(), r)
    assert grad.abs().max() < 1e-9
    mlp = RadialMLP(5.0, 3, hidden=8).double()
    assert mlp(torch.tensor([5.0, 7.0], dtype=torch.float64)).abs().max() == 0


def test_equivariant_norm_is_equivariant_and_normalises():
    irreps = "3x0e + 2x1o + 2x2e"
    norm = EquivariantNorm(irreps).double()
    rng = np.random.default_rng(8)
    from fusiondsl.core.irreps import Irreps
    d = torch.from_numpy(irreps_D(Irreps.parse(irreps), random_rotation(rng)))
    x = torch.from_numpy(rng.normal(size=(5, d.shape[0]))) * 40
    torch.testing.assert_close(norm(x @ d.T), norm(x) @ d.T)
    scalars = norm(x)[:, :3]
    torch.testing.assert_close(scalars.pow(2).mean(-1), torch.ones(5, dtype=torch.float64),
                               atol=1e-6, rtol=1e-6)

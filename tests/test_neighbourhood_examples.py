"""The neighbourhood examples (CoFD, MoFD, NequIP): they compile, are equivariant, and
relabelling the nodes of the graph permutes their outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fusiondsl
from fusiondsl.nn.testing import equivariance_error, random_inputs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LAYERS = [("cofd", "cofd"), ("mofd", "mofd"), ("mofd", "mofd_dense"), ("nequip", "nequip")]
IDS = [name for _, name in LAYERS]


def _compile(spec: str, name: str) -> torch.nn.Module:
    """Compile one diagram of ``examples/<spec>.fd`` in float64."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return fusiondsl.load(EXAMPLES / f"{spec}.fd").compile(name).double()
    finally:
        torch.set_default_dtype(default)


@pytest.mark.parametrize(("spec", "name"), LAYERS, ids=IDS)
def test_example_compiles_and_is_equivariant(spec: str, name: str) -> None:
    layer = _compile(spec, name)
    assert layer.diagram.is_neighbourhood
    assert equivariance_error(layer, seed=1) < 1e-10


@pytest.mark.parametrize(("spec", "name"), LAYERS, ids=IDS)
def test_relabelling_nodes_permutes_outputs(spec: str, name: str) -> None:
    layer = _compile(spec, name)
    *legs, edge_index = random_inputs(layer, num_nodes=7, degree=3, seed=5)
    node = [leg.domain == "node" for leg in layer.diagram.legs]
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    inverse = torch.argsort(perm)  # node n is called inverse[n] after relabelling
    with torch.no_grad():
        out = layer(*legs, edge_index)
        moved = layer(*[x[perm] if n else x for x, n in zip(legs, node)], inverse[edge_index])
    torch.testing.assert_close(moved, out[perm], atol=1e-12, rtol=1e-10)


def test_sparse_and_dense_mofd_keep_the_same_paths() -> None:
    prog = fusiondsl.load(EXAMPLES / "mofd.fd")
    sparse, dense = prog.compile("mofd"), prog.compile("mofd_dense")
    assert sparse.plan.paths.num_paths == dense.plan.paths.num_paths

"""Test helpers for compiled layers: random inputs, group actions, equivariance errors.

Used by the test suite and the demo; they need only numpy and torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fusiondsl.core import wigner
from fusiondsl.core.irreps import Group, Irreps
from fusiondsl.ir.diagram import Diagram


def layer_group(layer: torch.nn.Module) -> Group:
    """The group of the diagram a layer was compiled from."""
    return layer.diagram.group  # type: ignore[no-any-return]


def is_complex(layer: torch.nn.Module) -> bool:
    """SU2 layers work on complex tensors."""
    return layer_group(layer) == "SU2"


def random_graph(num_nodes: int, degree: int, gen: torch.Generator) -> torch.Tensor:
    """``edge_index [2, E]`` (receiver, sender) with ``degree`` random neighbours per node."""
    receivers = torch.arange(num_nodes).repeat_interleave(degree)
    offsets = torch.randint(1, num_nodes, (num_nodes * degree,), generator=gen)
    senders = (receivers + offsets) % num_nodes
    return torch.stack([receivers, senders])


def random_inputs(
    layer: torch.nn.Module,
    batch: int = 3,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    num_nodes: int = 5,
    degree: int = 3,
) -> list[torch.Tensor]:
    """Random positional inputs for a layer (edge_index and external weights included)."""
    gen = torch.Generator().manual_seed(seed)
    d = layer.diagram
    if is_complex(layer):
        dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    if isinstance(d, Diagram) and d.is_neighbourhood:
        edge_index = random_graph(num_nodes, degree, gen)
        rows = {"node": num_nodes, "edge": edge_index.shape[1]}
        xs = [torch.randn(rows[leg.domain], leg.irreps.dim, generator=gen, dtype=dtype)
              for leg in d.legs]
        xs.append(edge_index)
        batch = edge_index.shape[1]
    else:
        xs = [torch.randn(batch, irreps.dim, generator=gen, dtype=dtype)
              for irreps in layer.irreps_in]
    external = getattr(layer, "external_weight_numel", 0)
    if external:
        xs.append(torch.randn(batch, external, generator=gen, dtype=dtype))
    return xs


def group_element(group: Group, rng: np.random.Generator, improper: bool) -> np.ndarray:
    """A random rotation (times -1 for an improper one) or a random SU(2) matrix."""
    if group == "SU2":
        return wigner.random_su2(rng)
    r = wigner.random_rotation(rng)
    return -r if improper and group == "O3" else r


def representation(irreps: Irreps, group: Group, g: np.ndarray) -> torch.Tensor:
    """The block-diagonal matrix by which ``g`` acts on features of ``irreps``."""
    if not len(irreps):
        return torch.ones(1, 1, dtype=torch.float64)
    if group == "SU2":
        return torch.from_numpy(wigner.su2_irreps_D(irreps, g))
    return torch.from_numpy(wigner.irreps_D(irreps, g))


def _act(x: torch.Tensor, irreps: Irreps, group: Group, g: np.ndarray) -> torch.Tensor:
    mat = representation(irreps, group, g).to(x.dtype)
    return x @ mat.T


def equivariance_error(
    layer: torch.nn.Module, seed: int = 0, trials: Sequence[bool] = (False, True)
) -> float:
    """Largest relative error of f(D x) = D f(x) over random group elements.

    Args:
        layer: a compiled layer (float64 or complex128).
        seed: random seed for inputs and group elements.
        trials: one trial per entry; ``True`` uses an improper rotation (O3 only).
    """
    group = layer_group(layer)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for improper in trials:
        g = group_element(group, rng, improper)
        xs = random_inputs(layer, seed=seed)
        ins = list(layer.irreps_in)
        moved = [_act(x, ir, group, g) if i < len(ins) else x
                 for i, (x, ir) in enumerate(zip(xs, [*ins] + [None] * len(xs)))]
        with torch.no_grad():
            y, y_moved = layer(*xs), layer(*moved)
        want = _act(y, layer.irreps_out, group, g) if len(layer.irreps_out) else y
        err = (y_moved - want).abs().max().item() / max(y.abs().max().item(), 1e-30)
        worst = max(worst, err)
    return worst

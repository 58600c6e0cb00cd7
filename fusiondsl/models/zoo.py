"""The models by name, as the training command knows them.

``mace`` and ``mofd`` differ only in the fusion block (MoFD, sparse: one internal label per
diagram, labels 0e, 1o, 2e) and in the product basis' correlation order, which MoFD lowers
from 3 to 2: the fusion diagrams already couple centre, neighbour and bond. ``cormorant`` and
``cofd`` differ only in the CoFD term.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from fusiondsl.models.base import Potential
from fusiondsl.models.cormorant import Cormorant
from fusiondsl.models.mace import MACE

MODELS: dict[str, Callable[..., Potential]] = {
    "mace": MACE,
    "mofd": partial(MACE, correlation=2, fusion_labels=("0e", "1o", "2e")),
    "cormorant": Cormorant,
    "cofd": partial(Cormorant, fusion=True),
}


def build_model(name: str, species: Sequence[int], **hyper: Any) -> Potential:
    """A fresh model by name (``ValueError`` naming the known ones otherwise)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name](species, **hyper)

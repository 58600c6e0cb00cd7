"""The models by name, as the training command knows them (see ``experiment.build_model``).

``mace`` and ``mofd`` differ only in the fusion block (MoFD, sparse: one internal label per
diagram, labels 0e, 1o, 2e) and in the product basis' correlation order, which MoFD lowers
from 3 to 2: the fusion diagrams already couple centre, neighbour and bond. ``cormorant`` and
``cofd`` differ only in the CoFD term.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from fusiondsl.models.base import Potential
from fusiondsl.models.cormorant import Cormorant
from fusiondsl.models.mace import MACE

MODELS: dict[str, Callable[..., Potential]] = {
    "mace": MACE,
    "mofd": partial(MACE, correlation=2, fusion_labels=("0e", "1o", "2e")),
    "cormorant": Cormorant,
    "cofd": partial(Cormorant, fusion=True),
}


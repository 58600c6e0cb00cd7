"""Models by name and their checkpoints: build a registered model, save it, load it back."""

from __future__ import annotations

import inspect
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fusiondsl.core.fileio import write_atomic
from fusiondsl.models.usage import UsageError
from fusiondsl.models.zoo import MODELS

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def check_model(name: str, **hyper: Any) -> None:
    """Raise :class:`UsageError` unless ``name`` is registered and its factory takes ``hyper``."""
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS)) or 'none'}")
    try:
        inspect.signature(MODELS[name]).bind((), **hyper)
    except TypeError as err:
        raise UsageError(f"model {name!r}: {err}") from None
    except ValueError:  # no signature to check (a builtin): the call decides
        pass


def build_model(name: str, species: Sequence[int], **hyper: Any) -> Potential:
    """Instantiate model ``name`` of :data:`fusiondsl.models.zoo.MODELS` for ``species``.

    Args:
        name: a key of the registry.
        species: atomic numbers the model must know.
        **hyper: keyword arguments of the model's factory.

    Returns:
        ``MODELS[name](species, **hyper)``.

    Raises:
        UsageError: for an unknown name or hyperparameters the factory does not accept.
    """
    check_model(name, **hyper)
    return MODELS[name](tuple(int(z) for z in species), **hyper)


def accepts(name: str, keyword: str) -> bool:
    """Whether the factory of ``name`` takes ``keyword`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(MODELS[name]).parameters.values()
    except (KeyError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)


def save_checkpoint(path: str | Path, model: Potential, *, name: str, hyper: dict[str, Any],
                    cutoff: float) -> None:
    """Write ``{"name", "hyper", "species", "cutoff", "dtype", "state_dict"}`` atomically."""
    dtype = str(model.energy_scale.dtype).removeprefix("torch.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"name": name, "hyper": dict(hyper), "species": list(model.species),
               "cutoff": float(cutoff), "dtype": dtype, "state_dict": state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load_model(path: str | Path) -> tuple[Potential, dict[str, Any]]:
    """Rebuild a model from a checkpoint of :func:`save_checkpoint`.

    Args:
        path: the ``.pt`` file.

    Returns:
        ``(model, info)``: the model in eval mode with its weights, reference energies, scale
        and dtype; ``info`` holds ``name``, ``hyper``, ``species``, ``cutoff`` and ``dtype``.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    model = build_model(info["name"], info["species"], **info["hyper"])
    model.to(dtype=DTYPES.get(info.get("dtype", "float64"), torch.float64))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), info

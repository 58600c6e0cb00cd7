"""``backend="auto"`` on every device: the CPU kernels it compiled, a twin for CUDA tensors.

A layer compiled with ``backend="auto"`` holds the C (or einsum) kernels the CPU runs. Called
with CUDA tensors it runs a *twin*: the same diagram compiled once per layer for CUDA
(Triton where it lowers the diagram and Triton is installed, einsum otherwise) and called
with this layer's own parameters (:func:`torch.func.functional_call`), so training, state
dicts and ``.to()`` see one set of weights whatever device ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fusiondsl.backends import available as backends
from fusiondsl.ir.diagram import AnyDiagram


def cuda_backend(d: AnyDiagram) -> tuple[str, str]:
    """What ``backend="auto"`` runs CUDA tensors on, and why, in one line."""
    triton = backends.get("triton")
    if not triton.available():
        return "einsum", "einsum on CUDA tensors, because triton is not installed"
    why_not = triton.refusal(d)
    if why_not is not None:
        message = why_not.diagnostics[0].message.split(" (diagram")[0]
        return "einsum", f"einsum on CUDA tensors, because {message}"
    return "triton", "triton on CUDA tensors"


def _on_cuda(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    tensors = [x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor)]
    return bool(tensors) and tensors[0].device.type == "cuda"


def route_cuda(layer: torch.nn.Module, compile_twin: Callable[[], torch.nn.Module]) -> None:
    """Make ``layer`` run CUDA calls through ``compile_twin()`` (built on the first such call).

    The twin is compiled once, moved to the device of the call, and called with ``layer``'s
    parameters, so gradients reach ``layer``'s weights.
    """
    inner = type(layer).forward
    twins: dict[torch.device, torch.nn.Module] = {}

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _on_cuda(args, kwargs):
            return inner(self, *args, **kwargs)
        device = next(x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor)).device
        if device not in twins:
            twins[device] = compile_twin().to(device)
        params = dict(self.named_parameters())
        return torch.func.functional_call(twins[device], params, args, kwargs, strict=False)

    forward.__doc__ = inner.__doc__
    cls = type(layer)
    layer.__class__ = type(cls.__name__, (cls,), {"forward": forward, "__doc__": cls.__doc__,
                                                  "__module__": cls.__module__,
                                                  "__qualname__": cls.__qualname__})

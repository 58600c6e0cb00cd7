"""The calling contract of every compiled layer, checked before any kernel runs.

Every backend's layer is called the same way and refuses the same mistakes, each with one line
that names the argument, what was expected and what came:

- one tensor per input leg, in declaration order; then ``edge_index`` ``[2, num_edges]``
  (integers in ``[0, num_nodes)``) for a neighbourhood block; then the external weights, if
  the diagram has any. Nothing more: an extra argument is an error.
- tree layers: ``[..., dim]`` with leading shapes that broadcast; neighbourhood blocks: node legs
  ``[num_nodes, dim]``, edge legs and external weights ``[num_edges, ...]``.
- dtypes: floating (complex for SU2), one dtype for all, the layer's own when it has floating
  parameters or buffers (``layer.double()`` converts a layer); integers are refused.
- one device for all, the layer's.
- an empty batch gives an empty output (still attached to the inputs for autograd).

``layer.check_indices = False`` skips the one min/max pass over ``edge_index`` (a fast path for
callers that build the graph themselves); the shape checks always run.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from fusiondsl.ir.diagram import Diagram


class ArgumentError(ValueError):
    """A layer was called with a tensor of the wrong shape, dtype or device."""


class ArgumentCountError(ArgumentError, TypeError):
    """A layer was called with too many or too few arguments."""


def _fail(layer: Any, message: str, kind: type[ArgumentError] = ArgumentError) -> ArgumentError:
    return kind(f"layer {layer.diagram.name!r}: {message}")


def _names(layer: Any) -> list[str]:
    d = layer.diagram
    if isinstance(d, Diagram):
        names = [leg.name for leg in d.legs]
        if d.is_neighbourhood:
            names.append("edge_index")
    else:
        names = [e.name for e in d.inputs]
    if getattr(layer, "external_weight_numel", 0):
        names.append("weight")
    return names


def _layer_dtype(layer: Any) -> torch.dtype | None:
    for t in (*layer.parameters(), *layer.buffers()):
        if t.is_floating_point() or t.is_complex():
            return t.dtype
    return None


def _layer_device(layer: Any) -> torch.device | None:
    for t in (*layer.parameters(), *layer.buffers()):
        return t.device
    return None


def _check_tensor(layer: Any, name: str, x: Any, want_complex: bool) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise _fail(layer, f"argument {name!r} must be a torch.Tensor, got {type(x).__name__}")
    ok = x.is_complex() if want_complex else x.is_floating_point()
    if not ok:
        kind = "a complex" if want_complex else "a floating-point"
        raise _fail(layer, f"argument {name!r} must be {kind} tensor, got dtype {x.dtype}")
    if x.layout != torch.strided:  # kernels read memory: sparse/mkldnn tensors have none
        raise _fail(layer, f"argument {name!r} must be a dense (strided) tensor, got layout "
                           f"{x.layout}")
    if x.dim() == 0:
        raise _fail(layer, f"argument {name!r} must have a last dimension of features, got a "
                           "scalar")
    return x


def _check_common(layer: Any, named: Sequence[tuple[str, torch.Tensor]]) -> None:
    """One dtype and one device for every floating argument, the layer's own."""
    dtype, device = _layer_dtype(layer), _layer_device(layer)
    first_name, first = named[0] if named else ("", None)
    for name, x in named:
        if getattr(layer, "backend", None) == "c" and x.device.type != "cpu":
            raise _fail(layer, f"argument {name!r} is on {x.device} but the c backend runs on "
                               "CPU tensors (use backend='triton' on CUDA)")
        want = dtype if dtype is not None else first.dtype  # type: ignore[union-attr]
        if x.dtype != want:
            whose = "this layer computes in" if dtype is not None else f"{first_name!r} is"
            raise _fail(layer, f"argument {name!r} has dtype {x.dtype} but {whose} {want} "
                               "(convert the input, or the layer with .to(dtype))")
        where = device if device is not None else first.device  # type: ignore[union-attr]
        if x.device != where:
            raise _fail(layer, f"argument {name!r} is on {x.device} but the layer is on {where}")


def _check_width(layer: Any, name: str, x: torch.Tensor, width: int, what: str,
                 rows: str = "...") -> None:
    if x.shape[-1] != width:
        raise _fail(layer, f"argument {name!r} must be [{rows}, {width}] ({what}), got shape "
                           f"{list(x.shape)}")


def _check_tree(layer: Any, args: Sequence[Any], names: Sequence[str]) -> tuple[int, ...]:
    """Shapes of a tree layer's arguments; the broadcast batch shape."""
    widths = [irreps.dim for irreps in layer.irreps_in]
    whats = [str(irreps) for irreps in layer.irreps_in]
    if len(args) > len(widths):
        widths.append(layer.external_weight_numel)
        whats.append("external weights")
    for name, x, width, what in zip(names, args, widths, whats):
        _check_width(layer, name, x, width, what)
    try:
        return tuple(torch.broadcast_shapes(*(x.shape[:-1] for x in args)))
    except RuntimeError:
        shapes = ", ".join(f"{n} {list(x.shape)}" for n, x in zip(names, args))
        raise _fail(layer, f"the batch shapes of the arguments do not broadcast: {shapes}") \
            from None


def _check_index(layer: Any, edge_index: Any, num_nodes: int,
                 device: torch.device | None) -> int:
    if not isinstance(edge_index, torch.Tensor):
        raise _fail(layer, "argument 'edge_index' must be a torch.Tensor [2, num_edges], got "
                           f"{type(edge_index).__name__}")
    if edge_index.dtype not in (torch.int64, torch.int32):
        raise _fail(layer, "argument 'edge_index' must be int64 or int32, got dtype "
                           f"{edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise _fail(layer, "argument 'edge_index' must be [2, num_edges] (receiver, sender), got "
                           f"shape {list(edge_index.shape)}")
    if device is not None and edge_index.device != device:
        raise _fail(layer, f"argument 'edge_index' is on {edge_index.device} but the other "
                           f"arguments are on {device}")
    if (getattr(layer, "check_indices", True) and edge_index.numel()
            and (device is None or device.type != "meta")):  # meta tensors hold no values
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0 or high >= num_nodes:
            bad = low if low < 0 else high
            raise _fail(layer, f"argument 'edge_index' holds node {bad}, outside [0, "
                               f"{num_nodes}) for {num_nodes} node rows")
    return int(edge_index.shape[1])


def _check_block(layer: Any, args: Sequence[Any], names: Sequence[str]) -> int:
    """Shapes of a neighbourhood block's arguments; the number of node rows."""
    d: Diagram = layer.diagram
    node_rows: tuple[str, int] | None = None
    for name, x, leg in zip(names, args, d.legs):
        if x.dim() != 2:
            raise _fail(layer, f"argument {name!r} must be [num_{leg.domain}s, {leg.irreps.dim}]"
                               f" ({leg.domain} leg {leg.irreps}), got shape {list(x.shape)}")
        _check_width(layer, name, x, leg.irreps.dim, f"{leg.domain} leg {leg.irreps}",
                     f"num_{leg.domain}s")
        if leg.domain == "node":
            if node_rows is not None and x.shape[0] != node_rows[1]:
                raise _fail(layer, f"argument {name!r} has {x.shape[0]} node rows but "
                                   f"{node_rows[0]!r} has {node_rows[1]}")
            node_rows = node_rows or (name, x.shape[0])
    num_nodes = node_rows[1] if node_rows else 0
    device = args[0].device if d.legs else _layer_device(layer)
    num_edges = _check_index(layer, args[len(d.legs)], num_nodes, device)
    edge_args = [(n, x) for n, x, leg in zip(names, args, d.legs) if leg.domain == "edge"]
    if len(args) > len(d.legs) + 1:
        w = args[-1]
        _check_width(layer, "weight", w, layer.external_weight_numel, "external weights",
                     "num_edges")
        edge_args.append(("weight", w))
    for name, x in edge_args:
        if x.dim() != 2 or x.shape[0] != num_edges:
            raise _fail(layer, f"argument {name!r} must have one row per edge ({num_edges} in "
                               f"edge_index), got shape {list(x.shape)}")
    return num_nodes


def _empty_output(layer: Any, batch: tuple[int, ...], floats: Sequence[torch.Tensor]) -> Any:
    """Zeros of the output's shape, attached to the inputs so that autograd still runs."""
    out = floats[0].new_zeros((*batch, layer.irreps_out.dim))
    for x in floats:
        out = out + 0 * x.sum()
    return out


def check_call(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               signature: inspect.Signature) -> tuple[tuple[Any, ...], Any]:
    """Bind and check one call; the positional arguments, and an output if it is empty."""
    names = _names(layer)
    try:
        bound = signature.bind(layer, *args, **kwargs)
    except TypeError:
        bound = None
    given = list(bound.arguments.values())[1:] if bound is not None else None
    if bound is None or len(args) + len(kwargs) != len(names) or any(
            g is None for g in given):  # type: ignore[union-attr]
        described = [n if n != "weight" else "weight (the external weights)" for n in names]
        raise _fail(layer, f"takes {len(names)} argument(s) ({', '.join(described)}), got "
                           f"{len(args) + len(kwargs)}", ArgumentCountError)
    args = tuple(given)  # type: ignore[arg-type]
    complex_ = layer.diagram.group == "SU2"
    neighbourhood = isinstance(layer.diagram, Diagram) and layer.diagram.is_neighbourhood
    floats = [(n, _check_tensor(layer, n, x, complex_)) for n, x in zip(names, args)
              if n != "edge_index" or not neighbourhood]
    _check_common(layer, floats)
    if neighbourhood:
        num_nodes = _check_block(layer, args, names)
        empty = num_nodes == 0
        batch: tuple[int, ...] = (0,)
    else:
        batch = _check_tree(layer, args, names) if args else ()
        empty = any(b == 0 for b in batch)
    if empty and floats:
        return args, _empty_output(layer, batch, [x for _, x in floats])
    # C and Triton kernels read raw memory: a lazily negated view (``z.conj().imag``) must be
    # materialised first, or they would see the values without their sign.
    return tuple(x.resolve_neg().resolve_conj() if isinstance(x, torch.Tensor) else x
                 for x in args), None


def checked_class(cls: type) -> type:
    """A subclass of a generated layer class whose ``forward`` checks its arguments first."""
    inner = cls.forward  # type: ignore[attr-defined]
    signature = inspect.signature(inner)  # once per class, not once per call

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():  # the checks are Python; a traced graph skips them
            return inner(self, *args, **kwargs)
        args, empty = check_call(self, args, kwargs, signature)
        return empty if empty is not None else inner(self, *args)

    forward.__doc__ = inner.__doc__
    return type(cls.__name__, (cls,), {"forward": forward, "__doc__": cls.__doc__,
                                       "__module__": cls.__module__,
                                       "__qualname__": cls.__qualname__})

"""A checked ``.fd`` file: its diagrams by name, ready to compile to layers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusiondsl.core.diagnostics import FusionError
from fusiondsl.front import ast
from fusiondsl.front.parse import parse
from fusiondsl.front.validate import validate
from fusiondsl.ir.diagram import AnyDiagram
from fusiondsl.nn.layers import build


@dataclass(frozen=True)
class Program:
    """The diagrams of one source file, checked.

    Attributes:
        module: the syntax tree.
        diagrams: checked diagrams by name, in source order.
    """

    module: ast.Module
    diagrams: dict[str, AnyDiagram] = field(compare=False)

    @property
    def names(self) -> list[str]:
        """Diagram names in source order."""
        return list(self.diagrams)

    def diagram(self, name: str | None = None) -> AnyDiagram:
        """One diagram by name (the only one when ``name`` is omitted)."""
        if name is None:
            if len(self.diagrams) != 1:
                raise KeyError(f"this program has {len(self.diagrams)} diagrams: name one of "
                               f"{', '.join(self.diagrams)}")
            return next(iter(self.diagrams.values()))
        if name not in self.diagrams:
            raise KeyError(f"no diagram {name!r}; known: {', '.join(self.diagrams)}")
        return self.diagrams[name]

    def compile(self, name: str | None = None, backend: str = "auto", **options: Any) -> Any:
        """Compile one diagram into a ``torch.nn.Module`` (see :func:`~.layers.build`).

        ``backend="auto"`` (the default) gives C kernels on the CPU where a C compiler with
        OpenMP works, Triton kernels for CUDA tensors, einsum otherwise; ``"einsum"``,
        ``"c"`` or ``"triton"`` force one.
        """
        return build(self.diagram(name), backend=backend, **options)

    def to_text(self) -> str:
        """The whole program as DSL text (groups made explicit); it parses back to the same IR."""
        out, group = [], None
        for d in self.diagrams.values():
            if d.group != group:
                out.append(f"group {d.group}")
                group = d.group
            out.append(d.to_text())
        return "\n".join(out) + "\n"


def loads(text: str, filename: str = "<string>") -> Program:
    """Parse and check DSL text.

    Raises:
        FusionError: every error in the text, with positions.
    """
    module = parse(text, filename)
    try:
        diagrams = validate(module)
    except FusionError as err:
        raise err.with_source(text, filename) from None
    return Program(module, {d.name: d for d in diagrams})


def load(path: str | Path) -> Program:
    """Read, parse and check a ``.fd`` file."""
    path = Path(path)
    return loads(path.read_text(encoding="utf-8"), str(path))

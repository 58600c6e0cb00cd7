"""What the C backend lowers, what it refuses (by name), and small helpers of its code writer."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fusiondsl.backends.kernel_paths import KernelUnsupportedError
from fusiondsl.ir.diagram import AnyDiagram


class CUnsupportedError(KernelUnsupportedError):
    """A construct the C backend does not lower (yet); the einsum backend does."""

    backend = "c"


class CCompilerNotFoundError(RuntimeError):
    """``backend='c'`` needs a C compiler with OpenMP, and none was found."""


def refusal(d: AnyDiagram) -> CUnsupportedError | None:
    """Why the C backend cannot lower a diagram (``None`` when it can): ``kernel_refusal``."""
    return CUnsupportedError.of(d)  # type: ignore[return-value]


def supports(d: AnyDiagram) -> bool:
    """Whether the C backend lowers this diagram (others are refused, never guessed)."""
    return refusal(d) is None


def require_support(d: AnyDiagram) -> None:
    """Raise :class:`CUnsupportedError` naming the first construct the backend lacks."""
    error = refusal(d)
    if error is not None:
        raise error


LETTERS = "uvw"


@dataclass(frozen=True)
class Ref:
    """One component of a value over channel letters: an array row, indexed per letter."""

    array: str
    letters: str
    layout: str  # the letters in the order of the array's flat channel index


@dataclass(frozen=True)
class Msg:
    """A local ``name[R][dim][channels]`` array: a leaf copy, a message or a folded cotangent."""

    array: str
    letters: str
    layout: str
    dim: int

    def at(self, comp: str) -> Ref:
        """Component ``comp`` (a C expression) of the current row."""
        return Ref(f"{self.array}[r][{comp}]", self.letters, self.layout)


def index(letters: str, sizes: dict[str, int]) -> str:
    """Row-major flat index of ``letters`` in loop variables (letters of size 1 drop out)."""
    parts = []
    for i, x in enumerate(letters):
        if sizes[x] == 1:
            continue
        stride = math.prod(sizes[y] for y in letters[i + 1 :])
        parts.append(x + (f" * {stride}" if stride != 1 else ""))
    return " + ".join(parts) or "0"


def span(letters: set[str] | str, sizes: dict[str, int]) -> str:
    """The letters that need a loop (size > 1), in ``uvw`` order."""
    return "".join(x for x in LETTERS if x in letters and sizes[x] > 1)


def cname(role: str) -> str:
    """The C name of a role's pointer (``w`` is a channel letter, so weights are ``weight``)."""
    return "weight" if role == "w" else role


def signature(name: str, params: list[str]) -> list[str]:
    """``void name(a, b,`` … wrapped at 100 columns, continuation lines indented by 8."""
    lines, line = [], f"void {name}("
    for i, param in enumerate(params):
        text = param + (")" if i == len(params) - 1 else ",")
        if len(line) + len(text) > 99:
            lines.append(line.rstrip())
            line = "        "
        line += text + " "
    return [*lines, line.rstrip()]

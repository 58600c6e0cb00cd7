"""Old import path of :mod:`fusiondsl.core.irreps`, kept so that user code keeps working."""

from typing import Any

from fusiondsl.core import irreps as _moved


def __getattr__(name: str) -> Any:
    """Every public name of :mod:`fusiondsl.core.irreps`, looked up there."""
    return getattr(_moved, name)

"""Old import path of :mod:`fusiondsl.nn.layers`, kept so that user code keeps working."""

from typing import Any

from fusiondsl.nn import layers as _moved


def __getattr__(name: str) -> Any:
    """Every public name of :mod:`fusiondsl.nn.layers`, looked up there."""
    return getattr(_moved, name)

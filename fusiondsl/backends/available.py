"""Every backend, registered: importing this module imports each backend package once.

>>> from fusiondsl.backends.available import BACKENDS
>>> sorted(BACKENDS)
['c', 'einsum', 'triton']
"""

from fusiondsl.backends import c, einsum, triton
from fusiondsl.backends.registry import BACKENDS, Backend, get

__all__ = ["BACKENDS", "Backend", "get"]
_LOADED = (c, einsum, triton)  # each registered itself on import

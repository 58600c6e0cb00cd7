"""The runtime that generated kernel modules import (:mod:`fusiondsl.backends.triton.runtime`)."""

from fusiondsl.backends.triton.runtime import NodeKernels, fuse, gate, scatter_sum

__all__ = ["NodeKernels", "fuse", "gate", "scatter_sum"]

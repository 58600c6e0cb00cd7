"""The Triton backend: a plan to Triton kernels, run on CUDA or the Triton interpreter."""

import importlib.util

from fusiondsl.backends.registry import Backend, register
from fusiondsl.backends.triton.lower import load_module, lower_triton, refusal

# triton.jit reads kernel source from a real file: load_module writes one per content hash
BACKEND = register(Backend("triton", refusal=refusal, lower=lower_triton, load=load_module,
                          available=lambda: importlib.util.find_spec("triton") is not None))

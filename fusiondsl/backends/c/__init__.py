"""The C backend: a plan to C kernels (OpenMP), compiled once per content hash and loaded."""

from fusiondsl.backends.c import runtime
from fusiondsl.backends.c.lower import lower_c
from fusiondsl.backends.c.support import refusal
from fusiondsl.backends.registry import Backend, exec_source, register

# available() is looked up at each call, so that a test (or a user) can swap the compiler
BACKEND = register(Backend("c", refusal=refusal, lower=lower_c, load=exec_source,
                           available=lambda: runtime.available()))

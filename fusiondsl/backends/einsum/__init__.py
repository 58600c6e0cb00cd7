"""The einsum backend: a plan to readable PyTorch code with exact coefficients as buffers."""

from fusiondsl.backends.einsum.graph import lower_graph
from fusiondsl.backends.einsum.lower import lower_einsum
from fusiondsl.backends.registry import Backend, exec_source, register

BACKEND = register(Backend("einsum", refusal=lambda d: None, lower=lower_einsum,
                           load=exec_source, lower_graph=lower_graph))

"""The einsum backend: a plan to readable PyTorch code with exact coefficients as buffers."""

"""Lowerings: a diagram's plan rendered as source code (einsum Python, Triton)."""

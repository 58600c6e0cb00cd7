"""The C backend: a plan to C kernels (OpenMP), compiled once per content hash and loaded."""

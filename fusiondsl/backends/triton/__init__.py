"""The Triton backend: a plan to Triton kernels, run on CUDA or the Triton interpreter."""

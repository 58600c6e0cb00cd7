"""Plans to source code: one folder per executor and what they share.

In: a ``Plan``. Out: Python source of a ``torch.nn.Module`` (einsum), or C or Triton kernels
with the Python layer that calls them. ``einsum/``, ``c/`` and ``triton/`` each lower a plan;
``emit`` writes lines, ``names`` keeps user names apart from the compiler's, ``forward``
writes the layer class both kernel backends share, ``units`` and ``kernel_paths`` say what a
kernel computes, ``graph_ops`` holds the runtime gather/gate/scatter.
"""

"""Compiled layers: the user's ``torch.nn.Module`` and the bridges to e3nn.

In: source text or an e3nn module. Out: a compiled layer (``Program.compile`` in
``program``, built by ``layers``, its calls checked by ``arguments``), ``from_e3nn``/``to_fd``
(``interop*``), ``swap`` for whole models, autotuning and timing helpers, and the
equivariance helpers of ``testing``.
"""

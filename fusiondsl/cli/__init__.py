"""The ``fusiondsl`` command and the tools around it.

``main`` (check, show, compile, bench, draw, demo, report, simplify), ``gallery`` (regenerates
and checks the golden files in ``kernels/``), ``bench``, ``report``, ``draw`` and ``demo``.
"""

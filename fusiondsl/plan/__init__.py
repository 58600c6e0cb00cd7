"""Paths to a contraction plan: cost model, coupling order, grouping, hoisting.

In: the paths of a diagram. Out: a ``Plan`` (:mod:`fusiondsl.plan.planner`) that says, per
fuse node, how each path contracts (opt_einsum orders), whether paths are grouped, whether a
``sum_j`` is hoisted (and F-move mixed), chosen by the sparsity-aware cost model (``cost``).
"""

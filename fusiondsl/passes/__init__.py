"""Diagram to paths, and diagrams to simpler diagrams.

In: a checked diagram. Out: its concrete paths, normalised, with weight slices (``expand``),
with dependent paths of symmetric powers pruned (``symmetric``); and rewritten diagrams
(``rewrite``: bubbles, 6j triangles, F-moves, on the network form ``rewrite_net``).
"""

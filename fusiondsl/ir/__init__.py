"""The checked diagram: what the front end produces and every later stage reads.

In: irreps and spans from :mod:`fusiondsl.core`. Out: ``Diagram`` (a tree program of fuse,
linear and cat nodes, with ``sum_j`` neighbourhood legs) and ``GraphDiagram`` (a closed
network of vertices and edges), frozen and printable (:mod:`fusiondsl.ir.diagram`).
"""

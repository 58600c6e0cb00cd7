"""Text in, checked diagram out: grammar, parser, AST with spans, the checks.

In: ``.fd`` source text. Out: a ``Module`` of checked diagrams (:mod:`fusiondsl.ir`) or a
``FusionError`` with file, line, column and a caret. ``parse`` is the only module that imports
lark; ``validate`` (with ``validate_tree`` and ``validate_graph``) applies the coupling rules,
the multiplicity rules and the size limits (``limits``).
"""

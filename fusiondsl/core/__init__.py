"""The ground every stage stands on: irreps, exact coefficients and errors.

In: nothing of fusiondsl's. Out: ``Irrep``/``Irreps`` and their algebra (O3 with parity, SO3,
SU2 half-integers), exact Clebsch–Gordan and Wigner 3j values (``cg``: Racah's formula over
fractions, cached on disk), Wigner D matrices, the coupling tensors of one step ``a ⊗ b → c``
(``coupling``), source spans and the one-line ``FusionError`` every stage raises
(``diagnostics``), and atomic file writes and content-hashed caches (``fileio``, ``cachefile``).
"""

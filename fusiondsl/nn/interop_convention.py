"""The coupling convention of the installed e3nn, read from e3nn itself, never assumed.

fusiondsl's real-basis coupling tensors equal e3nn 0.6's ``wigner_3j``. Other releases differ:
e3nn 0.4.4 (what ``mace-torch`` pins) has the opposite sign on six blocks with ℓ ≤ 3 —
(1,2,2), (2,1,2), (2,2,1), (1,3,3), (3,1,3), (3,3,1). So before a conversion, each coupling
an e3nn layer uses is *measured*: a probe ``TensorProduct`` of the same e3nn release (the one
the converted object's class comes from), with the same connection mode, weights fixed to one
and no normalisation, is evaluated on basis vectors. The result must be fusiondsl's tensor or
its negative (the sign goes into the path's coefficient); anything else is refused. Probing
per mode also covers e3nn's specialised code paths (ℓ = 0, the ``uuu`` cross product).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import numpy as np
import torch

from fusiondsl.core import cg

# The triangular modes are probed through the products they reduce to (no specialised code).
PROBE_MODE = {"uvu<v": "uvuv", "u<vw": "uvw"}
Key = tuple[str, bool, int, int, int]  # (mode, has_weight, l1, l2, l3)


class ConventionError(ValueError):
    """The installed e3nn couples some ℓ1 ⊗ ℓ2 → ℓ3 in neither fusiondsl's sign convention."""


def e3nn_tensor_product_class(obj: object) -> type:
    """``TensorProduct`` of the e3nn release that ``obj``'s class belongs to."""
    for cls in type(obj).__mro__:
        if cls.__name__ == "TensorProduct" and cls.__module__.split(".")[0] == "e3nn":
            return cls
    root = type(obj).__module__.split(".")[0]
    module = sys.modules.get(f"{root}.o3")
    if module is None or not hasattr(module, "TensorProduct"):
        raise ConventionError(f"cannot find the e3nn release of {type(obj).__name__} "
                              "to read its coupling convention from")
    return module.TensorProduct  # type: ignore[no-any-return]


def signs(obj: object, keys: Iterable[Key]) -> dict[Key, float]:
    """The sign (±1) by which the installed e3nn's coupling differs from fusiondsl's, per key.

    Raises:
        ConventionError: for a coupling that is not ± fusiondsl's.
    """
    tp_class = e3nn_tensor_product_class(obj)
    wanted = sorted(set(keys))
    by_mode: dict[tuple[str, bool], list[tuple[int, int, int]]] = {}
    for mode, weighted, *ls in wanted:
        by_mode.setdefault((PROBE_MODE.get(mode, mode), weighted), []).append(tuple(ls))
    found: dict[tuple[str, bool, tuple[int, int, int]], float] = {}
    for (mode, weighted), triples in by_mode.items():
        found.update(_probe(tp_class, mode, weighted, tuple(sorted(set(triples)))))
    return {k: found[(PROBE_MODE.get(k[0], k[0]), k[1], k[2:])] for k in wanted}


_CACHE: dict[tuple[type, str, bool, tuple[int, int, int]], float] = {}


def _probe(tp_class: type, mode: str, weighted: bool,
           triples: tuple[tuple[int, int, int], ...]) -> dict:
    """Signs per triple, measured (one probe product for all the new ones) or remembered."""
    if any((tp_class, mode, weighted, t) not in _CACHE for t in triples):
        # every triple up to the largest input degree asked for, in one probe product
        lmax = max(3, *(max(t[:2]) for t in triples))
        _measure(tp_class, mode, weighted, [
            (a, b, c) for a in range(lmax + 1) for b in range(lmax + 1)
            for c in range(abs(a - b), a + b + 1)])
    return {(mode, weighted, t): _CACHE[(tp_class, mode, weighted, t)] for t in triples}


def _measure(tp_class: type, mode: str, weighted: bool,
             triples: list[tuple[int, int, int]]) -> dict[tuple[int, int, int], float]:
    n = len(triples)
    in1 = "+".join(f"1x{l1}e" for l1, _, _ in triples)
    in2 = "+".join(f"1x{l2}e" for _, l2, _ in triples)
    out = "+".join(f"1x{l3}e" for _, _, l3 in triples)
    ins = [(i, i, i, mode, weighted, 1.0) for i in range(n)]
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its coefficients in the default dtype
    try:
        tp = _construct(tp_class, in1, in2, out, ins).double()
    finally:
        torch.set_default_dtype(old)
    with torch.no_grad():
        d1 = [2 * l1 + 1 for l1, _, _ in triples]
        d2 = [2 * l2 + 1 for _, l2, _ in triples]
        d3 = [2 * l3 + 1 for _, _, l3 in triples]
        dim = max(d1) * max(d2)
        x = torch.zeros(dim, sum(d1), dtype=torch.float64)
        y = torch.zeros(dim, sum(d2), dtype=torch.float64)
        o1, o2 = np.cumsum([0, *d1]), np.cumsum([0, *d2])
        for r in range(dim):
            i, j = divmod(r, max(d2))
            for t in range(n):
                if i < d1[t] and j < d2[t]:
                    x[r, o1[t] + i] = 1.0
                    y[r, o2[t] + j] = 1.0
        args = [x, y] + ([torch.ones(tp.weight_numel, dtype=torch.float64)]
                         if tp.weight_numel else [])
        z = tp(*args).numpy()
    result, o3 = {}, np.cumsum([0, *d3])
    for t, (l1, l2, l3) in enumerate(triples):
        got = z[:, o3[t]:o3[t + 1]].reshape(max(d1), max(d2), d3[t])[: d1[t], : d2[t]]
        result[(l1, l2, l3)] = _sign(got, cg.real_w3j(l1, l2, l3), (l1, l2, l3), mode)
        _CACHE[(tp_class, mode, weighted, (l1, l2, l3))] = result[(l1, l2, l3)]
    return result


def _construct(tp_class: type, *args: object) -> torch.nn.Module:
    kwargs = {"irrep_normalization": "none", "path_normalization": "none",
              "internal_weights": False, "shared_weights": True}
    try:  # the probe runs once: e3nn's einsum optimiser would cost more than it saves
        return tp_class(*args, **kwargs, _optimize_einsums=False)  # type: ignore[no-any-return]
    except TypeError:  # a release without that option
        return tp_class(*args, **kwargs)  # type: ignore[no-any-return]


def _sign(got: np.ndarray, ours: np.ndarray, triple: tuple[int, int, int], mode: str) -> float:
    for s in (1.0, -1.0):
        if np.allclose(got, s * ours, atol=1e-9, rtol=0):
            return s
    raise ConventionError(
        f"the installed e3nn's coupling {triple[0]} ⊗ {triple[1]} → {triple[2]} ({mode}) is "
        "neither fusiondsl's wigner_3j nor its negative; cannot convert exactly")

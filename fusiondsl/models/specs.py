"""The ``.fd`` specs of the models' equivariant layers, written out for given sizes.

Every tensor product, neighbour sum and channel mix in :mod:`fusiondsl.models` is one of
these diagrams, compiled by fusiondsl; :func:`model_specs` returns the text a model was built
from (``model.specs``), so a user can read, draw or cost it like any other spec.
"""

from __future__ import annotations

from fusiondsl.core.irreps import Irrep, Irreps


def hidden_labels(lmax: int) -> list[str]:
    """The natural-parity labels ``0e, 1o, 2e, …`` up to ``lmax`` (those spherical harmonics carry).

    >>> hidden_labels(2)
    ['0e', '1o', '2e']
    """
    return [f"{degree}{'eo'[degree % 2]}" for degree in range(lmax + 1)]


def reachable(labels: list[str], *operands: str) -> list[str]:
    """The labels among ``labels`` that a product of the operand irreps can reach.

    >>> reachable(['0e', '1o', '2e'], '8x0e', '8x0e')
    ['0e']
    """
    out = {m.ir for m in Irreps.parse(operands[0])}
    for text in operands[1:]:
        out = {c for a in out for m in Irreps.parse(text) for c in a * m.ir}
    return [label for label in labels if Irrep.parse(label) in out]


def _filter(labels: list[str]) -> str:
    return " + ".join(labels)


def mace_layer(channels: int, lmax: int, irreps_in: str, *, correlation: int = 3,
               fusion_labels: tuple[str, ...] = ()) -> str:
    """One MACE-style layer as three diagrams: ``up``, ``interaction`` and ``product``.

    ``interaction`` is the channel-wise (``uvu``) convolution with per-edge weights from the
    radial MLP, summed over neighbours, then a linear map. With ``fusion_labels`` (MoFD) it also
    sums the paper's fusion of centre, neighbour and bond, one diagram per internal label, gated
    channel-wise by ``g``, and concatenates them before the linear map. ``product`` is MACE's
    symmetric product basis up to ``correlation`` (``fuse(A, A)``, ``fuse(A, A, A)``, channel
    by channel), concatenated with the layer's input (the skip connection) and mixed.
    """
    labels = hidden_labels(lmax)
    hidden = f"{channels}x({_filter(labels)})"
    sh = Irreps.spherical_harmonics(lmax)
    conv_out = reachable(labels, irreps_in, str(sh))
    internal = reachable(list(fusion_labels), irreps_in, irreps_in)
    edge_legs = f", g: edge {channels}x0e" if internal else ""
    terms = ["m"] + [f"f{k}" for k in range(len(internal))]
    lines = [f"diagram up(h: {irreps_in}) -> o: {irreps_in} {{", "    o = linear(h)", "}",
             f"diagram interaction(h: {irreps_in}, y: edge sh({lmax}){edge_legs}) "
             f"-> A: {hidden} {{",
             f"    m = sum_j fuse(h[j], y) -> {_filter(conv_out)} weights uvu external"]
    for k, label in enumerate(internal):
        outputs = reachable(labels, f"1x{label}", str(sh))  # e.g. 2e ⊗ sh(1) misses 0e
        lines.append(f"    f{k} = sum_j fuse(fuse(h[i], h[j]) -> {label}, y) * g "
                     f"-> {_filter(outputs)} weights uuu   # internal label {label}")
    lines += [f"    A = linear(cat({', '.join(terms)}))", "}",
              f"diagram product(A: {hidden}, h: {irreps_in}) -> o: {hidden} {{"]
    powers = ["A"] + [f"B{nu}" for nu in range(2, correlation + 1)]
    for nu in range(2, correlation + 1):
        lines.append(f"    B{nu} = fuse({', '.join(['A'] * nu)}) -> {_filter(labels)} weights uuu")
    lines += [f"    o = linear(cat({', '.join([*powers, 'h'])}))", "}"]
    return "\n".join(lines) + "\n"


def cormorant_layer(channels: int, lmax: int, irreps_in: str, *, fusion: bool = False) -> str:
    """One Cormorant-style atom update (its Eq. 10), optionally with the CoFD fusion term.

    ``o = linear(cat(F, F ⊗ F, Σ_j g (F_j ⊗ Y_ij)))``; CoFD adds ``Σ_j Fusion(F_i, F_j, Y_ij)``
    gated by ``g2``. Products are channel by channel with one learned weight per path and
    channel (``uuu``), so the paths that land on one output irrep are not summed blindly.
    """
    labels = hidden_labels(lmax)
    hidden = f"{channels}x({_filter(labels)})"
    sh = str(Irreps.spherical_harmonics(lmax))
    square = reachable(labels, irreps_in, irreps_in)
    conv = reachable(labels, irreps_in, sh)
    legs = f"F: {irreps_in}, Y: edge sh({lmax}), g: edge {channels}x0e"
    lines = [f"diagram layer({legs}{', g2: edge ' + str(channels) + 'x0e' if fusion else ''}) "
             f"-> o: {hidden} {{",
             f"    s = fuse(F, F) -> {_filter(square)} weights uuu          # F_i ⊗ F_i",
             f"    m = sum_j fuse(F[j], Y) * g -> {_filter(conv)} weights uuu   # Σ_j g (F_j ⊗ Y)"]
    terms = ["F", "s", "m"]
    if fusion:
        three = reachable(labels, irreps_in, irreps_in, sh)
        lines.append(f"    f = sum_j fuse{{F[i], F[j], Y}} * g2 -> {_filter(three)} weights uuu"
                     "   # CoFD: Σ_j Fusion(F_i, F_j, Y_ij)")
        terms.append("f")
    lines += [f"    o = linear(cat({', '.join(terms)}))", "}"]
    return "\n".join(lines) + "\n"

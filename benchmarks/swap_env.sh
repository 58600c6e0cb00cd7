#!/usr/bin/env bash
# Make a separate virtual environment with the real MACE from PyPI (mace-torch pins e3nn 0.4.4),
# plus fusiondsl from this checkout, for benchmarks/swap_mace.py. The project's own .venv
# (e3nn 0.6) is not touched.
#
#   bash benchmarks/swap_env.sh            # makes /tmp/mace-venv (or $MACE_VENV)
#   /tmp/mace-venv/bin/python benchmarks/swap_mace.py
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MACE_VENV:-/tmp/mace-venv}"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
# A CPU-only torch: a local CPU wheel when this machine has one, else PyPI's CPU index is not
# reachable here, so PyPI's default build (which pulls the CUDA libraries) is the fallback.
wheel="$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)"
if [ -n "$wheel" ]; then
    "${pip[@]}" "$wheel"
else
    "${pip[@]}" torch==2.13.0
fi
"${pip[@]}" mace-torch
# fusiondsl itself, from this checkout, without re-resolving torch.
"${pip[@]}" --no-deps -e "$here"
"${pip[@]}" lark networkx sympy opt_einsum
"$venv/bin/python" - <<'PY'
import e3nn, mace, torch
print("torch", torch.__version__, "e3nn", e3nn.__version__, "mace", getattr(mace, "__version__", "?"))
PY

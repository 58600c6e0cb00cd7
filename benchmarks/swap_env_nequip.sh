#!/usr/bin/env bash
# Make a separate virtual environment with the real NequIP from PyPI (nequip 0.19.1, which needs
# e3nn 0.6 and lightning), plus fusiondsl from this checkout, for benchmarks/swap_nequip.py.
# The project's own .venv is not touched.
#
#   bash benchmarks/swap_env_nequip.sh       # makes /tmp/nequip-venv (or $NEQUIP_VENV)
#   /tmp/nequip-venv/bin/python benchmarks/swap_nequip.py
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${NEQUIP_VENV:-/tmp/nequip-venv}"
python="${PYTHON:-python3}"
version="${NEQUIP_VERSION:-0.19.1}"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
# torch first and pinned, so that nequip's requirements (torch>=2.2, lightning) never make pip
# pull another build: a local CPU wheel where this machine has one, else PyPI's 2.13.0.
wheel="$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)"
"${pip[@]}" "${wheel:-torch==2.13.0}"
pin="$(mktemp)"
"$venv/bin/python" -c 'import torch; print("torch==" + torch.__version__)' >"$pin"
"${pip[@]}" -c "$pin" "nequip==$version"
# fusiondsl itself, from this checkout, without re-resolving torch.
"${pip[@]}" --no-deps -e "$here"
"${pip[@]}" -c "$pin" lark networkx sympy opt_einsum
rm -f "$pin"
"$venv/bin/python" - <<'PY'
import e3nn, nequip, torch
print("torch", torch.__version__, "e3nn", e3nn.__version__, "nequip", nequip.__version__)
PY

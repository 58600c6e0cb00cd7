#!/usr/bin/env bash
# One short GPU check for a session lent an NVIDIA GPU (never run yet: written without one).
# Runs the Triton tests on CUDA (interpreter off), then bench_layers.py with the Triton
# backend against e3nn (and cuEquivariance when importable). Results go under $OUT.
# Usage (repository root, venv at .venv): OUT=/some/dir bash benchmarks/gpu_check.sh
set -u
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
PY="${PY:-.venv/bin/python}"
unset TRITON_INTERPRET
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch, triton; print(torch.__version__, triton.__version__, \
torch.cuda.get_device_name(0))" > "$OUT/versions.txt" 2>&1
# the gpu-marked tests compile every kernel for CUDA and compare with einsum (float32/64)
timeout 300 "$PY" -m pytest -q -m gpu tests/test_triton.py tests/test_triton_neighbourhood.py \
    -p no:cacheprovider > "$OUT/pytest_gpu.txt" 2>&1
echo "pytest gpu rc=$?" >> "$OUT/summary.txt"
"$PY" -c "import cuequivariance_torch" > /dev/null 2>&1 && echo "cuequivariance: yes" \
    >> "$OUT/summary.txt" || echo "cuequivariance: not importable" >> "$OUT/summary.txt"
timeout 420 "$PY" benchmarks/bench_layers.py --device cuda --quick --no-sweep \
    --base fusiondsl-triton --json "$OUT/layers.json" --plot "$OUT/layers.png" \
    > "$OUT/bench_layers.txt" 2>&1
echo "bench_layers rc=$?" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"

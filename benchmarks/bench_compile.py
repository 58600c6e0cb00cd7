"""Compile time of an ℓ ≤ 3 layer: cold (empty coefficient cache) and warm (cache filled).

    .venv/bin/python benchmarks/bench_compile.py

Each measurement runs in a fresh process (imports excluded from the timed region) so that
"cold" really recomputes the coefficients and "warm" reads them from the disk cache.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

SPEC = ("diagram conv(h: 32x(0e + 1o + 2e + 3o), y: sh(3)) -> m: 32x(0e + 1o + 2e + 3o) "
        "{ m = fuse(h, y) weights uvu external }")
CHILD = f"""
import time, fusiondsl, torch
start = time.perf_counter()
layer = fusiondsl.loads({SPEC!r}).compile()
print(time.perf_counter() - start)
"""


def run(cache: str) -> float:
    """Seconds one fresh process spends compiling the spec."""
    env = {**os.environ, "FUSIONDSL_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Five cold and five warm compiles; medians."""
    cold, warm = [], []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(run(cache))
            warm.append(run(cache))
    print(f"spec: {SPEC}")
    print(f"cold (empty cache): median {statistics.median(cold) * 1e3:.0f} ms  "
          f"{[round(c * 1e3) for c in cold]}")
    print(f"warm (disk cache):  median {statistics.median(warm) * 1e3:.0f} ms  "
          f"{[round(w * 1e3) for w in warm]}")


if __name__ == "__main__":
    main()

"""Compile time of ℓ ≤ 3 layers: cold (empty coefficient cache), warm, and in the same process.

    .venv/bin/python benchmarks/bench_compile.py [--repeats 7] [--no-bytecode] [--json FILE]
        [--backend auto|einsum|c] [--all] [--summary]

``--all`` measures every tree diagram of ``examples/`` (default: conv and fctp); ``--backend``
is what ``compile`` is asked for (default ``auto``, the default of ``Program.compile``: C
kernels where a C compiler works, so *cold* includes building them). ``--summary`` prints one
line per diagram (cold and warm compile medians) instead of the phase tables.

Every measurement is a fresh process that imports torch, then fusiondsl, loads an example
(``fusiondsl.load``: parse and check) and compiles it, timing each phase; then compiles it once
more in the same process. *Cold* processes get an empty ``FUSIONDSL_CACHE_DIR`` (coefficients
recomputed), *warm* ones the cache a cold one filled. Each child also reports whether it
imported sympy and how long full (generation 2) garbage collections took inside the timed
phases: after torch's import the heap is large, so one such collection costs ~80 ms on the
project's 2-core CPU and lands in whichever phase allocates when it is due.

Children run with a private bytecode cache (``PYTHONPYCACHEPREFIX``, warmed by one untimed run),
as an installed package would; ``--no-bytecode`` keeps ``PYTHONDONTWRITEBYTECODE``, so that
fusiondsl's modules are compiled from source in every process (this environment's default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = (("examples/conv.fd", "conv"), ("examples/fctp.fd", "fctp"))
PHASES = ("torch", "import", "load", "compile", "import+load+compile", "compile again")
HEADS = ("torch", "import", "load", "compile", "imp+ld+cmp", "again")
CHILD = """
import gc, json, sys, time
gc_s = [0.0, 0.0]
def _gc(phase, info):
    if info["generation"] == 2:
        gc_s[phase == "stop"] += time.perf_counter() * (1 if phase == "stop" else -1)
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
gc.callbacks.append(_gc)
import fusiondsl
t2 = time.perf_counter()
prog = fusiondsl.load(sys.argv[1])
t3 = time.perf_counter()
layer = prog.compile(sys.argv[2], backend=sys.argv[3])
t4 = time.perf_counter()
full_gc = sum(gc_s)
fusiondsl.load(sys.argv[1]).compile(sys.argv[2], backend=sys.argv[3])
t5 = time.perf_counter()
print(json.dumps({"torch": t1 - t0, "import": t2 - t1, "load": t3 - t2, "compile": t4 - t3,
                  "import+load+compile": t4 - t1, "compile again": t5 - t4,
                  "full gc": full_gc, "sympy": "sympy" in sys.modules, "backend": layer.backend,
                  "file": fusiondsl.__file__}))
"""


def child_env(cache: str, pycache: str | None) -> dict[str, str]:
    """The environment of one measured process."""
    env = {**os.environ, "FUSIONDSL_CACHE_DIR": cache}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


BACKEND = ["auto"]  # what the children ask for (--backend)


def all_cases() -> tuple[tuple[str, str], ...]:
    """Every tree diagram (``diagram …``, not ``graph …``) of every example."""
    sys.path.insert(0, str(ROOT))
    import fusiondsl
    from fusiondsl.ir.diagram import Diagram

    return tuple((f"examples/{f.name}", name) for f in sorted((ROOT / "examples").glob("*.fd"))
                 for name, d in fusiondsl.load(f).diagrams.items() if isinstance(d, Diagram))


def run(case: tuple[str, str], cache: str, pycache: str | None) -> dict[str, Any]:
    """Seconds per phase of one fresh process compiling one example."""
    out = subprocess.run([sys.executable, "-c", CHILD, *case, BACKEND[0]],
                         env=child_env(cache, pycache),
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure(case: tuple[str, str], repeats: int, pycache: str | None) -> dict[str, list]:
    """``repeats`` cold and ``repeats`` warm processes (each warm one after its cold one)."""
    runs: dict[str, list] = {"cold": [], "warm": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            runs["cold"].append(run(case, cache, pycache))
            runs["warm"].append(run(case, cache, pycache))
    return runs


def table(case: tuple[str, str], runs: dict[str, list]) -> list[str]:
    """Median milliseconds per phase, cold and warm (``imp+ld+cmp``: import, load, compile)."""
    lines = [f"{case[0]} ({case[1]}): median ms over {len(runs['cold'])} fresh processes",
             f"  {'cache':<6}" + "".join(f"{h:>11}" for h in HEADS) + f"{'full gc':>9}  sympy"]
    for kind, rs in runs.items():
        cells = "".join(f"{statistics.median(r[p] for r in rs) * 1e3:>11.1f}" for p in PHASES)
        gc_ms = statistics.median(r["full gc"] for r in rs) * 1e3
        lines.append(f"  {kind:<6}{cells}{gc_ms:>9.1f}  {any(r['sympy'] for r in rs)}")
    return lines


def summary(case: tuple[str, str], runs: dict[str, list]) -> str:
    """One line: the compile call's median seconds, cold and warm, and the backend it got."""
    cold, warm = (statistics.median(r["compile"] for r in runs[k]) for k in ("cold", "warm"))
    return (f"{case[0]:<26} {case[1]:<16} {runs['cold'][0]['backend']:<7} "
            f"cold {cold:8.3f} s   warm {warm * 1e3:8.1f} ms")


def main(argv: list[str] | None = None) -> None:
    """Measure every case, print the tables, optionally save every sample as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-bytecode", action="store_true", help="compile sources every time")
    ap.add_argument("--json", type=Path, help="write every sample here")
    ap.add_argument("--backend", default="auto", choices=("auto", "einsum", "c"))
    ap.add_argument("--all", action="store_true", help="every tree diagram of examples/")
    ap.add_argument("--summary", action="store_true", help="one line per diagram")
    args = ap.parse_args(argv)
    BACKEND[0] = args.backend
    cases = all_cases() if args.all else CASES
    results = {}
    with tempfile.TemporaryDirectory() as pycache, tempfile.TemporaryDirectory() as cache:
        prefix = None if args.no_bytecode else pycache
        first = run(CASES[0], cache, prefix)  # untimed: fills the bytecode cache
        print(f"fusiondsl from {Path(first['file']).parent}; bytecode cache: "
              f"{'off' if args.no_bytecode else 'on'}; python {sys.version.split()[0]}")
        for case in cases:
            results[case[1]] = runs = measure(case, args.repeats, prefix)
            print(summary(case, runs) if args.summary else "\n".join(table(case, runs)),
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

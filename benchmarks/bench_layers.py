"""fusiondsl against e3nn and cuequivariance-torch on the CPU, measured side by side.

    .venv/bin/python benchmarks/bench_layers.py            # the full run (~10 min, 2 cores)
    .venv/bin/python benchmarks/bench_layers.py --quick    # fewer repeats, float32 only

Prints a table of medians (ms) and ratios to fusiondsl for forward, forward+backward and
double backward, in float32 and float64, a batch sweep, peak memory (fresh subprocess per
implementation), and saves benchmarks/results/layers.png and layers.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import BATCH, IMPLS, SPECS

from fusiondsl.bench import PASSES, make_pass, median_ms

OUT = Path(__file__).resolve().parent / "results"


def measure(layer: str, impl: str, dtype: torch.dtype, batch: int, kind: str,
            repeats: int) -> float | None:
    """Median ms of one pass of one implementation, or None when it has no such layer."""
    built = IMPLS[impl](layer, dtype, batch)
    if built is None:
        return None
    module, xs = built
    return median_ms(make_pass(module, xs, kind), repeats=repeats)


def peak_memory_mb(layer: str, impl: str, batch: int) -> float | None:
    """Peak RSS growth of one forward+backward (float32), in a fresh process."""
    cmd = [sys.executable, __file__, "--memory", layer, impl, str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return float(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_child(layer: str, impl: str, batch: int) -> None:
    """Peak RSS growth of one forward+backward: reset the high-water mark (Linux
    clear_refs), run, read VmHWM against the resident size before the pass."""
    torch.set_num_threads(2)
    built = IMPLS[impl](layer, torch.float32, batch)
    if built is None:
        sys.exit(1)
    module, xs = built
    run = make_pass(module, xs, "forward+backward")
    run()  # allocator warm-up; gradients of the leaves now exist
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    run()
    print((_status_kb("VmHWM") - before) / 1024)


def table(args: argparse.Namespace) -> list[dict]:
    """Every layer × pass × dtype × implementation at its benchmark batch size."""
    rows = []
    dtypes = [torch.float32] if args.quick else [torch.float32, torch.float64]
    for layer in args.layers:
        for dtype in dtypes:
            for kind in PASSES:
                if dtype == torch.float64 and kind != "forward+backward":
                    continue
                times = {impl: measure(layer, impl, dtype, BATCH[layer], kind, args.repeats)
                         for impl in IMPLS}
                rows.append({"layer": layer, "dtype": str(dtype).split(".")[-1], "pass": kind,
                             "batch": BATCH[layer], "ms": times})
                print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict) -> str:
    ours = r["ms"]["fusiondsl"]
    cells = []
    for impl, ms in r["ms"].items():
        if ms is None:
            cells.append(f"{impl} -")
        else:
            cells.append(f"{impl} {ms:8.1f}" + ("" if impl == "fusiondsl" else
                                                f" ({ms / ours:4.2f}x)"))
    return f"{r['layer']:<10} {r['dtype']:<8} {r['pass']:<17} B={r['batch']:<6} " + "  ".join(cells)


def sweep(args: argparse.Namespace) -> list[dict]:
    """forward+backward, float32, over batch sizes, for the two e3nn-style layers."""
    rows = []
    for layer in ("fctp", "conv"):
        for batch in (1000, 3000, 10000):
            times = {impl: measure(layer, impl, torch.float32, batch, "forward+backward",
                                   args.repeats) for impl in IMPLS}
            rows.append({"layer": layer, "batch": batch, "ms": times})
            print(f"sweep {layer:<6} B={batch:<6} " + "  ".join(
                f"{k} {v:.1f}" for k, v in times.items() if v is not None), flush=True)
    return rows


def plot(rows: list[dict], sweeps: list[dict], path: Path) -> None:
    """Bars: forward+backward float32 per layer; lines: the batch sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    sel = [r for r in rows if r["pass"] == "forward+backward" and r["dtype"] == "float32"]
    for n, impl in enumerate(IMPLS):
        xs = [i + 0.27 * (n - 1) for i in range(len(sel))]
        ax1.bar(xs, [r["ms"][impl] or 0 for r in sel], width=0.27, label=impl)
    ax1.set_xticks(range(len(sel)), [r["layer"] for r in sel])
    ax1.set_ylabel("forward+backward, ms (float32)")
    ax1.set_yscale("log")
    ax1.legend()
    for layer, style in (("fctp", "-"), ("conv", "--")):
        pts = [s for s in sweeps if s["layer"] == layer]
        for impl in IMPLS:
            ys = [s["ms"][impl] for s in pts]
            if None not in ys:
                ax2.plot([s["batch"] for s in pts], ys, style, marker="o", label=f"{layer} {impl}")
    if sweeps:
        ax2.set_xscale("log")
        ax2.set_yscale("log")
    ax2.set_xlabel("batch")
    ax2.set_ylabel("ms")
    ax2.legend(fontsize=7)
    fig.suptitle(f"fusiondsl vs peers, CPU ({torch.get_num_threads()} threads), {date.today()}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    """Run everything and save the results."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--layers", nargs="*", default=list(SPECS))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--memory", nargs=3, metavar=("LAYER", "IMPL", "BATCH"))
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory table")
    args = p.parse_args()
    if args.memory:
        _memory_child(args.memory[0], args.memory[1], int(args.memory[2]))
        return
    torch.set_num_threads(2)
    if args.quick:
        args.repeats = min(args.repeats, 3)
    print(f"{date.today()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; ratios = peer / fusiondsl")
    rows = [] if args.memory_only else table(args)
    sweeps = [] if args.quick or args.memory_only else sweep(args)
    memory = {layer: {impl: peak_memory_mb(layer, impl, BATCH[layer]) for impl in IMPLS}
              for layer in args.layers}
    for layer, m in memory.items():
        print(f"peak memory {layer:<10} " + "  ".join(
            f"{k} {v:.0f} MB" for k, v in m.items() if v is not None))
    if args.memory_only:
        return
    OUT.mkdir(exist_ok=True)
    (OUT / "layers.json").write_text(json.dumps(
        {"date": str(date.today()), "rows": rows, "sweep": sweeps, "memory_mb": memory},
        indent=1))
    plot(rows, sweeps, OUT / "layers.png")
    print(f"saved {OUT / 'layers.png'} and layers.json")


if __name__ == "__main__":
    main()

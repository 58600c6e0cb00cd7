"""fusiondsl against e3nn and cuequivariance-torch on the CPU, measured side by side.

    .venv/bin/python benchmarks/bench_layers.py            # the full run (~10 min, 2 cores)
    .venv/bin/python benchmarks/bench_layers.py --quick    # fewer repeats, float32 only
    .venv/bin/python benchmarks/bench_layers.py --layers fctp conv --passes forward \
        forward+backward --no-sweep --dtypes float32           # the C backend's targets

Prints a table of medians (ms) and ratios to fusiondsl for forward, forward+backward and
double backward, in float32 and float64, a batch sweep, peak memory (fresh subprocess per
implementation), and saves benchmarks/results/layers.png and layers.json. Columns:
``fusiondsl-auto`` (what ``compile()`` gives with its defaults, measured first so that in a
fresh ``FUSIONDSL_CACHE_DIR`` it is a first compile's choice; the row says which backend),
``fusiondsl-c`` (the generated C kernels, ``backend="c"``; skipped without a C compiler),
``fusiondsl`` (the einsum backend), e3nn, cuequivariance; ratios are to ``--base``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import BATCH, IMPLS, SPECS, Built

import fusiondsl
from fusiondsl.backends.c.runtime import available as c_available
from fusiondsl.nn.timing import PASSES, inputs_for, make_pass, median_ms

OUT = Path(__file__).resolve().parent / "results"


def c_layer(name: str, dtype: torch.dtype, batch: int) -> Built | None:
    """The layer compiled with the C backend (``None`` without a C compiler)."""
    if not c_available():
        return None
    layer = fusiondsl.loads(SPECS[name]).compile(backend="c").to(dtype)
    return layer, inputs_for(layer.irreps_in, batch, dtype, layer.external_weight_numel)


def triton_layer(name: str, dtype: torch.dtype, batch: int) -> Built | None:
    """The layer compiled with the Triton backend (``None`` unless the device is CUDA)."""
    if DEVICE.type != "cuda":
        return None
    layer = fusiondsl.loads(SPECS[name]).compile(backend="triton").to(dtype)
    return layer, inputs_for(layer.irreps_in, batch, dtype, layer.external_weight_numel)


def auto_layer(name: str, dtype: torch.dtype, batch: int) -> Built:
    """The layer a user gets: ``compile()`` with its defaults (``backend="auto"``); which
    backend that chose, in this cache state, is kept in :data:`CHOSEN` and printed."""
    layer = fusiondsl.loads(SPECS[name]).compile().to(dtype)
    CHOSEN[name] = layer.backend
    return layer, inputs_for(layer.irreps_in, batch, dtype, layer.external_weight_numel)


CHOSEN: dict[str, str] = {}  # layer -> the backend compile() chose (fusiondsl-auto)
# fusiondsl-auto first: in a fresh cache it shows what a first compile gives
ALL = {"fusiondsl-auto": auto_layer, "fusiondsl-c": c_layer, "fusiondsl-triton": triton_layer,
       **IMPLS}
DEVICE = torch.device("cpu")  # --device; layers and inputs move there before timing


def _on_device(built: Built) -> Built:
    module, xs = built
    xs = [x.detach().to(DEVICE).requires_grad_(x.requires_grad) for x in xs]
    return module.to(DEVICE), xs


def _synced(run: Callable[[], object]) -> Callable[[], object]:
    """``run`` followed by a CUDA synchronize, so that wall times cover the kernels."""
    if DEVICE.type != "cuda":
        return run

    def timed() -> None:
        run()
        torch.cuda.synchronize()

    return timed


def measure(layer: str, impl: str, dtype: torch.dtype, batch: int, kind: str,
            repeats: int) -> float | None:
    """Median ms of one pass of one implementation, or None when it has no such layer."""
    built = ALL[impl](layer, dtype, batch)
    if built is None:
        return None
    module, xs = _on_device(built)
    return median_ms(_synced(make_pass(module, xs, kind)), repeats=repeats)


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
    built = ALL[impl](layer, torch.float32, batch)
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
    dtypes = [getattr(torch, d) for d in args.dtypes]
    for layer in args.layers:
        for dtype in dtypes:
            for kind in args.passes:
                if dtype == torch.float64 and kind != "forward+backward":
                    continue
                times = {impl: measure(layer, impl, dtype, BATCH[layer], kind, args.repeats)
                         for impl in ALL}
                rows.append({"layer": layer, "dtype": str(dtype).split(".")[-1], "pass": kind,
                             "batch": BATCH[layer], "ms": times, "auto": CHOSEN.get(layer)})
                print(_row(rows[-1], args.base), flush=True)
    return rows


def _row(r: dict, base: str) -> str:
    ours = r["ms"].get(base) or r["ms"]["fusiondsl"]
    cells = []
    for impl, ms in r["ms"].items():
        if ms is None:
            cells.append(f"{impl} -")
        else:
            cells.append(f"{impl} {ms:8.1f}" + ("" if ms is ours else f" ({ms / ours:4.2f}x)"))
    auto = f" [auto={r['auto']}]" if r.get("auto") else ""
    return (f"{r['layer']:<10} {r['dtype']:<8} {r['pass']:<17} B={r['batch']:<6} "
            + "  ".join(cells) + auto)


def sweep(args: argparse.Namespace) -> list[dict]:
    """forward+backward, float32, over batch sizes, for the two e3nn-style layers."""
    rows = []
    for layer in ("fctp", "conv"):
        for batch in (1000, 3000, 10000):
            times = {impl: measure(layer, impl, torch.float32, batch, "forward+backward",
                                   args.repeats) for impl in ALL}
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
    for n, impl in enumerate(ALL):
        width = 0.8 / len(ALL)
        xs = [i + width * (n - (len(ALL) - 1) / 2) for i in range(len(sel))]
        ax1.bar(xs, [r["ms"][impl] or 0 for r in sel], width=width, label=impl)
    ax1.set_xticks(range(len(sel)), [r["layer"] for r in sel])
    ax1.set_ylabel("forward+backward, ms (float32)")
    ax1.set_yscale("log")
    ax1.legend()
    for layer, style in (("fctp", "-"), ("conv", "--")):
        pts = [s for s in sweeps if s["layer"] == layer]
        for impl in ALL:
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
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda adds fusiondsl-triton)")
    p.add_argument("--layers", nargs="*", default=list(SPECS))
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--passes", nargs="*", default=list(PASSES), choices=PASSES)
    p.add_argument("--dtypes", nargs="*", default=["float32", "float64"],
                   choices=["float32", "float64"])
    p.add_argument("--base", default="fusiondsl-c", choices=list(ALL),
                   help="ratios are peer time / this implementation's time")
    p.add_argument("--no-sweep", action="store_true", help="skip the batch sweep")
    p.add_argument("--threads", type=int, default=2, help="torch (and C kernel) threads")
    p.add_argument("--json", type=Path, default=OUT / "layers.json", help="results file")
    p.add_argument("--plot", type=Path, default=OUT / "layers.png", help="plot file")
    p.add_argument("--memory", nargs=3, metavar=("LAYER", "IMPL", "BATCH"))
    p.add_argument("--memory-only", action="store_true", help="only the peak-memory table")
    args = p.parse_args()
    if args.memory:
        _memory_child(args.memory[0], args.memory[1], int(args.memory[2]))
        return
    torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.dtypes = ["float32"]
    print(f"{date.today()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; ratios = peer / {args.base}")
    rows = [] if args.memory_only else table(args)
    sweeps = [] if args.quick or args.memory_only or args.no_sweep else sweep(args)
    memory = {layer: {impl: peak_memory_mb(layer, impl, BATCH[layer]) for impl in ALL}
              for layer in args.layers}
    for layer, m in memory.items():
        print(f"peak memory {layer:<10} " + "  ".join(
            f"{k} {v:.0f} MB" for k, v in m.items() if v is not None))
    if args.memory_only:
        return
    args.json.parent.mkdir(exist_ok=True)
    args.json.write_text(json.dumps(
        {"date": str(date.today()), "rows": rows, "sweep": sweeps, "memory_mb": memory},
        indent=1))
    plot(rows, sweeps, args.plot)
    print(f"saved {args.plot} and {args.json}")


if __name__ == "__main__":
    main()

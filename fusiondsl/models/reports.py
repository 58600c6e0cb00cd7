"""The reports of an experiment: ``results.md`` (a table and provenance), ``curves.png``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from fusiondsl.core.fileio import write_atomic


def results_table(results: dict[str, Any]) -> str:
    """The markdown table of the models: errors on the test set (or validation set)."""
    with_md = any("md" in m for m in results["models"])
    head = ["model", "parameters", "energy MAE (meV/atom)", "force MAE (meV/Å)", "s/epoch",
            "best epoch"]
    head += ["MD drift (meV/atom/ps)", "MD max ΔE (meV/atom)"] if with_md else []
    rows = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for m in results["models"]:
        metrics = m["metrics"]
        cells = [m["name"], f"{m['parameters']:,}", f"{metrics['energy_mae_per_atom']:.2f}",
                 f"{metrics['force_mae']:.1f}", f"{m['seconds_per_epoch']:.2f}",
                 f"{m['best_epoch']}"]
        if with_md:
            md = m.get("md")
            cells += ([f"{1000 * md['drift_per_atom_per_ps']:.3g}",
                       f"{1000 * md['max_deviation_per_atom']:.3g}"] if md else ["", ""])
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def results_markdown(results: dict[str, Any]) -> str:
    """``results.md``: the table and the run's provenance."""
    split, machine, settings = results["split"], results["machine"], results["settings"]
    scored = results["models"][0]["scored_on"] if results["models"] else "test"
    lines = [
        "# fusiondsl.models experiment", "",
        f"Errors on the {split[scored]} {scored} structures; the weights kept are those of the "
        "best validation loss (best epoch).", "",
        results_table(results), "",
        f"- seed: {results['seed']}",
        f"- data: {results['data']}; split {split['train']} train / {split['val']} val / "
        f"{split['test']} test; cutoff {settings['cutoff']:g} Å",
        f"- training: {settings['epochs']} epochs, batch {settings['batch_size']}, Adam lr "
        f"{settings['lr']:g} ({settings['scheduler']}), loss weights energy "
        f"{settings['energy_weight']:g} / forces {settings['force_weight']:g}, "
        f"{settings['dtype']}",
        f"- machine: {machine['processor']}, {machine['cpu_count']} CPUs, "
        f"{machine['torch_threads']} torch threads" + (f", {machine['cuda']}"
                                                       if machine["cuda"] else ""),
        f"- torch {results['torch']}, Python {results['python']}",
        f"- date: {results['date']}",
    ]
    if settings["md_steps"]:
        lines.append(f"- MD: NVE velocity Verlet, {settings['md_steps']} steps of "
                     f"{settings['md_timestep_fs']:g} fs from the first {scored} structure, "
                     f"Maxwell–Boltzmann at {settings['md_temperature_K']:g} K")
    return "\n".join(lines) + "\n"


def plot_curves(results: dict[str, Any]) -> bytes:
    """``curves.png``: validation force and energy MAE against epoch (log scale), per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for m in results["models"]:
        records = m["history"]["records"]
        epochs = [r["epoch"] for r in records]
        style = {"label": m["name"], "marker": "o" if len(epochs) <= 20 else None}
        axes[0].plot(epochs, [r["val_force_mae"] for r in records], **style)
        axes[1].plot(epochs, [r["val_energy_mae"] for r in records], **style)
    for ax, what in zip(axes, ("force MAE (meV/Å)", "energy MAE (meV/atom)")):
        ax.set(xlabel="epoch", ylabel=f"validation {what}", yscale="log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def write_reports(results: dict[str, Any], out: Path) -> None:
    """Write ``results.json``, ``results.md`` and ``curves.png`` into ``out``, atomically."""
    write_atomic(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    write_atomic(out / "results.md", results_markdown(results))
    write_atomic(out / "curves.png", plot_curves(results))

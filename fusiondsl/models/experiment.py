"""Train several potentials on one data set and report: ``python -m fusiondsl.models.train``.

The experiment generates a seeded ase-EMT data set (or loads ``--data FILE.npz``), splits it
(seeded) into train / validation / test, and for each model named in ``--models`` (looked up
in :data:`fusiondsl.models.zoo.MODELS` by :func:`build_model`) fits the reference energies,
trains with :func:`fusiondsl.models.train.fit`, scores the test set and, with
``--md-steps N``, runs an NVE smoke test from the first test structure. It writes to ``--out``:

- ``results.json``: every number, including each model's learning curves;
- ``results.md``: a table (model, parameters, energy and force MAE, s/epoch, best epoch, MD
  drift) and the run's provenance (seed, data, machine, torch version, date);
- ``curves.png``: validation energy and force MAE against epoch, one line per model;
- ``NAME.pt``: a checkpoint per model, read back by :func:`load_model`.

All files are written atomically, and rewritten after every model, so an interrupted run
leaves the models finished so far. Bad arguments print one line and exit with status 2.

Example::

    python -m fusiondsl.models.train --models mace mofd --epochs 50 --out runs/emt
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import io
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from fusiondsl.core.fileio import write_atomic
from fusiondsl.models.train import evaluate, fit, fit_references

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential
    from fusiondsl.models.data import Structure

DTYPES = {"float64": torch.float64, "float32": torch.float32}


class UsageError(ValueError):
    """A bad argument: reported as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and exit 2 (no usage block)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, except an absent (None) one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.required or action.default is False:
            return action.help
        return super()._get_help_string(action)


# ---------------------------------------------------------------- models and checkpoints


def check_model(name: str, **hyper: Any) -> None:
    """Raise :class:`UsageError` unless ``name`` is registered and its factory takes ``hyper``."""
    from fusiondsl.models.zoo import MODELS

    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS)) or 'none'}")
    try:
        inspect.signature(MODELS[name]).bind((), **hyper)
    except TypeError as err:
        raise UsageError(f"model {name!r}: {err}") from None
    except ValueError:  # no signature to check (a builtin): the call decides
        pass


def build_model(name: str, species: Sequence[int], **hyper: Any) -> Potential:
    """Instantiate model ``name`` of :data:`fusiondsl.models.zoo.MODELS` for ``species``.

    Args:
        name: a key of the registry.
        species: atomic numbers the model must know.
        **hyper: keyword arguments of the model's factory.

    Returns:
        ``MODELS[name](species, **hyper)``.

    Raises:
        UsageError: for an unknown name or hyperparameters the factory does not accept.
    """
    from fusiondsl.models.zoo import MODELS

    check_model(name, **hyper)
    return MODELS[name](tuple(int(z) for z in species), **hyper)


def _accepts(name: str, keyword: str) -> bool:
    """Whether the factory of ``name`` takes ``keyword`` (or ``**kwargs``)."""
    from fusiondsl.models.zoo import MODELS

    try:
        params = inspect.signature(MODELS[name]).parameters.values()
    except (KeyError, ValueError):
        return False
    return any(p.name == keyword or p.kind is p.VAR_KEYWORD for p in params)


def save_checkpoint(path: str | Path, model: Potential, *, name: str, hyper: dict[str, Any],
                    cutoff: float) -> None:
    """Write ``{"name", "hyper", "species", "cutoff", "dtype", "state_dict"}`` atomically."""
    dtype = str(model.energy_scale.dtype).removeprefix("torch.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"name": name, "hyper": dict(hyper), "species": list(model.species),
               "cutoff": float(cutoff), "dtype": dtype, "state_dict": state}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load_model(path: str | Path) -> tuple[Potential, dict[str, Any]]:
    """Rebuild a model from a checkpoint of :func:`save_checkpoint`.

    Args:
        path: the ``.pt`` file.

    Returns:
        ``(model, info)``: the model in eval mode with its weights, reference energies, scale
        and dtype; ``info`` holds ``name``, ``hyper``, ``species``, ``cutoff`` and ``dtype``.
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    info = {k: v for k, v in payload.items() if k != "state_dict"}
    model = build_model(info["name"], info["species"], **info["hyper"])
    model.to(dtype=DTYPES.get(info.get("dtype", "float64"), torch.float64))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), info


# ---------------------------------------------------------------- the experiment


@dataclass
class ExperimentConfig:
    """Everything :func:`run_experiment` needs; the command line's options, one for one.

    Attributes:
        models: registry names to train, in order.
        out: output directory (created).
        data: a ``.npz`` of structures (None: generate with ase's EMT).
        n_structures: structures to generate.
        symbols: composition of the generated clusters.
        data_temperature_K: temperature of the generator's sampling, K.
        n_train: training structures (the split is seeded).
        n_val: validation structures; the rest is the test set.
        epochs: training epochs.
        batch_size: structures per batch.
        lr: Adam's learning rate.
        cutoff: neighbour-graph radius, Å (also passed to factories taking ``cutoff``).
        energy_weight: weight of the per-atom energy loss.
        force_weight: weight of the force loss.
        scheduler: learning-rate schedule of :func:`fit`.
        seed: seeds the data, the split, the initialisation and the training.
        dtype: ``"float64"`` or ``"float32"``.
        hyper: hyperparameters of every model.
        model_hyper: per-model hyperparameters, overriding ``hyper``.
        md_steps: NVE steps per model after training (0: no MD).
        md_timestep_fs: MD time step, fs.
        md_temperature_K: MD initial temperature, K.
        progress: draw progress bars on stderr.
        threads: torch's intra-op threads (None: torch's default). These models run many
            small ops; on a 2-core machine with one core busy, one thread was 90× faster.
    """

    models: list[str]
    out: Path
    data: Path | None = None
    n_structures: int = 300
    symbols: str = "Cu7Ni6"
    data_temperature_K: float = 600.0  # noqa: N815
    n_train: int = 200
    n_val: int = 50
    epochs: int = 50
    batch_size: int = 8
    lr: float = 5e-3
    cutoff: float = 5.0
    energy_weight: float = 1.0
    force_weight: float = 100.0
    scheduler: str = "plateau"
    seed: int = 0
    dtype: str = "float64"
    hyper: dict[str, Any] = field(default_factory=dict)
    model_hyper: dict[str, dict[str, Any]] = field(default_factory=dict)
    md_steps: int = 0
    md_timestep_fs: float = 0.5
    md_temperature_K: float = 300.0  # noqa: N815
    progress: bool = True
    threads: int | None = 1

    def check(self) -> None:
        """Raise :class:`UsageError` for an inconsistent configuration."""
        problems = [
            (not self.models, "no models given"),
            (self.dtype not in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}"),
            (self.n_train < 1 or self.n_val < 0, "--n-train must be >= 1 and --n-val >= 0"),
            (self.epochs < 1 or self.batch_size < 1, "--epochs and --batch-size must be >= 1"),
            (self.lr <= 0 or self.cutoff <= 0, "--lr and --cutoff must be positive"),
            (self.threads is not None and self.threads < 1, "--threads must be >= 1"),
            (self.md_steps < 0 or self.md_timestep_fs <= 0,
             "--md-steps must be >= 0 and --md-timestep-fs positive"),
            (self.data is not None and not Path(self.data).is_file(),
             f"--data {self.data}: no such file"),
        ]
        for bad, message in problems:
            if bad:
                raise UsageError(message)
        unknown = set(self.model_hyper) - set(self.models)
        if unknown:
            raise UsageError(f"hyperparameters for models not trained: {sorted(unknown)}")

    def hyper_for(self, name: str) -> dict[str, Any]:
        """The hyperparameters of model ``name``, with the cutoff if its factory takes one."""
        hyper = {**self.hyper, **self.model_hyper.get(name, {})}
        if "cutoff" not in hyper and _accepts(name, "cutoff"):
            hyper["cutoff"] = self.cutoff
        return hyper


def load_data(config: ExperimentConfig) -> tuple[list[Structure], str]:
    """The structures of the experiment and a one-line description of where they came from."""
    from fusiondsl.models.data import generate_emt, load_npz

    try:
        if config.data is not None:
            structures = list(load_npz(config.data))
            described = f"{config.data} ({len(structures)} structures)"
        else:
            structures = list(generate_emt(config.n_structures, seed=config.seed,
                                           symbols=config.symbols,
                                           temperature_K=config.data_temperature_K))
            described = (f"ase EMT {config.symbols} at {config.data_temperature_K:g} K, "
                         f"{len(structures)} structures generated with seed {config.seed}")
    except (ValueError, OSError) as err:  # a bad file or generator argument
        raise UsageError(str(err)) from None
    if config.n_train + config.n_val > len(structures):
        raise UsageError(f"--n-train {config.n_train} + --n-val {config.n_val} exceeds the "
                         f"{len(structures)} structures of the data set")
    return structures, described


def run_experiment(config: ExperimentConfig) -> dict[str, Any]:
    """Train, score and report every model of ``config``; write the output files.

    Args:
        config: the experiment (checked first).

    Returns:
        The content of ``results.json``.

    Raises:
        UsageError: for a bad configuration, data file, model name or hyperparameter.
    """
    from fusiondsl.models.data import split

    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    for name in config.models:  # fail on a bad name before any training
        check_model(name, **config.hyper_for(name))
    structures, described = load_data(config)
    train, val, test = split(structures, config.n_train, config.n_val, seed=config.seed)
    species = sorted({int(z) for s in structures for z in s.numbers})
    config.out.mkdir(parents=True, exist_ok=True)
    results = _provenance(config, described, len(train), len(val), len(test))
    for name in config.models:
        results["models"].append(_train_one(config, name, species, train, val, test))
        write_reports(results, config.out)
    return results


def _train_one(config: ExperimentConfig, name: str, species: list[int],
               train: list[Structure], val: list[Structure],
               test: list[Structure]) -> dict[str, Any]:
    hyper = config.hyper_for(name)
    torch.manual_seed(config.seed)
    model = build_model(name, species, **hyper)
    model.to(dtype=DTYPES[config.dtype])
    references = fit_references(model, train)
    if config.progress:
        print(f"training {name} ({_n_parameters(model)} parameters)", file=sys.stderr)
    history = fit(model, train, val, epochs=config.epochs, batch_size=config.batch_size,
                  lr=config.lr, cutoff=config.cutoff, energy_weight=config.energy_weight,
                  force_weight=config.force_weight, seed=config.seed,
                  dtype=DTYPES[config.dtype], scheduler=config.scheduler,
                  references=False, progress=config.progress)
    scored = test or val
    entry = {
        "name": name, "hyper": hyper, "parameters": _n_parameters(model),
        "references": references, "history": history.to_dict(),
        "best_epoch": history.best_epoch,
        "seconds_per_epoch": sum(history.column("seconds")) / len(history.records),
        "scored_on": "test" if test else "val",
        "metrics": evaluate(model, scored, cutoff=config.cutoff, batch_size=config.batch_size),
        "checkpoint": f"{_file_stem(name)}.pt",
    }
    save_checkpoint(config.out / entry["checkpoint"], model, name=name, hyper=hyper,
                    cutoff=config.cutoff)
    if config.md_steps and scored:
        entry["md"] = _md(config, model, scored[0])
    return entry


def _md(config: ExperimentConfig, model: Potential, start: Structure) -> dict[str, Any]:
    from fusiondsl.models.md import run_md, structure_to_atoms

    report = run_md(model, structure_to_atoms(start), cutoff=config.cutoff,
                    steps=config.md_steps, timestep_fs=config.md_timestep_fs,
                    temperature_K=config.md_temperature_K, seed=config.seed)
    return report.summary()


def _n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _provenance(config: ExperimentConfig, described: str, n_train: int, n_val: int,
                n_test: int) -> dict[str, Any]:
    settings = asdict(config)
    settings["out"], settings["data"] = str(config.out), config.data and str(config.data)
    return {
        "settings": settings, "seed": config.seed, "data": described,
        "split": {"train": n_train, "val": n_val, "test": n_test},
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "torch": torch.__version__, "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": [],
    }


# ---------------------------------------------------------------- reports


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


# ---------------------------------------------------------------- command line


def _parser() -> OneLineParser:
    p = OneLineParser(prog="python -m fusiondsl.models.train",
                      description="Train potentials of fusiondsl.models.zoo and report.",
                      formatter_class=DefaultsHelp)
    add = p.add_argument
    add("--models", nargs="+", required=True, help="registry names (or one comma list)")
    add("--out", required=True, type=Path, help="output directory")
    add("--data", type=Path, help=".npz of structures (default: generate with ase's EMT)")
    add("--n-structures", type=int, default=300, help="structures to generate")
    add("--symbols", default="Cu7Ni6", help="composition of the generated clusters")
    add("--data-temperature-K", dest="data_temperature_K", type=float, default=600.0,
        help="temperature of the generator's Langevin dynamics, K")
    add("--n-train", type=int, default=200, help="training structures")
    add("--n-val", type=int, default=50, help="validation structures (the rest: test)")
    add("--epochs", type=int, default=50, help="training epochs")
    add("--batch-size", type=int, default=8, help="structures per batch")
    add("--lr", type=float, default=5e-3, help="Adam's learning rate")
    add("--cutoff", type=float, default=5.0, help="neighbour radius, Å")
    add("--energy-weight", type=float, default=1.0, help="weight of mean((ΔE/n_atoms)²)")
    add("--force-weight", type=float, default=100.0, help="weight of mean(ΔF²)")
    add("--scheduler", choices=("plateau", "cosine", "none"), default="plateau",
        help="learning-rate schedule")
    add("--seed", type=int, default=0, help="seeds data, split, initialisation, training")
    add("--dtype", choices=tuple(DTYPES), default="float64", help="model and data precision")
    add("--hyper", action="append", default=[], metavar="[MODEL.]KEY=VALUE",
        help="a hyperparameter (VALUE read as JSON, else a string); MODEL. limits it to one")
    add("--md-steps", type=int, default=0, help="NVE steps per trained model (0: none)")
    add("--md-timestep-fs", type=float, default=0.5, help="MD time step, fs")
    add("--md-temperature-K", dest="md_temperature_K", type=float, default=300.0,
        help="temperature of the MD's initial velocities, K")
    add("--threads", type=int, default=1,
        help="torch intra-op threads: these models run many small ops, for which one thread "
             "beat two by 90x on a 2-core machine with one core busy")
    add("--quiet", action="store_true", help="no progress bars")
    return p


def _parse_hyper(items: Sequence[str]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    common: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--hyper {item!r}: expected KEY=VALUE or MODEL.KEY=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        model, dot, name = key.rpartition(".")
        (per_model.setdefault(model, {}) if dot else common)[name] = value
    return common, per_model


def config_from_args(argv: Sequence[str] | None = None) -> ExperimentConfig:
    """Parse the command line into an :class:`ExperimentConfig` (argparse errors exit 2)."""
    args = _parser().parse_args(argv)
    models = [m for item in args.models for m in item.split(",") if m]
    hyper, model_hyper = _parse_hyper(args.hyper)
    simple = {k: v for k, v in vars(args).items() if k not in {"models", "hyper", "quiet"}}
    return ExperimentConfig(models=models, hyper=hyper, model_hyper=model_hyper,
                            progress=not args.quiet, **simple)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the experiment; prints the results table at the end."""
    prog = "python -m fusiondsl.models.train"
    try:
        config = config_from_args(argv)
        results = run_experiment(config)
    except (UsageError, ImportError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(results_table(results))
    print(f"wrote {config.out / 'results.md'}, results.json, curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

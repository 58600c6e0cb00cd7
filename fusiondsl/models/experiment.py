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

import datetime
import json
import os
import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fusiondsl.models import distributed
from fusiondsl.models.checkpoints import (
    DTYPES,
    accepts,
    build_model,
    check_model,
    load_model,
    save_checkpoint,
)
from fusiondsl.models.data import generate_emt, load_npz, split
from fusiondsl.models.fitting import fit
from fusiondsl.models.loss import evaluate, fit_references
from fusiondsl.models.md import run_md, structure_to_atoms
from fusiondsl.models.reports import plot_curves, results_markdown, results_table, write_reports
from fusiondsl.models.usage import DefaultsHelp, OneLineParser, UsageError

if TYPE_CHECKING:
    from fusiondsl.models.base import Potential
    from fusiondsl.models.data import Structure

__all__ = [  # the names this module has always offered, wherever they live now
    "DTYPES", "DefaultsHelp", "ExperimentConfig", "OneLineParser", "UsageError", "build_model",
    "check_model", "config_from_args", "load_data", "load_model", "main", "plot_curves",
    "results_markdown", "results_table", "run_experiment", "save_checkpoint", "write_reports",
]


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
        device: ``"auto"`` (CUDA when there is a GPU), ``"cpu"`` or ``"cuda"``; under
            torchrun each process takes the GPU of its local rank.
        resume: keep the models already in ``out/results.json`` and continue an interrupted
            model from its ``NAME.state.pt`` (written after every epoch).
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
    device: str = "auto"
    resume: bool = False

    def check(self) -> None:
        """Raise :class:`UsageError` for an inconsistent configuration."""
        problems = [
            (not self.models, "no models given"),
            (self.dtype not in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}"),
            (self.n_train < 1 or self.n_val < 0, "--n-train must be >= 1 and --n-val >= 0"),
            (self.epochs < 1 or self.batch_size < 1, "--epochs and --batch-size must be >= 1"),
            (self.lr <= 0 or self.cutoff <= 0, "--lr and --cutoff must be positive"),
            (self.threads is not None and self.threads < 1, "--threads must be >= 1"),
            (self.device not in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
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
        if "cutoff" not in hyper and accepts(name, "cutoff"):
            hyper["cutoff"] = self.cutoff
        return hyper


def load_data(config: ExperimentConfig) -> tuple[list[Structure], str]:
    """The structures of the experiment and a one-line description of where they came from."""
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

    Under torchrun every process runs this with the same configuration; they train each
    model together (:mod:`fusiondsl.models.distributed`) and rank 0 alone writes files.

    Args:
        config: the experiment (checked first).

    Returns:
        The content of ``results.json``.

    Raises:
        UsageError: for a bad configuration, data file, model name or hyperparameter.
    """
    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    for name in config.models:  # fail on a bad name before any training
        check_model(name, **config.hyper_for(name))
    structures, described = load_data(config)
    train, val, test = split(structures, config.n_train, config.n_val, seed=config.seed)
    species = sorted({int(z) for s in structures for z in s.numbers})
    here, device, joined = distributed.setup(config.device)  # type: ignore[arg-type]
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        results = _provenance(config, described, len(train), len(val), len(test))
        done = distributed.from_rank0(_finished(config))  # rank 0 rewrites results.json
        for name in config.models:
            entry = done.get(name) or _train_one(config, name, species, (train, val, test),
                                                 here, device)
            results["models"].append(entry)
            if here.main:
                write_reports(results, config.out)
    finally:
        distributed.teardown(joined)
    return results


def _finished(config: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """With ``resume``, the models ``results.json`` already has (with their checkpoints)."""
    path = config.out / "results.json"
    if not (config.resume and path.is_file()):
        return {}
    entries = json.loads(path.read_text()).get("models", [])
    return {m["name"]: m for m in entries if (config.out / m["checkpoint"]).is_file()}


def _train_one(config: ExperimentConfig, name: str, species: list[int],
               data: tuple[list[Structure], list[Structure], list[Structure]],
               here: distributed.World, device: torch.device) -> dict[str, Any]:
    train, val, test = data
    hyper, stem = config.hyper_for(name), _file_stem(name)
    torch.manual_seed(config.seed)
    model = build_model(name, species, **hyper).to(device=device, dtype=DTYPES[config.dtype])
    references = fit_references(model, train)
    progress = config.progress and here.main
    if progress:
        print(f"training {name} ({_n_parameters(model)} parameters, {here.size} process"
              f"{'es' if here.size > 1 else ''})", file=sys.stderr)
    history = fit(model, train, val, epochs=config.epochs, batch_size=config.batch_size,
                  lr=config.lr, cutoff=config.cutoff, energy_weight=config.energy_weight,
                  force_weight=config.force_weight, seed=config.seed,
                  dtype=DTYPES[config.dtype], scheduler=config.scheduler, references=False,
                  progress=progress, state_path=config.out / f"{stem}.state.pt",
                  resume=config.resume)
    scored = test or val
    entry = {
        "name": name, "hyper": hyper, "parameters": _n_parameters(model),
        "references": references, "history": history.to_dict(),
        "best_epoch": history.best_epoch,
        "seconds_per_epoch": sum(history.column("seconds")) / len(history.records),
        "scored_on": "test" if test else "val",
        "metrics": evaluate(model, scored, cutoff=config.cutoff, batch_size=config.batch_size),
        "checkpoint": f"{stem}.pt",
    }
    if here.main:
        save_checkpoint(config.out / entry["checkpoint"], model, name=name, hyper=hyper,
                        cutoff=config.cutoff)
        (config.out / f"{stem}.state.pt").unlink(missing_ok=True)  # done: nothing to resume
        if config.md_steps and scored:
            entry["md"] = _md(config, model, scored[0])
    return entry


def _md(config: ExperimentConfig, model: Potential, start: Structure) -> dict[str, Any]:
    report = run_md(model.cpu(), structure_to_atoms(start), cutoff=config.cutoff,
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
        "processes": distributed.world().size,
        "machine": {"processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None},
        "torch": torch.__version__, "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": [],
    }


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
    add("--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="where to train (auto: CUDA when there is a GPU; under torchrun, one per process)")
    add("--resume", action="store_true",
        help="keep finished models of --out and continue an interrupted one")
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
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 alone reports
        print(results_table(results))
        print(f"wrote {config.out / 'results.md'}, results.json, curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

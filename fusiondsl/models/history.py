"""What a fit records, epoch by epoch, and the progress bar that shows it."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO


@dataclass
class EpochRecord:
    """One epoch of :func:`fit`: losses (eV², see :func:`fit`), validation MAEs, time.

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean of the batch losses over the epoch (weights changing meanwhile).
        val_loss: the same loss on the whole validation set after the epoch.
        val_energy_mae: validation energy MAE, meV/atom.
        val_force_mae: validation force MAE per component, meV/Å.
        seconds: wall time of the epoch (training and validation).
        lr: learning rate used during the epoch.
    """

    epoch: int
    train_loss: float
    val_loss: float
    val_energy_mae: float
    val_force_mae: float
    seconds: float
    lr: float


@dataclass
class History:
    """What :func:`fit` did, epoch by epoch; ``best_epoch`` is the one whose weights were kept."""

    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf

    def column(self, name: str) -> list[float]:
        """One field of every record, e.g. ``history.column("val_force_mae")``."""
        return [getattr(r, name) for r in self.records]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The history :meth:`to_dict` wrote."""
        return cls([EpochRecord(**r) for r in data["records"]], data["best_epoch"],
                   data["best_val_loss"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "records": [asdict(r) for r in self.records]}


class Progress:
    """A plain-text progress bar: epoch, batch, loss and ETA of the whole fit.

    On a terminal the bar redraws in place (carriage return) at most ten times a second; on
    any other stream (a log file) it writes whole lines, at most one every ten seconds, so that
    logs stay readable. An epoch's last batch and its summary line are always written.
    """

    def __init__(self, epochs: int, stream: TextIO | None, width: int = 24) -> None:
        self.epochs, self.stream, self.width = epochs, stream, width
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.interval = 0.1 if self.tty else 10.0
        self.start = time.perf_counter()
        self.last = -math.inf

    def _write(self, text: str, final: bool) -> None:
        assert self.stream is not None
        if self.tty:
            self.stream.write("\r" + text + (" " * 8 + "\n" if final else ""))
        else:
            self.stream.write(text.rstrip() + "\n")
        self.stream.flush()

    def update(self, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        """Redraw the bar after ``batch`` of ``n_batches`` in ``epoch`` (1-based)."""
        now = time.perf_counter()
        if self.stream is None or (now - self.last < self.interval and batch < n_batches):
            return
        self.last = now
        done = (epoch - 1 + batch / n_batches) / self.epochs
        eta = (now - self.start) * (1.0 - done) / done if done > 0 else math.nan
        filled = round(self.width * batch / n_batches)
        bar = "#" * filled + "." * (self.width - filled)
        self._write(f"epoch {epoch}/{self.epochs} [{bar}] {batch}/{n_batches} "
                    f"loss {loss:.3e} ETA {_clock(eta)} ", final=False)

    def epoch_done(self, record: EpochRecord) -> None:
        """End the epoch with its validation numbers."""
        if self.stream is None:
            return
        self._write(f"epoch {record.epoch}/{self.epochs} train {record.train_loss:.3e} "
                    f"val {record.val_loss:.3e} E {record.val_energy_mae:.2f} meV/atom "
                    f"F {record.val_force_mae:.1f} meV/Å {record.seconds:.1f} s", final=True)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"

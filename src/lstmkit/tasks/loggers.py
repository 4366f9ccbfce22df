"""How :func:`lstmkit.tasks.trainer.fit` reports each epoch besides the history it returns.

Progress (``train.progress``): a tqdm bar on a terminal, one log line per epoch otherwise (with the
time elapsed and an estimate of the time left), or nothing.

Loggers (``train.logger``): ``none`` keeps only the history (a run's ``history.json``);
``tensorboard`` also writes each epoch's history row as scalars of a ``torch.utils.tensorboard``
writer in the ``log_dir`` fit is given (a run's ``RUN/tensorboard/<role>/``): one tag per numeric
key of the row (``train_loss``, ``val_loss``, ``val_<metric>``, ``lr``, ``grad_norm_mean``,
``grad_norm_max``, ``clipped_fraction``), step = the epoch, stored as float32 (TensorBoard's
scalar type). A resumed run appends to the same directory and purges the epochs the interrupted
run had logged after its checkpoint, so TensorBoard shows the history. The writer is flushed
after every epoch and closed when fit ends, also on an exception. The package is an extra:
``pip install 'lstmkit[tensorboard]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from ..checks import require

__all__ = ["LOGGERS", "Progress", "check_logger", "epoch_logger"]

log = logging.getLogger(__name__)

LOGGERS = ("none", "tensorboard")


# ---------------------------------------------------------------------------- progress

def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _timing(elapsed: float, done: int, left: int) -> str:
    """'elapsed 0:42, ~1:10 left' from this process's epochs so far (an upper bound under early stopping)."""
    return f"elapsed {_clock(elapsed)}, ~{_clock(elapsed / done * left)} left" if left else f"elapsed {_clock(elapsed)}"


class Progress:
    """A tqdm bar on a terminal (or on request), one log line per epoch otherwise, or nothing."""

    def __init__(self, mode: str, epochs: int, first: int) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.bar = None
        if mode == "bar":
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                mode = "log"
        if self.bar is not None and first > 1:
            self.bar.update(first - 1)
        self.mode, self.epochs, self.first, self.start = mode, epochs, first, time.perf_counter()

    def epoch(self, row: dict, metrics: dict, best_epoch: int) -> None:
        epoch = row["epoch"]
        if self.bar is not None:
            self.bar.set_postfix_str(f"val_loss {metrics['loss']:.4f} best@{best_epoch}", refresh=False)
            self.bar.update(1)
        elif self.mode == "log":
            text = (f"epoch {epoch}/{self.epochs} train_loss {row['train_loss']:.4f} val_loss {metrics['loss']:.4f}"
                    + "".join(f" val_{k} {v:.4f}" for k, v in metrics.items() if k != "loss" and isinstance(v, float))
                    + f" lr {row['lr']:.2e} grad_norm {row['grad_norm_mean']:.3f}")
            elapsed = time.perf_counter() - self.start
            log.info(f"{text} · {_timing(elapsed, epoch - self.first + 1, self.epochs - epoch)}")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------- loggers

def check_logger(kind: str, log_dir: str | os.PathLike | None) -> None:
    """Raise before training when ``kind`` needs a log directory and none is given."""
    if kind != "none" and log_dir is None:
        raise ValueError(f"train.logger {kind!r} needs a log directory, and this caller of fit gives none "
                         "(log_dir=None); pass log_dir, or set train.logger to 'none'")


def _after_earlier_files(log_dir: Path) -> None:
    """TensorBoard reads a directory's event files in name order, and a name starts with its creation
    second (then host, pid and a per-process counter, compared as text). A resumed writer must sort
    after the interrupted one's, so it is not created within the same second as the newest file."""
    stamps = [int(p.name.split(".")[3]) for p in log_dir.glob("events.out.tfevents.*")
              if p.name.split(".")[3].isdigit()]
    while stamps and int(time.time()) <= max(stamps):
        time.sleep(0.05)


def _summary_writer():
    return require("torch.utils.tensorboard", "train.logger 'tensorboard' needs the tensorboard package",
                   "tensorboard").SummaryWriter


@contextlib.contextmanager
def epoch_logger(kind: str, log_dir: str | os.PathLike | None, purge_step: int | None = None
                 ) -> Iterator[Callable[[dict], None] | None]:
    """A function that reports one epoch's history row, or None for ``kind`` 'none'; closed on exit.
    ``purge_step``: the first epoch of a resumed run (what an earlier writer logged from there on is hidden)."""
    if kind == "none":
        yield None
        return
    check_logger(kind, log_dir)
    if purge_step is not None:
        _after_earlier_files(Path(log_dir))
    writer = _summary_writer()(log_dir=os.fspath(log_dir), purge_step=purge_step)

    def log_row(row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(key, value, global_step=row["epoch"])
        writer.flush()

    try:
        yield log_row
    finally:
        writer.close()

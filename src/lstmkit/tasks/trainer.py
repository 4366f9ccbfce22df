"""The training loop every lstmkit task shares: a small, explicit loop rather than Lightning.

``fit(model, train_batches, val_batches, loss_fn, evaluate, config)`` runs epochs of AdamW
steps with gradient-norm clipping, evaluates on the validation batches after each epoch,
steps ``ReduceLROnPlateau`` on the validation loss, keeps the best weights by
``config.monitor`` (restored at the end), and stops early after ``config.early_stopping``
epochs without improvement. It logs the gradient norm (before clipping) of every step and
summarises it per epoch, raises if a loss or gradient turns NaN/inf, and reports progress
with a tqdm bar on a terminal or one log line per epoch otherwise. ``config.ema`` (a decay per step)
keeps an exponential moving average of the weights and BatchNorm statistics (torch's
``AveragedModel``, updated after every optimizer step), and then validation, the best weights kept
and the final model are the average's.

Why not Lightning: measured on the digits preset, neither this loop nor Lightning costs
measurably more than a minimal hand-written loop (``benchmarks/train_overhead.py``), so the
choice is about the code: a short loop a reader can follow top to bottom and test behaviour by
behaviour, and a CPU install without Lightning's dependency tree (``docs/classify.md``).

``config.precision`` "bf16-mixed"/"16-mixed" runs each step's loss under autocast (with a gradient
scaler for float16; :mod:`lstmkit.tasks.device`). Batches are tuples of tensors (moved to
``config.device``, from pinned memory on CUDA); ``loss_fn(model, batch)``
returns a scalar loss (a mean over the batch's rows) and ``evaluate(model, batches)`` returns a
dict with at least "loss".

How it reads: :class:`_Loop` is one fit, whose epoch trains, validates, keeps the best weights,
stops early and checkpoints; :class:`_Replay` is the same epoch under a replayed learning-rate
schedule; :meth:`_Loop.restore` continues from a checkpoint and :func:`lstmkit.tasks.distributed.wrap_model` wraps the
model for torch.distributed. Progress and loggers are :mod:`lstmkit.tasks.loggers`
(``config.logger`` 'tensorboard' also writes every history row to ``log_dir``, on rank 0).

Under ``torch.distributed`` (``lstmkit train --devices N``, :mod:`lstmkit.tasks.distributed`) every
rank takes its share of each batch's rows; validation runs unsharded on every rank.

Checkpoints (:mod:`lstmkit.checkpoint.train_state`): with ``checkpoint_dir``, ``fit`` writes after
every ``config.checkpoint_every``-th epoch (and the last) everything it needs to continue, and
``fit(..., resume=True)`` continues to the result an uninterrupted run reaches (deterministic mode;
same device and thread count). That torch's generators are the only state to save relies on
``train_batches(epoch)`` being a function of the epoch, as lstmkit's ``SequenceBatches`` (shuffled
with ``numpy.random.default_rng(seed + epoch)``) and its augmentation are. A NaN/inf epoch is never
written: ``FloatingPointError`` names it and the last good checkpoint. Under torch.distributed only
rank 0 writes, and a resume runs on one process.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Literal, Sequence

import torch
from torch import Tensor, nn
from torch.optim import swa_utils

from ..checks import check_int
from ..checkpoint.train_state import MANIFEST, TrainState, check_continuation, load_train_state, save_train_state
from ..data.curriculum import check_curriculum_fields
from .config import path_field
from .device import autocast, check_deterministic, check_precision, grad_scaler, resolve_device, to_device
from .distributed import shard, world, wrap_model
from .loggers import LOGGERS, Progress, check_logger, epoch_logger
from .transfer import apply_transfer, check_transfer_fields

__all__ = ["TrainConfig", "FitResult", "TrainState", "fit", "resolve_device", "seed_everything", "save_train_state",
           "load_train_state", "MANIFEST"]

log = logging.getLogger(__name__)

Batch = Sequence[Tensor]


MONITORS = ("val_loss", "val_accuracy", "val_macro_f1", "val_miou")  # val_loss is minimised, the others maximised


@dataclass
class TrainConfig:
    """How a model is trained; every field validated on construction. ``monitor`` must be a
    metric the task's validation reports (``fit`` raises on the first epoch otherwise)."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's decoupled decay
    clip_norm: float | None = 1.0  # max total gradient norm; None: no clipping
    plateau_factor: float = 0.5  # ReduceLROnPlateau on validation loss
    plateau_patience: int = 10
    min_lr: float = 1e-5
    early_stopping: int | None = 30  # epochs without improvement of `monitor`; None: off
    # exponential moving average of the weights (and BatchNorm statistics), decay per optimizer step; validation,
    # the kept best weights and checkpoints use the average. None: off
    ema: float | None = None
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_miou"] = "val_loss"  # val_miou: segmentation
    val_fraction: float = 0.2  # carved (stratified) from the training data
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms during fit
    device: str = "auto"  # auto: cuda if available, else cpu; or cpu, cuda, cuda:N
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"  # autocast for the mixed ones (lstmkit.tasks.device)
    progress: Literal["auto", "bar", "log", "off"] = "auto"  # auto: a bar on a terminal, log lines otherwise
    checkpoint_every: int = 1  # epochs between checkpoints, when fit is given a checkpoint_dir
    logger: Literal["none", "tensorboard"] = "none"  # besides the history: tensorboard writes to fit's log_dir
    # transfer (lstmkit.tasks.transfer): start from a run's matching weights; freeze parameters by fnmatch pattern
    init_from: str | None = path_field()
    init_sha256: str | None = None  # the source's model.safetensors SHA-256 (set by --init-from; checked when loading)
    freeze: list[str] = field(default_factory=list)
    # curriculum (lstmkit.data.curriculum): 'length' trains on the shortest sequences first, widening over
    # curriculum_epochs epochs from the curriculum_start quantile of the training lengths to all of them
    curriculum: Literal["none", "length"] = "none"
    curriculum_start: float = 0.3
    curriculum_epochs: int = 10

    def __post_init__(self) -> None:
        for name in ("epochs", "checkpoint_every", "batch_size"):  # stored as plain ints (numpy ints serialise badly)
            setattr(self, name, check_int(name, getattr(self, name)))
        self.plateau_patience = check_int("plateau_patience", self.plateau_patience, minimum=0)
        self.seed = check_int("seed", self.seed, minimum=0)
        if self.seed >= 2**63:
            raise ValueError(f"seed must be below 2**63, got {self.seed}")
        for name in ("lr", "min_lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        self.lr, self.min_lr = float(self.lr), float(self.min_lr)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not (
                math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        self.weight_decay = float(self.weight_decay)
        if self.clip_norm is not None and (isinstance(self.clip_norm, bool) or not isinstance(self.clip_norm, (int, float))
                                           or not self.clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number or null, got {self.clip_norm!r}")
        if not (isinstance(self.plateau_factor, (int, float)) and 0 < self.plateau_factor < 1):
            raise ValueError(f"plateau_factor must be in (0, 1), got {self.plateau_factor!r}")
        if self.early_stopping is not None:
            self.early_stopping = check_int("early_stopping", self.early_stopping)
        if self.ema is not None and (isinstance(self.ema, bool) or not isinstance(self.ema, (int, float))
                                     or not 0 < self.ema < 1):
            raise ValueError(f"ema must be null (off) or a decay per optimizer step in (0, 1), e.g. 0.99, got {self.ema!r}")
        self.ema = None if self.ema is None else float(self.ema)
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(map(repr, MONITORS))}, got {self.monitor!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.progress not in ("auto", "bar", "log", "off"):
            raise ValueError(f"progress must be one of 'auto', 'bar', 'log', 'off', got {self.progress!r}")
        if self.logger not in LOGGERS:
            raise ValueError(f"logger must be one of {', '.join(map(repr, LOGGERS))}, got {self.logger!r}")
        self.precision = check_precision(self.precision, resolve_device(self.device))
        check_deterministic(self.deterministic, resolve_device(self.device))
        check_transfer_fields(self)
        self.curriculum_start, self.curriculum_epochs = check_curriculum_fields(self.curriculum, self.curriculum_start,
                                                                                self.curriculum_epochs)

    def to_dict(self) -> dict:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA); data order and splits take their own seeds explicitly."""
    torch.manual_seed(seed)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0
    best: dict = field(default_factory=dict)  # validation metrics at the best epoch
    epochs: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


@contextlib.contextmanager
def _deterministic(on: bool):
    if not on:
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


_to = to_device  # non_blocking copies from pinned memory on CUDA


def _better(monitor: str, value: float, best: float) -> bool:
    return value < best if monitor == "val_loss" else value > best


def _resume_state(resume: bool | TrainState, checkpoint_dir, config: TrainConfig) -> TrainState | None:
    """The checkpoint ``fit`` continues from (checked against ``config``), or None for a fresh run."""
    if resume is False:
        return None
    if isinstance(resume, TrainState):
        state = resume
    elif resume is True:
        if checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to continue from")
        state = load_train_state(checkpoint_dir)
    else:
        raise TypeError(f"resume must be a bool or a TrainState, got {type(resume).__name__}")
    # a field added to TrainConfig after the checkpoint was written counts as its default there
    state.config = {**TrainConfig().to_dict(), **state.config}
    check_continuation(state, config.to_dict())
    return state


class _Loop:
    """One ``fit``: the model on its device, AdamW, the plateau scheduler and the best weights so far.
    Its epoch trains, validates, steps the plateau, keeps the best weights by ``config.monitor``,
    stops early and writes checkpoints."""

    def __init__(self, model: nn.Module, val_batches: Iterable[Batch], loss_fn, evaluate, config: TrainConfig,
                 epochs: int, checkpoint_dir: str | os.PathLike | None = None) -> None:
        self.model, self.loss_fn, self.evaluate, self.config = model, loss_fn, evaluate, config
        self.epochs, self.checkpoint_dir = epochs, checkpoint_dir
        self.device = resolve_device(config.device)
        model.to(self.device)
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scaler = grad_scaler(self.device, config.precision)  # 16-mixed only
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt, mode="min", factor=config.plateau_factor, patience=config.plateau_patience,
            min_lr=config.min_lr)
        self.val = [_to(b, self.device) for b in val_batches]
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.rank, self.world_size = world()
        self.net = model  # what the loss sees: the model, or its DDP wrapper under torch.distributed
        self.ema = None if config.ema is None else swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self.clip = config.clip_norm if config.clip_norm is not None else float("inf")
        self.result = FitResult()
        self.best_value = math.inf if config.monitor == "val_loss" else -math.inf
        self.best_state = None
        self.since_best = 0
        self.first, self.seconds_before = 1, 0.0
        self.saved = None  # (epoch, directory) of the last checkpoint written or resumed from

    def restore(self, state: TrainState) -> None:
        """Continue from ``state``: weights, AdamW, the plateau, the best so far, the history, torch's generators."""
        try:
            self.model.load_state_dict(state.model)
            self.opt.load_state_dict(copy.deepcopy(state.optimizer))  # AdamW updates its moments in place
            self.plateau.load_state_dict(state.scheduler)
            if self.ema is not None:
                self.ema.load_state_dict(state.ema)
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(f"checkpoint {state.path} does not fit this model ({e})") from None
        self.best_state = {k: v.to(self.device) for k, v in state.best_model.items()}
        self.best_value, self.since_best, self.seconds_before = state.best_value, state.since_best, state.seconds
        r = self.result
        r.history = [dict(row) for row in state.history]
        r.best_epoch, r.best, r.stopped_early = state.best_epoch, dict(state.best), state.stopped_early
        self.first = self.epochs + 1 if state.stopped_early else state.epoch + 1
        self.saved = (state.epoch, state.path)
        torch.set_rng_state(state.rng["torch"])
        cuda = self.device.type == "cuda"
        if cuda and "cuda" in state.rng:
            torch.cuda.set_rng_state(state.rng["cuda"], self.device)
        elif cuda != ("cuda" in state.rng):
            log.warning(f"checkpoint {state.path} was written on another kind of device: the continuation will "
                        "not match an uninterrupted run bit for bit")
        log.info(f"resuming from epoch {state.epoch} ({state.path})")

    def run(self, train_batches: Callable[[int], Iterable[Batch]], callbacks, progress: Progress,
            log_row: Callable[[dict], None] | None) -> None:
        """The epochs from ``self.first`` on, until the last or an early stop."""
        start = time.perf_counter()
        for epoch in range(self.first, self.epochs + 1):
            self.start_epoch(epoch)
            train_loss, norms = self.train_epoch(train_batches, epoch)
            row, metrics = self.validate(epoch, train_loss, norms)
            self.result.history.append(row)
            if log_row is not None:
                log_row(row)
            for callback in callbacks:
                callback(epoch, row)
            stop = self.select(epoch, row, metrics)
            progress.epoch(row, metrics, self.result.best_epoch)
            self.result.stopped_early = stop
            if self.checkpoint_dir is not None and self.rank == 0 and (
                    epoch % self.config.checkpoint_every == 0 or epoch == self.epochs or stop):
                self.save(epoch, stop, self.seconds_before + time.perf_counter() - start)
            if stop:
                log.info(f"early stop at epoch {epoch}: {self.config.monitor} has not improved for "
                         f"{self.config.early_stopping} epochs (best {self.best_value:.4f} at epoch "
                         f"{self.result.best_epoch})")
                break
        self.result.seconds = self.seconds_before + time.perf_counter() - start

    def start_epoch(self, epoch: int) -> None:
        """Nothing to set: the plateau scheduler sets the learning rate."""

    def train_epoch(self, train_batches: Callable[[int], Iterable[Batch]], epoch: int) -> tuple[float, Tensor]:
        """The epoch's AdamW steps; (mean training loss, each step's gradient norm before clipping)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        norms = []
        steps = 0
        for batch in train_batches(epoch):
            batch = _to(batch, self.device)
            with autocast(self.device, self.config.precision):
                if self.world_size > 1:  # this rank's rows, weighted so DDP's average is the batch mean
                    batch, weight = shard(batch, self.rank, self.world_size)
                    loss = self.loss_fn(self.net, batch) * weight
                else:
                    loss = self.loss_fn(self.net, batch)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                norms.append(nn.utils.clip_grad_norm_(self.params, self.clip))
                self.opt.step()
            else:  # the scaler skips a step whose gradients overflowed (and lowers its scale)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.opt)
                norms.append(nn.utils.clip_grad_norm_(self.params, self.clip))
                self.scaler.step(self.opt)
                self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            loss_sum += loss.detach() / self.world_size
            steps += 1
        if steps == 0:
            raise ValueError("train_batches yielded no batches: the training set is empty")
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(loss_sum)  # the batch means, as one process logs them
        norms_t = torch.stack(norms).float()
        if self.scaler is not None:  # overflowed steps were skipped, not taken: only the others count
            norms_t = norms_t[torch.isfinite(norms_t)] if bool(torch.isfinite(norms_t).any()) else norms_t
        train_loss = (loss_sum / steps).item()  # one sync per epoch
        if not math.isfinite(train_loss) or not torch.isfinite(norms_t).all():
            raise FloatingPointError(
                f"epoch {epoch}: training loss or gradient norm is NaN/inf (loss {train_loss}); {self._kept(epoch)}"
                "lower train.lr, keep train.clip_norm set, or check the input data")
        return train_loss, norms_t

    def _kept(self, epoch: int) -> str:
        """What a NaN epoch leaves of the checkpoints, for its error message."""
        if self.checkpoint_dir is None:
            return ""
        if self.saved is None:
            return "no checkpoint had been written yet; "
        return (f"epoch {epoch} was not saved and the last good checkpoint (epoch {self.saved[0]}, "
                f"{self.saved[1]}) was kept; ")

    def weights(self) -> nn.Module:
        """What validation scores and the best weights are taken from: the model, or its weight average."""
        return self.model if self.ema is None else self.ema.module

    def metrics(self) -> dict:
        return self.evaluate(self.weights(), self.val)

    def validate(self, epoch: int, train_loss: float, norms: Tensor) -> tuple[dict, dict]:
        """(the epoch's history row, the validation metrics)."""
        self.weights().eval()
        with torch.no_grad():
            metrics = self.metrics()
        row = {"epoch": epoch, "train_loss": train_loss, "lr": self.opt.param_groups[0]["lr"],
               "grad_norm_mean": norms.mean().item(), "grad_norm_max": norms.max().item(),
               "clipped_fraction": (norms > self.clip).float().mean().item(),
               **{f"val_{k}": v for k, v in metrics.items()}}
        return row, metrics

    def select(self, epoch: int, row: dict, metrics: dict) -> bool:
        """Step the plateau, keep the weights if ``config.monitor`` improved; whether to stop early."""
        monitor, patience = self.config.monitor, self.config.early_stopping
        self.plateau.step(metrics["loss"])
        if monitor not in row:
            raise ValueError(f"train.monitor {monitor!r} is not reported by this task's validation; "
                             f"choose one of {', '.join(k for k in row if k.startswith('val_'))}")
        value = row[monitor]
        if _better(monitor, value, self.best_value) or self.best_state is None:
            self.best_value, self.best_state, self.since_best = value, copy.deepcopy(self.weights().state_dict()), 0
            self.result.best_epoch, self.result.best = epoch, dict(metrics)
        else:
            self.since_best += 1
        return patience is not None and self.since_best >= patience

    def save(self, epoch: int, stop: bool, seconds: float) -> None:
        rng = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        r = self.result
        path = save_train_state(self.checkpoint_dir, TrainState(
            epoch, self.model.state_dict(), self.best_state, self.opt.state_dict(), self.plateau.state_dict(), rng,
            r.history, self.best_value, r.best_epoch, r.best, self.since_best, stop, seconds, self.config.to_dict(),
            ema={} if self.ema is None else self.ema.state_dict()))
        self.saved = (epoch, path)

    def finish(self) -> FitResult:
        """The result, the model holding the best epoch's weights."""
        self.result.epochs = len(self.result.history)
        self.model.load_state_dict(self.best_state)
        return self.result


class _Replay(_Loop):
    """The epochs of a learning-rate schedule found earlier (e.g. a refit on training + validation
    data): one epoch per rate, no plateau steps, no early stopping, no checkpoints, the final
    weights kept; validation only when there are validation batches."""

    def __init__(self, model: nn.Module, val_batches: Iterable[Batch], loss_fn, evaluate, config: TrainConfig,
                 lr_schedule: Sequence[float]) -> None:
        super().__init__(model, val_batches, loss_fn, evaluate, config, epochs=len(lr_schedule))
        self.lr_schedule = lr_schedule

    def start_epoch(self, epoch: int) -> None:
        for group in self.opt.param_groups:
            group["lr"] = float(self.lr_schedule[epoch - 1])

    def metrics(self) -> dict:
        return super().metrics() if self.val else {"loss": math.nan}

    def select(self, epoch: int, row: dict, metrics: dict) -> bool:
        self.result.best_epoch, self.result.best = epoch, dict(metrics)
        return False

    def finish(self) -> FitResult:
        self.result.epochs = len(self.result.history)
        if self.ema is not None:  # the final weights: their average
            self.model.load_state_dict(self.ema.module.state_dict())
        return self.result


def _check_schedule(lr_schedule: Sequence[float], checkpoint_dir, resume) -> None:
    if len(lr_schedule) == 0 or not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                                        for v in lr_schedule):
        raise ValueError(f"lr_schedule must be a non-empty list of positive learning rates, got {lr_schedule!r}")
    if checkpoint_dir is not None or resume is not False:
        raise ValueError("checkpoint_dir/resume do not apply to a replayed lr_schedule (a refit runs from the start)")


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Iterable[Batch],
    loss_fn: Callable[[nn.Module, tuple], Tensor],
    evaluate: Callable[[nn.Module, Iterable[tuple]], dict],
    config: TrainConfig,
    lr_schedule: Sequence[float] | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool | TrainState = False,
    log_dir: str | os.PathLike | None = None,
) -> FitResult:
    """Train ``model`` in place; it ends holding the best weights by ``config.monitor``.

    ``train_batches(epoch)`` yields the epoch's batches (its order may depend on the epoch);
    ``val_batches`` is re-iterated after every epoch.

    ``lr_schedule`` (one learning rate per epoch) replays a schedule found earlier, e.g. to refit
    on training + validation data for the number of epochs validation chose: it runs exactly
    ``len(lr_schedule)`` epochs with those rates, without plateau steps or early stopping, and
    keeps the final weights; ``val_batches`` may then be empty (no evaluation).

    ``callbacks``: each is called as ``callback(epoch, row)`` after the epoch's evaluation, with
    the history row (train_loss, lr, gradient norms, val_* metrics). An exception it raises
    (e.g. ``optuna.TrialPruned``) propagates out of ``fit``.

    ``checkpoint_dir``: write a checkpoint there after every ``config.checkpoint_every``-th epoch
    and after the last one (see the module docstring). ``resume``: True continues from the
    checkpoint in ``checkpoint_dir`` (or pass a :class:`TrainState` from :func:`load_train_state`);
    the model and config must be the run's (``epochs``, ``progress``, ``checkpoint_every`` and
    ``logger`` may change). A checkpoint of a finished run gives back its result without training.
    Neither applies to a replayed ``lr_schedule``.

    ``log_dir``: where ``config.logger`` writes (a run passes ``RUN/tensorboard/<role>``); needed
    unless the logger is 'none'. A resumed run appends to it.
    """
    if lr_schedule is not None:
        _check_schedule(lr_schedule, checkpoint_dir, resume)
    state = _resume_state(resume, checkpoint_dir, config)
    check_logger(config.logger, log_dir)
    apply_transfer(model, config, checkpoint_dir, resumed=state is not None)  # train.init_from / freeze, every task
    if config.curriculum != "none":
        from ..data.curriculum import check_curriculum_batches

        check_curriculum_batches(train_batches)
    if lr_schedule is None:
        loop = _Loop(model, val_batches, loss_fn, evaluate, config, config.epochs, checkpoint_dir)
    else:
        loop = _Replay(model, val_batches, loss_fn, evaluate, config, lr_schedule)
    if loop.world_size > 1:
        if state is not None:
            raise ValueError("a resume runs on one process: continue a distributed run without --devices/torchrun")
        loop.net = wrap_model(model, loop.device, loop.rank)
    if state is not None:
        loop.restore(state)
    logger = config.logger if loop.rank == 0 else "none"
    with _deterministic(config.deterministic), Progress(config.progress, loop.epochs, loop.first) as progress, \
            epoch_logger(logger, log_dir, purge_step=loop.first if state is not None else None) as log_row:
        loop.run(train_batches, callbacks, progress, log_row)
    return loop.finish()

"""The training loop every lstmkit task shares: a small, explicit loop rather than Lightning.

``fit(model, train_batches, val_batches, loss_fn, evaluate, config)`` runs epochs of AdamW
steps with gradient-norm clipping, evaluates on the validation batches after each epoch,
steps ``ReduceLROnPlateau`` on the validation loss, keeps the best weights by
``config.monitor`` (restored at the end), and stops early after ``config.early_stopping``
epochs without improvement. It logs the gradient norm (before clipping) of every step and
summarises it per epoch, raises if a loss or gradient turns NaN/inf, and reports progress
with a tqdm bar on a terminal or one log line per epoch otherwise.

Why not Lightning: measured on the digits preset, neither this loop nor Lightning costs
measurably more than a minimal hand-written loop (``benchmarks/train_overhead.py``), so the
choice is about the code: ~150 lines a reader can follow top to bottom and test behaviour by
behaviour, and a CPU install without Lightning's dependency tree (``docs/classify.md``).

Batches are tuples of tensors (moved to ``config.device``); ``loss_fn(model, batch)``
returns a scalar loss (a mean over the batch's rows) and ``evaluate(model, batches)`` returns a
dict with at least "loss".

Under ``torch.distributed`` (``lstmkit train --devices N``, :mod:`lstmkit.tasks.distributed`) the
model is wrapped in ``DistributedDataParallel`` for the training steps and every rank takes its
share of each batch's rows; validation runs unsharded on every rank.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Literal, Sequence

import torch
from torch import Tensor, nn

from .distributed import shard, world

__all__ = ["TrainConfig", "FitResult", "fit", "resolve_device", "seed_everything"]

log = logging.getLogger(__name__)

Batch = Sequence[Tensor]


def _positive(name: str, value, kind=int, allow_zero: bool = False) -> None:
    ok = isinstance(value, kind) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} {kind.__name__}, got {value!r}")


@dataclass
class TrainConfig:
    """How a model is trained; every field validated on construction."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's decoupled decay
    clip_norm: float | None = 1.0  # max total gradient norm; None: no clipping
    plateau_factor: float = 0.5  # ReduceLROnPlateau on validation loss
    plateau_patience: int = 10
    min_lr: float = 1e-5
    early_stopping: int | None = 30  # epochs without improvement of `monitor`; None: off
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1"] = "val_loss"
    val_fraction: float = 0.2  # carved (stratified) from the training data
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms during fit
    device: str = "auto"  # auto: cuda if available, else cpu
    progress: Literal["auto", "bar", "log", "off"] = "auto"  # auto: a bar on a terminal, log lines otherwise

    def __post_init__(self) -> None:
        _positive("epochs", self.epochs)
        _positive("batch_size", self.batch_size)
        _positive("plateau_patience", self.plateau_patience, allow_zero=True)
        _positive("seed", self.seed, allow_zero=True)
        for name in ("lr", "min_lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        self.lr, self.min_lr = float(self.lr), float(self.min_lr)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}")
        self.weight_decay = float(self.weight_decay)
        if self.clip_norm is not None and (isinstance(self.clip_norm, bool) or not isinstance(self.clip_norm, (int, float))
                                           or not self.clip_norm > 0):
            raise ValueError(f"clip_norm must be a positive number or null, got {self.clip_norm!r}")
        if not (isinstance(self.plateau_factor, (int, float)) and 0 < self.plateau_factor < 1):
            raise ValueError(f"plateau_factor must be in (0, 1), got {self.plateau_factor!r}")
        if self.early_stopping is not None:
            _positive("early_stopping", self.early_stopping)
        if self.monitor not in ("val_loss", "val_accuracy", "val_macro_f1"):
            raise ValueError(f"monitor must be one of 'val_loss', 'val_accuracy', 'val_macro_f1', got {self.monitor!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.progress not in ("auto", "bar", "log", "off"):
            raise ValueError(f"progress must be one of 'auto', 'bar', 'log', 'off', got {self.progress!r}")
        resolve_device(self.device)

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
    return device


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


def _to(batch: Batch, device: torch.device) -> tuple:
    return tuple(t.to(device, non_blocking=True) if isinstance(t, Tensor) else t for t in batch)


def _better(monitor: str, value: float, best: float) -> bool:
    return value < best if monitor == "val_loss" else value > best


def fit(
    model: nn.Module,
    train_batches: Callable[[int], Iterable[Batch]],
    val_batches: Iterable[Batch],
    loss_fn: Callable[[nn.Module, tuple], Tensor],
    evaluate: Callable[[nn.Module, Iterable[tuple]], dict],
    config: TrainConfig,
    lr_schedule: Sequence[float] | None = None,
    callbacks: Sequence[Callable[[int, dict], None]] = (),
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
    """
    if lr_schedule is not None and (len(lr_schedule) == 0 or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in lr_schedule)):
        raise ValueError(f"lr_schedule must be a non-empty list of positive learning rates, got {lr_schedule!r}")
    replay = lr_schedule is not None
    device = resolve_device(config.device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=config.plateau_factor,
                                                         patience=config.plateau_patience, min_lr=config.min_lr)
    val = [_to(b, device) for b in val_batches]
    params = [p for p in model.parameters() if p.requires_grad]
    rank, world_size = world()
    net = model  # what the loss sees: the model, or its DDP wrapper under torch.distributed
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if rank:  # the same initial weights (DDP broadcasts rank 0's), but each rank its own dropout masks
            torch.manual_seed(torch.initial_seed() + rank)
    clip = config.clip_norm if config.clip_norm is not None else float("inf")
    mode = config.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    bar = None
    epochs = len(lr_schedule) if replay else config.epochs
    if mode == "bar":
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            mode = "log"

    result = FitResult()
    best_value = math.inf if config.monitor == "val_loss" else -math.inf
    best_state = None
    since_best = 0
    start = time.perf_counter()
    with _deterministic(config.deterministic):
        try:
            for epoch in range(1, epochs + 1):
                if replay:
                    for group in opt.param_groups:
                        group["lr"] = float(lr_schedule[epoch - 1])
                model.train()
                loss_sum = torch.zeros((), device=device)
                norms = []
                steps = 0
                for batch in train_batches(epoch):
                    batch = _to(batch, device)
                    if world_size > 1:  # this rank's rows, weighted so DDP's average is the batch mean
                        batch, weight = shard(batch, rank, world_size)
                        loss = loss_fn(net, batch) * weight
                    else:
                        loss = loss_fn(net, batch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    norms.append(nn.utils.clip_grad_norm_(params, clip))
                    opt.step()
                    loss_sum += loss.detach() / world_size
                    steps += 1
                if steps == 0:
                    raise ValueError("train_batches yielded no batches: the training set is empty")
                if world_size > 1:
                    import torch.distributed as dist

                    dist.all_reduce(loss_sum)  # the batch means, as one process logs them
                norms_t = torch.stack(norms).float()
                train_loss = (loss_sum / steps).item()  # one sync per epoch
                if not math.isfinite(train_loss) or not torch.isfinite(norms_t).all():
                    raise FloatingPointError(
                        f"epoch {epoch}: training loss or gradient norm is NaN/inf (loss {train_loss}); "
                        "lower train.lr, keep train.clip_norm set, or check the input data")
                model.eval()
                with torch.no_grad():
                    metrics = evaluate(model, val) if val or not replay else {"loss": math.nan}
                row = {"epoch": epoch, "train_loss": train_loss, "lr": opt.param_groups[0]["lr"],
                       "grad_norm_mean": norms_t.mean().item(), "grad_norm_max": norms_t.max().item(),
                       "clipped_fraction": (norms_t > clip).float().mean().item(),
                       **{f"val_{k}": v for k, v in metrics.items()}}
                result.history.append(row)
                for callback in callbacks:
                    callback(epoch, row)
                if not replay:
                    plateau.step(metrics["loss"])
                value = row.get(config.monitor, math.nan)
                if replay:
                    result.best_epoch, result.best = epoch, dict(metrics)
                elif _better(config.monitor, value, best_value) or best_state is None:
                    best_value, best_state, since_best = value, copy.deepcopy(model.state_dict()), 0
                    result.best_epoch, result.best = epoch, dict(metrics)
                else:
                    since_best += 1
                text = (f"epoch {epoch}/{epochs} train_loss {train_loss:.4f} val_loss {metrics['loss']:.4f}"
                        + "".join(f" val_{k} {v:.4f}" for k, v in metrics.items() if k != "loss" and isinstance(v, float))
                        + f" lr {row['lr']:.2e} grad_norm {row['grad_norm_mean']:.3f}")
                if bar is not None:
                    bar.set_postfix_str(f"val_loss {metrics['loss']:.4f} best@{result.best_epoch}", refresh=False)
                    bar.update(1)
                elif mode == "log":
                    log.info(text)
                if not replay and config.early_stopping is not None and since_best >= config.early_stopping:
                    result.stopped_early = True
                    log.info(f"early stop at epoch {epoch}: {config.monitor} has not improved for "
                             f"{config.early_stopping} epochs (best {best_value:.4f} at epoch {result.best_epoch})")
                    break
        finally:
            if bar is not None:
                bar.close()
    result.epochs = len(result.history)
    result.seconds = time.perf_counter() - start
    if not replay:
        model.load_state_dict(best_state)
    return result

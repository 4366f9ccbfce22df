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

Checkpoints: with ``checkpoint_dir``, ``fit`` writes after every ``config.checkpoint_every``-th
epoch (and after the last one) everything it needs to continue bit for bit (:class:`TrainState`:
weights, AdamW moments and step counts, the plateau scheduler, the best weights so far and their
value, epochs since the best, the history, the epoch, torch's CPU and CUDA generator states), and
``fit(..., resume=True)`` continues from it to the result an uninterrupted run reaches
(deterministic mode; same device and thread count). That torch's generators are the only state
to save relies on ``train_batches(epoch)`` being a function of the epoch: lstmkit's
``SequenceBatches`` shuffles with ``numpy.random.default_rng(seed + epoch)`` and its augmentation
draws from a generator seeded from (seed, epoch). Layout (the tensors in safetensors, the rest in
JSON, never a pickle)::

    checkpoint_dir/epoch-000012/model.safetensors   model.*, best.*, optimizer.<i>.<key>, rng.* tensors
    checkpoint_dir/epoch-000012/model.json          lstmkit.checkpoint's format (a SHA-256 over the weights
                                                    and this description): epoch, history, param groups,
                                                    scheduler, config
    checkpoint_dir/latest.json                      manifest: epoch, directory, bytes + SHA-256 of both

The epoch directory is written first, the manifest last (atomic rename), and only then are older
epoch directories removed, so a crash at any moment leaves the previous complete checkpoint valid.
A resume checks the manifest's sizes and hashes and refuses a truncated, altered or mismatched
checkpoint. An epoch whose loss or gradient norm is NaN/inf is never written: ``fit`` raises
``FloatingPointError`` naming the epoch and the last good checkpoint it kept. Under
torch.distributed only rank 0 writes, and a resume runs on one process.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import torch
from torch import Tensor, nn

from ..checks import check_int
from ..checkpoint import META, WEIGHTS, atomic_write_bytes, load_checkpoint, save_checkpoint
from .distributed import shard, world

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
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1", "val_miou"] = "val_loss"  # val_miou: segmentation
    val_fraction: float = 0.2  # carved (stratified) from the training data
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms during fit
    device: str = "auto"  # auto: cuda if available, else cpu
    progress: Literal["auto", "bar", "log", "off"] = "auto"  # auto: a bar on a terminal, log lines otherwise
    checkpoint_every: int = 1  # epochs between checkpoints, when fit is given a checkpoint_dir

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
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(map(repr, MONITORS))}, got {self.monitor!r}")
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


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def _timing(elapsed: float, done: int, left: int) -> str:
    """'elapsed 0:42, ~1:10 left' from this process's epochs so far (an upper bound under early stopping)."""
    return f"elapsed {_clock(elapsed)}, ~{_clock(elapsed / done * left)} left" if left else f"elapsed {_clock(elapsed)}"


def _better(monitor: str, value: float, best: float) -> bool:
    return value < best if monitor == "val_loss" else value > best


# ---------------------------------------------------------------------------- checkpoints

MANIFEST = "latest.json"
_FORMAT, _VERSION = "lstmkit-train-state", 1
_MAY_CHANGE = ("epochs", "progress", "checkpoint_every")  # config fields a resume may change


@dataclass
class TrainState:
    """Everything :func:`fit` needs to continue a run where an epoch ended: what a checkpoint holds."""

    epoch: int  # completed epochs
    model: dict[str, Tensor]
    best_model: dict[str, Tensor]  # the weights of the best epoch so far
    optimizer: dict  # torch's state_dict form: AdamW moments and step counts, param groups
    scheduler: dict  # ReduceLROnPlateau.state_dict()
    rng: dict[str, Tensor]  # "torch": the CPU generator; "cuda": the training device's, when on CUDA
    history: list[dict]
    best_value: float
    best_epoch: int
    best: dict  # validation metrics at the best epoch
    since_best: int
    stopped_early: bool
    seconds: float  # training time so far
    config: dict  # TrainConfig.to_dict() of the run
    path: Path | None = None  # the epoch directory written or read


def _json_safe(obj):
    """NaN/inf as {"__float__": "nan"}, tuples as lists: strict JSON that :func:`_from_json` reverses."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _from_json(obj):
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_dir(path: Path) -> None:
    """Make renames inside ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_train_state(directory: str | os.PathLike, state: TrainState) -> Path:
    """Write ``state`` as ``directory/epoch-NNNNNN/`` then the manifest ``directory/latest.json``
    (atomic rename), then remove older epoch directories; returns the epoch directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state.epoch:06d}"
    target = directory / name
    if target.exists():  # half-written before a crash, or written before a resume from an earlier epoch
        shutil.rmtree(target)
    tensors = {**{f"model.{k}": v for k, v in state.model.items()},
               **{f"best.{k}": v for k, v in state.best_model.items()},
               **{f"rng.{k}": v for k, v in state.rng.items()}}
    opt_state = {}  # the non-tensor entries of the optimizer's per-parameter state (none for AdamW)
    for i, entries in state.optimizer["state"].items():
        for key, value in entries.items():
            if isinstance(value, Tensor):
                tensors[f"optimizer.{i}.{key}"] = value
            else:
                opt_state.setdefault(str(i), {})[key] = value
    meta = {"kind": _FORMAT, "epoch": state.epoch, "optimizer": {"param_groups": state.optimizer["param_groups"],
                                                                 "state": opt_state},
            "scheduler": state.scheduler, "history": state.history, "best_value": state.best_value,
            "best_epoch": state.best_epoch, "best": state.best, "since_best": state.since_best,
            "stopped_early": state.stopped_early, "seconds": state.seconds, "config": state.config}
    save_checkpoint(target, tensors, _json_safe(meta))
    _fsync_dir(target)
    _fsync_dir(directory)
    files = {f: {"bytes": (target / f).stat().st_size, "sha256": _sha256(target / f)} for f in (WEIGHTS, META)}
    manifest = {"format": _FORMAT, "version": _VERSION, "epoch": state.epoch, "path": name, "files": files}
    atomic_write_bytes(directory / MANIFEST, json.dumps(manifest, indent=1).encode())
    _fsync_dir(directory)
    for old in directory.glob("epoch-*"):
        if old.name != name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    state.path = target
    return target


def load_train_state(directory: str | os.PathLike) -> TrainState:
    """Read and verify the checkpoint ``directory/latest.json`` points to (sizes and SHA-256 of
    both files); ValueError for a truncated, altered or foreign one."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"no training checkpoint in {directory}: {MANIFEST} is missing")

    def refused(why: str) -> ValueError:
        return ValueError(f"training checkpoint {directory} refused: {why}; the run cannot continue from it "
                          "(restore the file or train from the start)")

    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise refused(f"{manifest_path} is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
        raise refused(f"{manifest_path} is not a {_FORMAT} manifest (version {_VERSION})")
    name, files = manifest.get("path"), manifest.get("files")
    if (not isinstance(name, str) or not name.startswith("epoch-") or "/" in name or "\\" in name
            or not isinstance(files, dict) or set(files) != {WEIGHTS, META}
            or not all(isinstance(v, dict) for v in files.values())):
        raise refused(f"{manifest_path} is malformed")
    target = directory / name
    for f, want in files.items():
        path = target / f
        if not path.is_file():
            raise refused(f"{path} is missing")
        size = path.stat().st_size
        if size != want.get("bytes"):
            raise refused(f"{path} is {size} bytes but the manifest records {want.get('bytes')}: truncated or replaced")
        if _sha256(path) != want.get("sha256"):
            raise refused(f"{path} does not match the SHA-256 in the manifest: corrupted or replaced")
    try:
        tensors, meta = load_checkpoint(target)
        meta = _from_json(meta)
    except (ValueError, RecursionError) as e:
        raise refused(str(e) or type(e).__name__) from None
    if meta.get("kind") != _FORMAT or meta.get("epoch") != manifest.get("epoch"):
        raise refused(f"{target / META} does not describe epoch {manifest.get('epoch')} of a training run")
    groups: dict[str, dict[str, Tensor]] = {"model": {}, "best": {}, "rng": {}, "optimizer": {}}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix not in groups:
            raise refused(f"unexpected tensor {key!r} in {target / WEIGHTS}")
        groups[prefix][rest] = value
    try:
        opt_state: dict[int, dict] = {int(i): dict(v) for i, v in meta["optimizer"]["state"].items()}
        for key, value in groups["optimizer"].items():
            i, _, name_ = key.partition(".")
            opt_state.setdefault(int(i), {})[name_] = value
        param_groups = [{k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
                        for g in meta["optimizer"]["param_groups"]]
        return TrainState(
            epoch=int(meta["epoch"]), model=groups["model"], best_model=groups["best"],
            optimizer={"state": opt_state, "param_groups": param_groups}, scheduler=dict(meta["scheduler"]),
            rng=groups["rng"], history=list(meta["history"]), best_value=float(meta["best_value"]),
            best_epoch=int(meta["best_epoch"]), best=dict(meta["best"]), since_best=int(meta["since_best"]),
            stopped_early=bool(meta["stopped_early"]), seconds=float(meta["seconds"]), config=dict(meta["config"]),
            path=target)
    except (KeyError, TypeError, ValueError) as e:
        raise refused(f"{target / META} is incomplete ({type(e).__name__}: {e})") from None


def _check_resumable(state: TrainState, config: TrainConfig) -> None:
    now, saved = config.to_dict(), state.config
    changed = sorted(k for k in set(now) | set(saved) if k not in _MAY_CHANGE and now.get(k) != saved.get(k))
    if changed:
        raise ValueError(f"checkpoint {state.path} was written with another training config: "
                         + ", ".join(f"{k} {saved.get(k)!r} there, {now.get(k)!r} here" for k in changed)
                         + f" (only {', '.join(_MAY_CHANGE)} may change on resume)")
    if state.epoch > config.epochs:
        raise ValueError(f"checkpoint {state.path} is at epoch {state.epoch}, past config.epochs={config.epochs}")


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
    the model and config must be the run's (``epochs``, ``progress`` and ``checkpoint_every`` may
    change). A checkpoint of a finished run gives back its result without training. Neither
    applies to a replayed ``lr_schedule``.
    """
    if lr_schedule is not None and (len(lr_schedule) == 0 or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in lr_schedule)):
        raise ValueError(f"lr_schedule must be a non-empty list of positive learning rates, got {lr_schedule!r}")
    replay = lr_schedule is not None
    if replay and (checkpoint_dir is not None or resume is not False):
        raise ValueError("checkpoint_dir/resume do not apply to a replayed lr_schedule (a refit runs from the start)")
    state = None
    if isinstance(resume, TrainState):
        state = resume
    elif resume is True:
        if checkpoint_dir is None:
            raise ValueError("resume=True needs the checkpoint_dir to continue from")
        state = load_train_state(checkpoint_dir)
    elif resume is not False:
        raise TypeError(f"resume must be a bool or a TrainState, got {type(resume).__name__}")
    if state is not None:
        _check_resumable(state, config)
    device = resolve_device(config.device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=config.plateau_factor,
                                                         patience=config.plateau_patience, min_lr=config.min_lr)
    val = [_to(b, device) for b in val_batches]
    params = [p for p in model.parameters() if p.requires_grad]
    rank, world_size = world()
    if state is not None and world_size > 1:
        raise ValueError("a resume runs on one process: continue a distributed run without --devices/torchrun")
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
    first, seconds_before = 1, 0.0
    saved = None  # (epoch, directory) of the last checkpoint written or resumed from
    if state is not None:
        try:
            model.load_state_dict(state.model)
            opt.load_state_dict(copy.deepcopy(state.optimizer))  # AdamW updates its moments in place
            plateau.load_state_dict(state.scheduler)
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(f"checkpoint {state.path} does not fit this model ({e})") from None
        best_state = {k: v.to(device) for k, v in state.best_model.items()}
        best_value, since_best, seconds_before = state.best_value, state.since_best, state.seconds
        result.history = [dict(row) for row in state.history]
        result.best_epoch, result.best, result.stopped_early = state.best_epoch, dict(state.best), state.stopped_early
        first = epochs + 1 if state.stopped_early else state.epoch + 1
        saved = (state.epoch, state.path)
        torch.set_rng_state(state.rng["torch"])
        if device.type == "cuda" and "cuda" in state.rng:
            torch.cuda.set_rng_state(state.rng["cuda"], device)
        elif (device.type == "cuda") != ("cuda" in state.rng):
            log.warning(f"checkpoint {state.path} was written on another kind of device: the continuation will "
                        "not match an uninterrupted run bit for bit")
        log.info(f"resuming from epoch {state.epoch} ({state.path})")
    if bar is not None and first > 1:
        bar.update(first - 1)
    start = time.perf_counter()
    with _deterministic(config.deterministic):
        try:
            for epoch in range(first, epochs + 1):
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
                    kept = ""
                    if checkpoint_dir is not None:
                        kept = (f"epoch {epoch} was not saved and the last good checkpoint (epoch {saved[0]}, "
                                f"{saved[1]}) was kept; " if saved else "no checkpoint had been written yet; ")
                    raise FloatingPointError(
                        f"epoch {epoch}: training loss or gradient norm is NaN/inf (loss {train_loss}); {kept}"
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
                if config.monitor not in row and not replay:
                    raise ValueError(f"train.monitor {config.monitor!r} is not reported by this task's validation; "
                                     f"choose one of {', '.join(k for k in row if k.startswith('val_'))}")
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
                    log.info(f"{text} · {_timing(time.perf_counter() - start, epoch - first + 1, epochs - epoch)}")
                stop = not replay and config.early_stopping is not None and since_best >= config.early_stopping
                result.stopped_early = stop
                if checkpoint_dir is not None and rank == 0 and (
                        epoch % config.checkpoint_every == 0 or epoch == epochs or stop):
                    rng = {"torch": torch.get_rng_state()}
                    if device.type == "cuda":
                        rng["cuda"] = torch.cuda.get_rng_state(device)
                    path = save_train_state(checkpoint_dir, TrainState(
                        epoch, model.state_dict(), best_state, opt.state_dict(), plateau.state_dict(), rng,
                        result.history, best_value, result.best_epoch, result.best, since_best, stop,
                        seconds_before + time.perf_counter() - start, config.to_dict()))
                    saved = (epoch, path)
                if stop:
                    log.info(f"early stop at epoch {epoch}: {config.monitor} has not improved for "
                             f"{config.early_stopping} epochs (best {best_value:.4f} at epoch {result.best_epoch})")
                    break
        finally:
            if bar is not None:
                bar.close()
    result.epochs = len(result.history)
    result.seconds = seconds_before + time.perf_counter() - start
    if not replay:
        model.load_state_dict(best_state)
    return result

"""Training checkpoints: everything :func:`lstmkit.tasks.trainer.fit` needs to continue a run bit for bit.

A :class:`TrainState` holds the weights, the AdamW moments and step counts, the plateau scheduler,
the best weights so far and their value, epochs since the best, the history, the epoch, torch's
CPU and CUDA generator states and, with ``train.ema``, the weight average. Layout (the tensors in
safetensors, the rest in JSON, never a pickle)::

    checkpoint_dir/epoch-000012/model.safetensors   model.*, best.*, optimizer.<i>.<key>, rng.*, ema.* tensors
    checkpoint_dir/epoch-000012/model.json          lstmkit.checkpoint's format (a SHA-256 over the weights
                                                    and this description): epoch, history, param groups,
                                                    scheduler, config
    checkpoint_dir/latest.json                      manifest: epoch, directory, bytes + SHA-256 of both

The epoch directory is written first, the manifest last (atomic rename), and only then are older
epoch directories removed, so a crash at any moment leaves the previous complete checkpoint valid.
:func:`load_train_state` checks the manifest's sizes and hashes and refuses a truncated, altered or
foreign checkpoint; :func:`check_continuation` refuses one written with another training config.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor

from . import META, WEIGHTS, atomic_write_bytes, load_checkpoint, save_checkpoint

__all__ = ["TrainState", "save_train_state", "load_train_state", "check_continuation", "MANIFEST", "MAY_CHANGE"]

MANIFEST = "latest.json"
_FORMAT, _VERSION = "lstmkit-train-state", 1
# training-config fields a resume may change: none of them changes the numbers of the epochs to come
MAY_CHANGE = ("epochs", "progress", "checkpoint_every", "logger")


@dataclass
class TrainState:
    """Everything ``fit`` needs to continue a run where an epoch ended: what a checkpoint holds."""

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
    ema: dict[str, Tensor] = field(default_factory=dict)  # the weight average's state (train.ema), else empty


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


# ---------------------------------------------------------------------------- writing

def _pack(state: TrainState) -> tuple[dict[str, Tensor], dict]:
    """(the tensors, the JSON description) of ``state``."""
    tensors = {**{f"model.{k}": v for k, v in state.model.items()},
               **{f"best.{k}": v for k, v in state.best_model.items()},
               **{f"rng.{k}": v for k, v in state.rng.items()},
               **{f"ema.{k}": v for k, v in state.ema.items()}}
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
    return tensors, _json_safe(meta)


def save_train_state(directory: str | os.PathLike, state: TrainState) -> Path:
    """Write ``state`` as ``directory/epoch-NNNNNN/`` then the manifest ``directory/latest.json``
    (atomic rename), then remove older epoch directories; returns the epoch directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state.epoch:06d}"
    target = directory / name
    if target.exists():  # half-written before a crash, or written before a resume from an earlier epoch
        shutil.rmtree(target)
    save_checkpoint(target, *_pack(state))
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


# ---------------------------------------------------------------------------- reading

class _Refused(ValueError):
    """A checkpoint that cannot be continued from; :func:`load_train_state` words the message."""


def _verified_epoch_dir(directory: Path) -> tuple[Path, dict]:
    """(the epoch directory, the manifest) after checking both files' sizes and SHA-256."""
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise _Refused(f"{manifest_path} is not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT or manifest.get("version") != _VERSION:
        raise _Refused(f"{manifest_path} is not a {_FORMAT} manifest (version {_VERSION})")
    name, files = manifest.get("path"), manifest.get("files")
    if (not isinstance(name, str) or not name.startswith("epoch-") or "/" in name or "\\" in name
            or not isinstance(files, dict) or set(files) != {WEIGHTS, META}
            or not all(isinstance(v, dict) for v in files.values())):
        raise _Refused(f"{manifest_path} is malformed")
    target = directory / name
    for f, want in files.items():
        path = target / f
        if not path.is_file():
            raise _Refused(f"{path} is missing")
        size = path.stat().st_size
        if size != want.get("bytes"):
            raise _Refused(f"{path} is {size} bytes but the manifest records {want.get('bytes')}: "
                           "truncated or replaced")
        if _sha256(path) != want.get("sha256"):
            raise _Refused(f"{path} does not match the SHA-256 in the manifest: corrupted or replaced")
    return target, manifest


def _unpack(target: Path, tensors: dict[str, Tensor], meta: dict) -> TrainState:
    """The :class:`TrainState` that :func:`_pack` wrote as ``tensors`` and ``meta``."""
    groups: dict[str, dict[str, Tensor]] = {"model": {}, "best": {}, "rng": {}, "optimizer": {}, "ema": {}}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix not in groups:
            raise _Refused(f"unexpected tensor {key!r} in {target / WEIGHTS}")
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
            path=target, ema=groups["ema"])
    except (KeyError, TypeError, ValueError) as e:
        raise _Refused(f"{target / META} is incomplete ({type(e).__name__}: {e})") from None


def load_train_state(directory: str | os.PathLike) -> TrainState:
    """Read and verify the checkpoint ``directory/latest.json`` points to (sizes and SHA-256 of
    both files); ValueError for a truncated, altered or foreign one."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise FileNotFoundError(f"no training checkpoint in {directory}: {MANIFEST} is missing")
    try:
        target, manifest = _verified_epoch_dir(directory)
        try:
            tensors, meta = load_checkpoint(target)
            meta = _from_json(meta)
        except (ValueError, RecursionError) as e:
            raise _Refused(str(e) or type(e).__name__) from None
        if meta.get("kind") != _FORMAT or meta.get("epoch") != manifest.get("epoch"):
            raise _Refused(f"{target / META} does not describe epoch {manifest.get('epoch')} of a training run")
        return _unpack(target, tensors, meta)
    except _Refused as e:
        raise ValueError(f"training checkpoint {directory} refused: {e}; the run cannot continue from it "
                         "(restore the file or train from the start)") from None


def check_continuation(state: TrainState, config: dict) -> None:
    """Refuse to continue ``state`` under the training config ``config`` (``TrainConfig.to_dict()``)
    when a field outside :data:`MAY_CHANGE` differs, or when it already ran past ``config["epochs"]``."""
    saved = state.config
    changed = sorted(k for k in set(config) | set(saved)
                     if k not in MAY_CHANGE and config.get(k) != saved.get(k))
    if changed:
        raise ValueError(f"checkpoint {state.path} was written with another training config: "
                         + ", ".join(f"{k} {saved.get(k)!r} there, {config.get(k)!r} here" for k in changed)
                         + f" (only {', '.join(MAY_CHANGE)} may change on resume)")
    if state.epoch > config["epochs"]:
        raise ValueError(f"checkpoint {state.path} is at epoch {state.epoch}, past config.epochs={config['epochs']}")

"""Transfer learning for every task: start a run from another run's weights, optionally freezing some.

``lstmkit train CONFIG --init-from RUN [--freeze PATTERN ...]`` sets ``train.init_from`` (the
source run directory), ``train.init_sha256`` (the SHA-256 of its ``model.safetensors``, so the saved
``config.yaml`` names exactly which weights a run started from, and a re-run from that config refuses
other weights) and ``train.freeze`` (parameter-name patterns). Every task trains through
:func:`lstmkit.tasks.trainer.fit`, which calls :func:`apply_transfer` before its first epoch, so the
feature reaches every task with no task code.

What is loaded: every tensor of the source's state dict whose name and shape match one of the new
model's; the rest is listed as ``skipped`` (same name, other shape: e.g. a classifier head for another
number of classes), ``new`` (in the new model only: left as initialised) or ``unused`` (in the source
only). The lists are logged, written to ``RUN/transfer.json`` and summarised in ``report.md``
(:func:`lstmkit.eval.report.transfer_lines`).

Which model: the run's own model (and a forecasting run's ensemble members and refit); the baselines a
run trains beside it (checkpoint roles ``baseline``/``baselines/...``) always train from scratch.

Freezing: ``train.freeze`` holds :func:`fnmatch.fnmatchcase` patterns matched against parameter names
(``encoder.*``, ``*weight_ih*``); a pattern that matches no parameter raises, naming it and listing
the names. Frozen parameters get ``requires_grad=False``: AdamW skips them (no update, no weight decay)
and they are left out of gradient clipping.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import atomic_write_bytes, load_checkpoint
from ..eval.report import TRANSFER_FILE

__all__ = ["check_transfer_fields", "TransferReport", "source_hash", "load_matching", "freeze_parameters", "apply_transfer", "TRANSFER_FILE"]

log = logging.getLogger(__name__)

_WEIGHTS = "model.safetensors"


@dataclass
class TransferReport:
    """What :func:`apply_transfer` did: parameter/buffer names per outcome."""

    source: str | None = None
    sha256: str | None = None
    loaded: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"name", "source_shape", "shape"}
    new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)
    trainable_parameters: int = 0
    frozen_parameters: int = 0

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)}, skipped {len(self.skipped)} (shape mismatch), new {len(self.new)}, "
                f"unused {len(self.unused)}; frozen {len(self.frozen)} tensor(s) ({self.frozen_parameters:,} weights), "
                f"{self.trainable_parameters:,} trainable")


def check_transfer_fields(config) -> None:
    """TrainConfig's validation of ``freeze`` and ``init_sha256``."""
    freeze = config.freeze
    if not isinstance(freeze, list) or not all(isinstance(p, str) and p for p in freeze):
        raise ValueError(f"freeze must be a list of parameter-name patterns (fnmatch), got {freeze!r}")
    if config.init_sha256 is not None and config.init_from is None:
        raise ValueError("init_sha256 names the weights of train.init_from, which is not set")


def _weights_file(run: str | os.PathLike) -> Path:
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"train.init_from: run directory {run} does not exist")
    path = run / _WEIGHTS
    if not path.is_file():
        raise ValueError(f"train.init_from: {run} holds no {_WEIGHTS}: not a finished lstmkit run")
    return path


def source_hash(run: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a run's ``model.safetensors``."""
    h = hashlib.sha256()
    with open(_weights_file(run), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], report: TransferReport) -> TransferReport:
    """Copy into ``model`` every tensor of ``state`` whose name and shape match; fill ``report``'s lists."""
    own = model.state_dict()
    matched = {}
    for name, value in own.items():
        if name not in state:
            report.new.append(name)
        elif tuple(state[name].shape) != tuple(value.shape):
            report.skipped.append({"name": name, "source_shape": list(state[name].shape), "shape": list(value.shape)})
        else:
            matched[name] = state[name].to(dtype=value.dtype) if value.is_floating_point() else state[name]
            report.loaded.append(name)
    report.unused = sorted(set(state) - set(own))
    model.load_state_dict(matched, strict=False)
    return report


def freeze_parameters(model: nn.Module, patterns: list[str] | tuple[str, ...]) -> list[str]:
    """Set ``requires_grad=False`` on the parameters whose names match any pattern; returns their names.
    A pattern matching no parameter raises ValueError naming it and the parameter names."""
    names = [n for n, _ in model.named_parameters()]
    frozen = set()
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
            raise ValueError(f"train.freeze: pattern {pattern!r} matches no parameter (fnmatch on names); the model's "
                             f"parameters are: {shown}")
        frozen.update(hits)
    for n, p in model.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    return [n for n in names if n in frozen]


def _is_baseline(checkpoint_dir: str | os.PathLike | None) -> bool:
    """Whether a fit's checkpoint folder (``RUN/checkpoint/<role>``) is a baseline's."""
    if checkpoint_dir is None:
        return False
    parts = Path(checkpoint_dir).parts
    if "checkpoint" not in parts:
        return False
    role = parts[len(parts) - 1 - parts[::-1].index("checkpoint") + 1:]
    return bool(role) and role[0].startswith("baseline")


def _run_root(checkpoint_dir: str | os.PathLike | None) -> Path | None:
    if checkpoint_dir is None:
        return None
    return next((p.parent for p in (Path(checkpoint_dir), *Path(checkpoint_dir).parents) if p.name == "checkpoint"),
                None)


def apply_transfer(model: nn.Module, config, checkpoint_dir: str | os.PathLike | None = None,
                   resumed: bool = False) -> TransferReport | None:
    """``fit``'s first act: load ``config.init_from``'s matching weights into ``model`` (not when
    ``resumed``: the checkpoint holds the weights) and freeze ``config.freeze``; None when neither is
    set or the fit trains a baseline. Writes ``RUN/transfer.json`` when the run directory is known."""
    init, patterns = getattr(config, "init_from", None), list(getattr(config, "freeze", None) or [])
    if (init is None and not patterns) or _is_baseline(checkpoint_dir):
        return None
    report = TransferReport()
    if init is not None:
        digest = source_hash(init)
        expected = getattr(config, "init_sha256", None)
        if expected is not None and expected != digest:
            raise ValueError(f"train.init_from: {init}/{_WEIGHTS} has SHA-256 {digest}, but train.init_sha256 is "
                             f"{expected}: the source run changed since this config was written")
        report.source, report.sha256 = str(Path(init).resolve()), digest
        if not resumed:  # read as every run is: safetensors checked against model.json's hash, onto the CPU
            load_matching(model, load_checkpoint(init, map_location="cpu")[0], report)
    report.frozen = freeze_parameters(model, patterns)
    report.frozen_parameters = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    report.trainable_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if report.trainable_parameters == 0:
        raise ValueError(f"train.freeze {patterns} freezes every parameter: nothing left to train")
    log.info(f"init from {report.source or '(none)'}: {report.summary()}")
    for item in report.skipped:
        log.info(f"  skipped {item['name']}: shape {item['source_shape']} in the source, {item['shape']} here")
    if report.new:
        log.info(f"  new (as initialised): {', '.join(report.new)}")
    root = _run_root(checkpoint_dir)
    if root is not None and not resumed:
        atomic_write_bytes(root / TRANSFER_FILE, json.dumps(report.to_dict(), indent=1).encode())
    return report

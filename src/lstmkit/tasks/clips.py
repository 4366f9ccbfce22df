"""Clip and volume classification end to end: action recognition and volume classification.

Two tasks share one training path (:func:`_train_pair`): each trains its sequence model AND its
single-frame baseline in the same run, on the same split, and writes both results.

- ``task: action`` (:class:`ActionConfig`, :func:`train_action`): motion-labelled digit clips
  (:func:`lstmkit.data.clips.motion_clips`; the class is the motion, so one frame cannot tell
  it). Model ``cnn_lstm`` (LRCN-style), baseline ``frame_cnn`` on the middle valid frame, the
  frame whose state the generator draws class-independently: the baseline should stay near
  chance (1 / number of classes) by construction.
- ``task: volume`` (:class:`VolumeConfig`, :func:`train_volume`): generated 3D shapes
  (:func:`lstmkit.data.clips.shape_volumes`) or a MedMNIST-3D ``.npz`` (``data.medmnist``).
  Model ``slice_lstm`` (bidirectional LSTM over per-slice CNN features), baseline
  ``slice_cnn``: a 2D CNN on the middle slice.

Validation is carved (stratified, seed ``train.seed``) from the training data -- for a MedMNIST
file, its own ``val`` split is used -- and the test split is scored once at the end. The run
lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory; ``metrics.json``
adds ``chance`` and ``per_class``, the report confusion matrices and ``samples.png`` (one row per
class; :func:`lstmkit.eval.vision_report.clips_report`).

:func:`classify_clip` and :func:`classify_volume` load a run and classify ``.npy`` arrays;
``lstmkit evaluate DIR`` re-scores both models on the run's test split.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data.clips import ClipSet, load_medmnist3d, motion_clips, shape_volumes
from ..data.collate import TensorBatches
from ..data.files import read_npy
from ..data.splits import stratified_split
from ..eval.images import class_strip
from ..eval.metrics import logit_report, logit_scores
from ..eval.vision_report import clips_report
from .config import check_task, model_section, path_field
from .registry import Prediction, Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, run_task
from .runs import load_model, model_spec
from .trainer import TrainConfig

__all__ = ["ActionData", "ActionConfig", "VolumeData", "VolumeConfig", "train_action", "train_volume",
           "classify_clip", "classify_volume"]

log = logging.getLogger(__name__)



def _noise(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


@dataclass
class ActionData:
    """Motion-labelled clips (:func:`lstmkit.data.clips.motion_clips`); train and test clips are
    made from disjoint digit images."""

    n_train: int = 3000
    n_test: int = 1000
    size: int = 32  # canvas size S
    glyph_size: int = 14
    min_frames: int = 8
    max_frames: int = 12
    noise: float = 0.05
    seed: int = 0  # of the clips (train.seed seeds the split, initialisation and batches)
    mnist: str | None = path_field()  # a directory with the MNIST IDX files; default: scikit-learn's digits

    def __post_init__(self) -> None:
        check_int("data.n_train", self.n_train, 16)
        check_int("data.n_test", self.n_test)
        check_int("data.size", self.size, 8)
        check_int("data.glyph_size", self.glyph_size, 4)
        if self.glyph_size > self.size:
            raise ValueError(f"data.glyph_size must be <= data.size={self.size}, got {self.glyph_size}")
        check_int("data.min_frames", self.min_frames, 2)
        check_int("data.max_frames", self.max_frames, self.min_frames)
        _noise("data.noise", self.noise)
        check_int("data.seed", self.seed, 0)


@dataclass
class ActionConfig:
    data: ActionData = field(default_factory=ActionData)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "cnn_lstm"})
    baseline: dict[str, Any] = field(default_factory=lambda: {"name": "frame_cnn"})
    train: TrainConfig = field(default_factory=TrainConfig)
    task: Literal["action"] = "action"

    def __post_init__(self) -> None:
        check_task(self, "action")
        self.model = model_section("model", self.model, "cnn_lstm")
        self.baseline = model_section("baseline", self.baseline, "frame_cnn")


@dataclass
class VolumeData:
    """Generated shape volumes (:func:`lstmkit.data.clips.shape_volumes`), or a MedMNIST-3D file."""

    n_train: int = 1800
    n_test: int = 600
    size: int = 28  # slice size S
    depth: int = 28  # slices D
    noise: float = 0.1
    seed: int = 0
    medmnist: str | None = path_field()  # a MedMNIST-3D .npz: train on it (its val split validates) instead

    def __post_init__(self) -> None:
        check_int("data.n_train", self.n_train, 16)
        check_int("data.n_test", self.n_test)
        check_int("data.size", self.size, 8)
        check_int("data.depth", self.depth, 4)
        _noise("data.noise", self.noise)
        check_int("data.seed", self.seed, 0)
        if self.medmnist is not None and not isinstance(self.medmnist, str):
            raise ValueError(f"data.medmnist must be a path to a MedMNIST-3D .npz or null, got {self.medmnist!r}")


@dataclass
class VolumeConfig:
    data: VolumeData = field(default_factory=VolumeData)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "slice_lstm"})
    baseline: dict[str, Any] = field(default_factory=lambda: {"name": "slice_cnn"})
    train: TrainConfig = field(default_factory=TrainConfig)
    task: Literal["volume"] = "volume"

    def __post_init__(self) -> None:
        check_task(self, "volume")
        self.model = model_section("model", self.model, "slice_lstm")
        self.baseline = model_section("baseline", self.baseline, "slice_cnn")


# ------------------------------------------------------------------------------ training


def _tensors(s: ClipSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x (N, T, C, H, W), lengths (N,), labels (N,)) from clips, or volumes read as 1-channel slice sequences."""
    x = torch.from_numpy(s.x)
    if x.dim() == 4:
        x = x.unsqueeze(2)  # volumes (N, D, H, W) -> (N, D, 1, H, W)
    return x, torch.from_numpy(s.lengths), torch.from_numpy(s.labels)


def _loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    x, lengths, y = batch
    return model.loss(x, lengths, y)


def _logits(model: nn.Module, batches) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.cat([model(x, n) for x, n, _ in batches])
    return logits, torch.cat([b[2] for b in batches])


def _evaluate(model: nn.Module, batches) -> dict:
    logits, y = _logits(model, batches)
    return logit_scores(logits, y, logits.shape[1])


def _eval_batches(data: tuple, train: TrainConfig) -> list:
    """Validation or test batches: 256 samples (the training batch size when larger)."""
    return list(TensorBatches(data, max(train.batch_size, 256)))


def _test_scores(model: nn.Module, test: list, classes: list) -> tuple[dict, list, np.ndarray]:
    """(metrics with the cross-entropy ``loss``, per-class report, confusion matrix) of ``model`` on the
    test batches."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return logit_report(*_logits(model, [tuple(t.to(device) for t in b) for b in test]), classes)


@dataclass
class _Data:
    train: ClipSet
    fit: tuple  # the training tensors (validation carved out when the data has no val split)
    val: tuple
    test: ClipSet
    describe: dict  # what model.json records of the data, beside the classes
    samples: Callable[[ClipSet], np.ndarray]


def _prepare_pair(config, train_set: ClipSet, val_set: ClipSet | None, test_set: ClipSet, describe: dict,
                  samples: Callable[[ClipSet], np.ndarray]) -> _Data:
    train = config.train
    data = _tensors(train_set)
    if val_set is None:
        tr, va = stratified_split(train_set.labels, train.val_fraction, seed=train.seed)
        tr, va = torch.from_numpy(tr), torch.from_numpy(va)
        data, val_data = tuple(t[tr] for t in data), tuple(t[va] for t in data)
    else:
        val_data = _tensors(val_set)
    log.info(f"{config.task}: {len(data[0])} train / {len(val_data[0])} validation / {len(test_set)} test samples, "
             f"{len(train_set.classes)} classes")
    return _Data(train_set, data, val_data, test_set, describe, samples)


def _train(run: Run, data: _Data) -> None:
    """config.model, then config.baseline (its role: its model name), on the same batches."""
    config, classes = run.config, data.train.classes
    batches = TensorBatches(data.fit, run.train.batch_size, shuffle=True, seed=run.train.seed)
    val = _eval_batches(data.val, run.train)
    fixed = {"num_classes": len(classes), "in_channels": int(data.fit[0].shape[2])}
    for role, spec_cfg in (("model", config.model), (config.baseline["name"], config.baseline)):
        name, kwargs = model_spec(spec_cfg, **fixed)
        model = run.build(name, kwargs)
        log.info(f"training {name} ({sum(p.numel() for p in model.parameters()):,} parameters)")
        run.fit(role, model, {"name": name, **kwargs}, batches, val, _loss, _evaluate,
                meta={"classes": list(classes), **data.describe})


def _score(run: Run, data: _Data, part: str) -> Scores:
    if part == "val":  # each role's selected epoch
        return Scores(run.model.result.best, {r: t.result.best for r, t in run.baselines.items()})
    test = _eval_batches(_tensors(data.test), run.train)
    blocks = {role: _test_block(*_test_scores(t.model, test, list(data.train.classes))) for role, t in run.roles.items()}
    return Scores(blocks["model"]["test"], {r: b for r, b in blocks.items() if r != "model"}, blocks)


def _summary(run: Run, role: str, scores: dict) -> dict:
    t, val = run.roles[role], scores["val"].model if role == "model" else scores["val"].baselines[role]
    return {"name": t.spec["name"], **scores["test"].outputs[role], "val": val,
            "train_seconds": round(t.result.seconds, 3), "train_cpu_seconds": round(t.cpu_seconds, 1),
            "epochs": t.result.epochs, "best_epoch": t.result.best_epoch, "parameters": t.params}


def _metrics(run: Run, data: _Data, scores: dict) -> dict:
    classes = data.train.classes
    return {"baselines": {role: _summary(run, role, scores) for role in run.baselines}, **_summary(run, "model", scores),
            "chance": 1 / len(classes), "classes": list(classes), "seed": run.train.seed, "n_train": len(data.fit[0]),
            "n_val": len(data.val[0]), "n_test": len(data.test), "device": run.model.device,
            "cpu_seconds": round(run.cpu_seconds(), 1)}


def _report(run: Run, data: _Data, metrics: dict, scores: dict):
    return clips_report(run.out, task=run.config.task, metrics=metrics, samples=data.samples(data.train),
                        histories=run.histories())


def _test_block(test: dict, per_class: list, cm: np.ndarray) -> dict:
    """What metrics.json holds of one model's test scores (and ``lstmkit evaluate`` prints)."""
    return {"test": test, "per_class": per_class, "confusion_matrix": cm.tolist()}


def _block(scores: Scores) -> dict:
    """What ``lstmkit evaluate`` prints: metrics.json's ``test``, ``per_class`` and ``confusion_matrix``,
    and the same for the baseline under ``baselines``."""
    return {**scores.outputs["model"], "baselines": scores.baselines}


def _strip(s: ClipSet, step: int = 1) -> np.ndarray:
    return class_strip(s.x, s.labels, len(s.classes), step)


def _action(config: ActionConfig) -> _Data:
    d = config.data
    describe = {"size": d.size, "min_frames": d.min_frames, "max_frames": d.max_frames}
    return _prepare_pair(config, _action_clips(d, "train"), None, _action_clips(d, "test"), describe, _strip)


ACTION = Steps("action", _action, _train, _score, _metrics, _report, block=_block)


def train_action(config: ActionConfig, out_dir: str | os.PathLike, resume: bool = False, score_test: bool = True
                 ) -> dict:
    """Train the CNN-LSTM and its single-frame baseline on motion clips; write the run directory
    (``resume``: continue the interrupted run there)."""
    return run_task(ACTION, config, out_dir, resume, score_test)


def _action_clips(d: ActionData, split: str) -> ClipSet:
    return motion_clips(d.n_train if split == "train" else d.n_test, d.seed, split, size=d.size,
                        glyph_size=d.glyph_size, min_frames=d.min_frames, max_frames=d.max_frames, noise=d.noise,
                        mnist=d.mnist)


def _volume(config: VolumeConfig) -> _Data:
    d = config.data
    if d.medmnist is not None:
        log.info(f"MedMNIST-3D {d.medmnist}: using its own val split for validation; data.n_train, n_test, size, "
                 "depth and noise do not apply")
    train_set, val_set, test_set = _volumes(d)
    depth, h, w = train_set.x.shape[1:]
    describe = {"depth": int(depth), "height": int(h), "width": int(w)}
    return _prepare_pair(config, train_set, val_set, test_set, describe,
                         lambda s: _strip(s, max(1, s.x.shape[1] // 14)))


VOLUME = Steps("volume", _volume, _train, _score, _metrics, _report, block=_block)


def train_volume(config: VolumeConfig, out_dir: str | os.PathLike, resume: bool = False, score_test: bool = True
                 ) -> dict:
    """Train the slice BiLSTM and its single-slice baseline on volumes; write the run directory
    (``resume``: continue the interrupted run there)."""
    return run_task(VOLUME, config, out_dir, resume, score_test)


def _volumes(d: VolumeData) -> tuple[ClipSet, ClipSet | None, ClipSet]:
    """(train, val, test): a MedMNIST-3D file's own splits, or generated volumes (val None: carved later)."""
    if d.medmnist is not None:
        splits = load_medmnist3d(d.medmnist)
        return splits["train"], splits["val"], splits["test"]
    kw = dict(size=d.size, depth=d.depth, noise=d.noise)
    return shape_volumes(d.n_train, d.seed, "train", **kw), None, shape_volumes(d.n_test, d.seed, "test", **kw)


# ---------------------------------------------------------------------------- inference


@torch.no_grad()
def _predict(model: nn.Module, x: np.ndarray, classes: list) -> list[dict]:
    device = next(model.parameters()).device
    xt = torch.from_numpy(x).to(device)
    lengths = torch.full((len(x),), x.shape[1], dtype=torch.int64, device=device)
    probs = torch.softmax(model(xt, lengths).double(), 1).cpu().numpy()
    return [{"label": classes[int(p.argmax())], "probabilities": {c: float(v) for c, v in zip(classes, p)}}
            for p in probs]


def classify_clip(run_dir: str | os.PathLike, path: str | os.PathLike, device: str = "cpu") -> list[dict]:
    """Classify the clip(s) in a ``.npy`` with an action run's model.

    ``path`` holds one clip ``(L, S, S)`` or ``(L, 1, S, S)``, or clips of one length
    ``(N, L, 1, S, S)``, values in [0, 1] (uint8 is scaled by 1/255); ``L`` must lie in the
    trained range of frames and ``S`` be the trained canvas size. Returns one
    ``{"label", "probabilities"}`` per clip.
    """
    model, meta = load_model(run_dir, "action", device)
    a = read_npy(path, "input")
    size, lo, hi = meta["size"], meta["min_frames"], meta["max_frames"]
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim == 4:
        a = a[None]
    if a.ndim != 5 or a.shape[2] != 1:
        raise ValueError(f"{path}: a clip is (L, {size}, {size}) or (L, 1, {size}, {size}), clips are "
                         f"(N, L, 1, {size}, {size}); got shape {a.shape}")
    if a.shape[3:] != (size, size):
        raise ValueError(f"{path}: frames are {a.shape[4]}x{a.shape[3]} but this model was trained on "
                         f"{size}x{size} frames")
    if not lo <= a.shape[1] <= hi:
        raise ValueError(f"{path}: clips have {a.shape[1]} frames but this model was trained on {lo} to {hi}")
    return _predict(model, a, meta["classes"])


def classify_volume(run_dir: str | os.PathLike, path: str | os.PathLike, device: str = "cpu") -> list[dict]:
    """Classify the volume(s) in a ``.npy`` with a volume run's model: one volume ``(D, H, W)`` or
    several ``(N, D, H, W)`` of the trained shape, values in [0, 1] (uint8 is scaled by 1/255).
    Returns one ``{"label", "probabilities"}`` per volume."""
    model, meta = load_model(run_dir, "volume", device)
    a = read_npy(path, "input")
    shape = (meta["depth"], meta["height"], meta["width"])
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"{path}: a volume is (D, H, W) = {shape} and volumes are (N, D, H, W); got rank {a.ndim} "
                         f"shape {a.shape}")
    if a.shape[1:] != shape:
        raise ValueError(f"{path}: volumes are {a.shape[1:]} (D, H, W) but this model was trained on {shape}")
    return _predict(model, a[:, :, None], meta["classes"])


def _predictor(classify: Callable[[str | os.PathLike, str | os.PathLike], list[dict]]):
    def predict(run: str | os.PathLike, path: str | os.PathLike, options: dict) -> Prediction:
        rows = classify(run, path)
        return Prediction(json.dumps(rows, indent=1), {"predictions": len(rows)}, f"{len(rows)} predictions")

    return predict


_TUNING = Tuning("val_accuracy", {"val_accuracy": "maximize", "val_macro_f1": "maximize", "val_loss": "minimize"}, {
    "train.lr": {"type": "float", "low": 5.0e-4, "high": 5.0e-3, "log": True},
    "model.hidden_size": {"type": "categorical", "choices": [32, 64, 128]},
    "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "train.weight_decay": {"type": "float", "low": 1.0e-4, "high": 1.0e-1, "log": True}})  # both tasks
_BATCHNORM = "normalises frames with BatchNorm, whose batch statistics would differ per process"
register_task(Task(
    "action", "clip classification: CNN-LSTM against a frame CNN", ActionConfig, train_action,
    _predictor(classify_clip), "a .npy of one clip (T, S, S) or many (N, T, 1, S, S)",
    tune=_TUNING, steps=ACTION,
    multi_process=_BATCHNORM))
register_task(Task(
    "volume", "volume classification: a slice-sequence LSTM against a slice CNN", VolumeConfig, train_volume,
    _predictor(classify_volume), "a .npy of one volume (D, H, W) or many",
    tune=_TUNING, steps=VOLUME,
    multi_process=_BATCHNORM))

"""Semantic segmentation end to end: a ReSeg model against a fully convolutional baseline.

``train_segmenter(config, out_dir)`` is what ``lstmkit train`` runs for ``task: segment``:

1. data: generated ``digit-scenes`` (:func:`lstmkit.data.scenes.digit_scenes`: training scenes
   from the training glyphs, test scenes from the test glyphs, fixed seeds), or a user folder of
   image/mask pairs (``data.path``, :func:`lstmkit.data.scenes.load_mask_folder`) from which a
   test split is carved (``data.test_fraction``, ``data.split_seed``); the validation split is
   carved from the training part (``train.val_fraction``, ``train.seed``);
2. the model (``model``, e.g. ``reseg``) and the baseline (``baseline``, e.g. ``fcn_segmenter``;
   with ``match_parameters: true`` its width is chosen to match the model's parameter count)
   are trained one after the other with :func:`lstmkit.tasks.trainer.fit` from the same seed,
   on the same batches, with the same :class:`TrainConfig`; weights are selected on validation;
3. both are scored on validation and test (pixel accuracy, per-class IoU, mIoU:
   :mod:`lstmkit.eval.segmentation`); the run lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`)
   writes the run directory (the model's ``model.json`` holds its classes, channels and image
   size); the report adds the baseline's learning curves and ``overlays.png`` (image | truth |
   model | baseline; :func:`lstmkit.eval.vision_report.segment_report`).

:func:`load_segmenter`, :func:`segment_image` and :func:`write_segmentation` serve
``lstmkit segment DIR IMAGE [--output PNG]``; ``lstmkit evaluate DIR`` is the lifecycle's :func:`lstmkit.tasks.lifecycle.evaluate_run`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data.images import read_image
from ..data.scenes import (CLASS_WEIGHTS, SPLIT_SEEDS, Scenes, check_glyph_jitter, class_weights, fresh_scenes,
                           image_channels, load_segment_data)
from ..eval.images import write_png
from ..eval.segmentation import colorize_mask, segmentation_confusion, segmentation_metrics
from ..eval.vision_report import segment_report
from ..models.segmenter import fcn_width_for
from .config import check_task, model_section, path_field, to_plain
from .registry import Prediction, Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, nested_test_block, run_task
from .runs import load_model, model_spec
from .trainer import TrainConfig, resolve_device

__all__ = ["SegmentData", "SegmentConfig", "train_segmenter",
           "load_segmenter", "segment_image", "write_segmentation"]

log = logging.getLogger(__name__)

TASK = "segment"


@dataclass
class SegmentData:
    """Generated ``digit-scenes`` (sizes, counts, seeds) or a user folder ``path`` of image/mask pairs."""

    dataset: Literal["digit-scenes"] | None = None  # digit-scenes unless a path is given
    path: str | None = path_field()  # DIR with images/NAME.png + masks/NAME.png (mask pixel = class index)
    size: int = 32  # digit-scenes: canvas size in pixels
    glyph_size: int = 14  # digit-scenes: digit size in pixels
    max_digits: int = 4  # digit-scenes: 1..max_digits digits per canvas
    train_scenes: int = 2000  # digit-scenes: generated from the training glyphs (validation is carved from them)
    test_scenes: int = 500  # digit-scenes: generated from the test glyphs
    train_seed: int = SPLIT_SEEDS["train"]
    test_seed: int = SPLIT_SEEDS["test"]
    mnist: str | None = path_field()  # digit-scenes: a directory of MNIST IDX files instead of scikit-learn's digits
    # digit-scenes augmentation: every epoch draws new training scenes (the same training glyphs, new placements);
    # validation stays the fixed scenes carved from train_scenes, and the epoch's count is what remains of them
    fresh_scenes: bool = False
    rotate: float = 0.0  # fresh_scenes: each placed training glyph turned by a random angle in +-rotate degrees
    rescale: float = 0.0  # fresh_scenes: ... and resized by a random factor in [1 - rescale, 1 + rescale]
    classes: list[str] | None = None  # path: class names (mask value i = classes[i]); None: inferred
    test_fraction: float = 0.2  # path: share of the folder kept for the test split
    split_seed: int = 0  # path: seed of that split

    def __post_init__(self) -> None:
        if self.dataset is None and self.path is None:
            self.dataset = "digit-scenes"
        if self.dataset is not None and self.path is not None:
            raise ValueError("data needs exactly one of dataset ('digit-scenes') or path (a folder with images/ and "
                             f"masks/); got dataset={self.dataset!r}, path={self.path!r}")
        if self.path is not None and self.mnist is not None:
            raise ValueError("data.mnist builds digit-scenes; it does not apply to data.path")
        if self.dataset is not None and self.classes is not None:
            raise ValueError("data.classes names the classes of a data.path folder; digit-scenes has its own 11")
        if self.dataset is not None and self.dataset != "digit-scenes":
            raise ValueError(f"data.dataset must be 'digit-scenes' (or set data.path), got {self.dataset!r}")
        for name in ("size", "glyph_size", "max_digits", "train_scenes", "test_scenes"):
            check_int(f"data.{name}", getattr(self, name))
        if not isinstance(self.fresh_scenes, bool):
            raise ValueError(f"data.fresh_scenes must be true or false, got {self.fresh_scenes!r}")
        if self.fresh_scenes and self.path is not None:
            raise ValueError("data.fresh_scenes draws new digit-scenes every epoch; it does not apply to data.path")
        check_glyph_jitter("data.", rotate=self.rotate, rescale=self.rescale)
        for name in ("rotate", "rescale"):
            if getattr(self, name) and not self.fresh_scenes:
                raise ValueError(f"data.{name} transforms glyphs as training scenes are drawn; it needs "
                                 "data.fresh_scenes: true")
        if self.glyph_size > self.size:
            raise ValueError(f"data.glyph_size ({self.glyph_size}) must not exceed data.size ({self.size})")
        for name in ("train_seed", "test_seed", "split_seed"):
            check_int(f"data.{name}", getattr(self, name), minimum=0)
        if self.train_seed == self.test_seed:
            raise ValueError(f"data.train_seed and data.test_seed must differ, both are {self.train_seed}")
        if not (isinstance(self.test_fraction, float) and 0 < self.test_fraction < 1):
            raise ValueError(f"data.test_fraction must be in (0, 1), got {self.test_fraction!r}")


@dataclass
class SegmentConfig:
    data: SegmentData = field(default_factory=SegmentData)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "reseg"})
    # trained in the same run on the same data; match_parameters: size it to the model's parameter count
    baseline: dict[str, Any] | None = field(default_factory=lambda: {"name": "fcn_segmenter", "match_parameters": True})
    train: TrainConfig = field(default_factory=TrainConfig)
    # per-class weights of the cross-entropy (both models), from the training masks' pixel frequencies f_k:
    # "none"; "inverse_sqrt": w_k ~ f_k^-1/2; "inverse": w_k ~ f_k^-1; scaled so the mean weight per pixel is 1
    class_weights: Literal["none", "inverse_sqrt", "inverse"] = "none"
    task: Literal["segment"] = "segment"

    def __post_init__(self) -> None:
        check_task(self, TASK)
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"class_weights must be one of {', '.join(map(repr, CLASS_WEIGHTS))}, "
                             f"got {self.class_weights!r}")
        model_section("model", self.model)
        if self.baseline is not None:
            model_section("baseline", self.baseline)
        if self.baseline is not None and "match_parameters" in self.baseline:
            match = self.baseline["match_parameters"]
            if not isinstance(match, bool):
                raise ValueError(f"baseline.match_parameters must be true or false, got {match!r}")
            if match and self.baseline["name"] != "fcn_segmenter":
                raise ValueError("baseline.match_parameters sizes an fcn_segmenter; "
                                 f"got baseline.name={self.baseline['name']!r}")
            if match and "width" in self.baseline:
                raise ValueError("baseline.width and baseline.match_parameters: true both size the baseline; keep one")


# ----------------------------------------------------------------------------------- data


def _tensors(s: Scenes) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(s.images)), torch.from_numpy(np.ascontiguousarray(s.masks))


def _batches(s: Scenes, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = _tensors(s)
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]


# ---------------------------------------------------------------------------- training


def _evaluate(num_classes: int, weight: torch.Tensor | None):
    """Validation rows: ``loss`` is the training objective (class-weighted mean cross-entropy)."""
    def evaluate(model: nn.Module, batches) -> dict:
        loss, pixels = 0.0, 0.0
        cm = np.zeros((num_classes, num_classes), np.int64)
        for x, y in batches:
            logits = model(x)  # -> (B, K, H, W)
            loss += torch.nn.functional.cross_entropy(logits, y, weight=weight, reduction="sum").item()
            pixels += y.numel() if weight is None else weight[y].sum().item()
            cm += segmentation_confusion(y.cpu().numpy(), logits.argmax(1).cpu().numpy(), num_classes)
        m = segmentation_metrics(cm)
        return {"loss": loss / pixels, "accuracy": m["pixel_accuracy"], "miou": m["miou"]}
    return evaluate


def _score_scenes(model: nn.Module, s: Scenes, batch_size: int, device: torch.device) -> tuple[dict, np.ndarray]:
    """(metrics with per-class IoU, predictions (N, H, W)) on ``s``."""
    model.eval()
    preds, loss = [], 0.0
    with torch.no_grad():
        for x, y in _batches(s, batch_size):
            logits = model(x.to(device))
            loss += torch.nn.functional.cross_entropy(logits, y.to(device), reduction="sum").item()
            preds.append(logits.argmax(1).cpu().numpy())
    pred = np.concatenate(preds)
    m = segmentation_metrics(segmentation_confusion(s.masks, pred, len(s.classes)), s.classes)
    return {**m, "loss": loss / s.masks.size, "n": len(s)}, pred


@dataclass
class _Data:
    train: Scenes
    val: Scenes
    test: Scenes
    weight: np.ndarray | None
    draw: Callable[[int], Scenes] | None

    @property
    def fixed(self) -> dict:  # what the data fixes in every model's spec
        return {"in_channels": int(self.train.images.shape[1]), "num_classes": len(self.train.classes)}


def _prepare(config: SegmentConfig) -> _Data:
    cfg = config.train
    train, val, test = load_segment_data(config.data, cfg.val_fraction, cfg.seed)
    c, h, w = train.images.shape[1:]
    k = len(train.classes)
    log.info(f"segment: {len(train)} train / {len(val)} val / {len(test)} test images of {w}x{h}x{c}, {k} classes")
    weight = class_weights(train.masks, k, config.class_weights)
    if weight is not None:
        log.info("segment: class weights " + ", ".join(f"{c_}={w_:.3g}" for c_, w_ in zip(train.classes, weight)))
    return _Data(train, val, test, weight, fresh_scenes(config.data, len(train), cfg.seed))


def _fit(run: Run, role: str, name: str, kwargs: dict, data: _Data) -> None:
    """Train one model as ``role``; ``data.draw(epoch)``, when given, replaces the training scenes with
    that epoch's."""
    cfg, (h, w) = run.train, data.train.images.shape[2:]
    model = run.build(name, kwargs)
    stride = getattr(model, "stride", 1)
    if h % stride or w % stride:
        raise ValueError(f"{name}: the images are {w}x{h} (WxH) but this model needs "
                         f"multiples of {stride} (its total downsampling); change the patches/levels or the data size")
    fixed = _tensors(data.train)

    def train_batches(epoch: int):
        x, y = fixed if data.draw is None else _tensors(data.draw(epoch))
        order = torch.from_numpy(np.random.default_rng(cfg.seed + epoch).permutation(len(x)))
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            yield x[idx], y[idx]

    wt = None if data.weight is None else torch.from_numpy(data.weight).to(resolve_device(cfg.device))
    meta = {"classes": list(data.train.classes), "in_channels": data.fixed["in_channels"], "image_size": [int(h), int(w)]}
    run.fit(role, model, {"name": name, **kwargs}, train_batches, _batches(data.val, cfg.batch_size),
            lambda m, b: m.loss(*b, weight=wt), _evaluate(len(data.train.classes), wt), meta=meta)


def _train(run: Run, data: _Data) -> None:
    """The model, then the baseline (sized to the model's parameter count with ``match_parameters``)."""
    name, kwargs = model_spec(run.config.model, **data.fixed)
    _fit(run, "model", name, kwargs, data)
    if run.config.baseline is not None:
        spec = dict(run.config.baseline)
        match = spec.pop("match_parameters", False)
        bname, bkwargs = model_spec(spec, **data.fixed)
        if match:
            bkwargs["width"] = fcn_width_for(run.model.params, **{k_: v for k_, v in bkwargs.items() if k_ != "width"})
        _fit(run, bname, bname, bkwargs, data)


def _score(run: Run, data: _Data, part: str) -> Scores:
    scenes, device = getattr(data, part), resolve_device(run.train.device)
    scored = {role: _score_scenes(t.model, scenes, run.train.batch_size, device) for role, t in run.roles.items()}
    model = scored.pop("model")
    return Scores(model[0], {role: m for role, (m, _) in scored.items()},
                  {run.roles[r].spec["name"]: p for r, (_, p) in {"model": model, **scored}.items()})


def _metrics(run: Run, data: _Data, scores: dict) -> dict:
    m, params = run.model, run.model.params
    baselines = {role: {"test": scores["test"].baselines[role], "val": scores["val"].baselines[role],
                        "parameters": b.params, "parameter_ratio": b.params / params, "spec": to_plain(b.spec),
                        "train_seconds": b.result.seconds, "cpu_seconds": b.cpu_seconds, "epochs": b.result.epochs,
                        "best_epoch": b.result.best_epoch} for role, b in run.baselines.items()}
    return {"baselines": baselines, "model": m.spec["name"], "parameters": params, "cpu_seconds": m.cpu_seconds,
            **m.fit_fields(),
            "seed": run.train.seed, "device": str(resolve_device(run.train.device)),
            "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
            "class_weights": None if data.weight is None else dict(zip(data.train.classes, map(float, data.weight)))}


def _report(run: Run, data: _Data, metrics: dict, scores: dict):
    return segment_report(run.out, config=to_plain(run.config), metrics=metrics, histories=run.histories(),
                          images=data.test.images, masks=data.test.masks, preds=scores["test"].outputs,
                          classes=data.test.classes)


STEPS = Steps(TASK, _prepare, _train, _score, _metrics, _report, block=nested_test_block)


def train_segmenter(config: SegmentConfig, out_dir: str | os.PathLike, resume: bool = False,
                    score_test: bool = True) -> dict:
    """Train the model and the baseline, score both, write the run directory; returns metrics.json
    (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the interrupted run there)."""
    return run_task(STEPS, config, out_dir, resume, score_test)


# --------------------------------------------------------------------------- inference


def load_segmenter(directory: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, meta with ``classes``, ``in_channels``, ``image_size``) from a run directory
    (or its ``baseline/``)."""
    model, meta = load_model(directory, TASK, device)
    for key in ("classes", "in_channels", "image_size"):
        if key not in meta:
            raise ValueError(f"{Path(directory) / 'model.json'} has no {key!r}: not a segmentation run")
    return model, meta


def segment_image(directory: str | os.PathLike, image_path: str | os.PathLike) -> np.ndarray:
    """(H, W) int64 class indices for one image file, with the run's model; the image must have
    the channel count and size the model was trained on."""
    model, meta = load_segmenter(directory)
    return _segment(model, meta, image_path)


def _segment(model: nn.Module, meta: dict, image_path) -> np.ndarray:
    want_c, (want_h, want_w) = meta["in_channels"], meta["image_size"]
    if not Path(image_path).is_file():
        raise FileNotFoundError(f"image {str(image_path)!r} does not exist")
    c = image_channels(image_path)
    if c != want_c:
        raise ValueError(f"{image_path} has {c} channel{'s' * (c > 1)} but this model was trained on "
                         f"{want_c}-channel images ({'greyscale' if want_c == 1 else 'colour'})")
    img = read_image(image_path, want_c)
    if img.shape[:2] != (want_h, want_w):
        raise ValueError(f"{image_path} is {img.shape[1]}x{img.shape[0]} (WxH) but this model was trained on "
                         f"{want_w}x{want_h} images")
    x = torch.from_numpy(img.reshape(want_h, want_w, want_c).transpose(2, 0, 1).copy())[None]
    return model.predict(x)[0].numpy().astype(np.int64)


def write_segmentation(directory: str | os.PathLike, image_path: str | os.PathLike,
                       output: str | os.PathLike | None = None) -> tuple[Path, np.ndarray, list[str]]:
    """``lstmkit segment DIR IMAGE [--output PNG]``: write the colourised label map of IMAGE
    (default ``NAME.segment.png`` beside IMAGE ``NAME.ext``); returns (path, labels, class names)."""
    model, meta = load_segmenter(directory)
    labels = _segment(model, meta, image_path)
    out = Path(output) if output is not None else Path(image_path).with_name(Path(image_path).stem + ".segment.png")
    write_png(out, colorize_mask(labels, len(meta["classes"])))
    return out, labels, list(meta["classes"])


def _predict(run: str | os.PathLike, image: str | os.PathLike, options: dict) -> Prediction:
    path, labels, names = write_segmentation(run, image, options.get("output"))
    present = {names[k]: int((labels == k).sum()) for k in sorted(set(labels.ravel().tolist()))}
    return Prediction(None, {"output": str(path), "pixels_per_class": present})


register_task(Task(
    "segment", "per-pixel segmentation: ReSeg (2D LSTM sweeps) against a matched FCN", SegmentConfig,
    train_segmenter, _predict, "an image of the size and channels the model was trained on",
    steps=STEPS, multi_process="weighs its per-pixel loss by class, which is not a mean over samples",
    tune=Tuning("val_miou", {"val_miou": "maximize", "val_pixel_accuracy": "maximize", "val_loss": "minimize"}, {
        "train.lr": {"type": "float", "low": 1.0e-3, "high": 3.0e-2, "log": True},
        "train.weight_decay": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True},
        "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
        "model.decoder_channels": {"type": "categorical", "choices": [16, 32, 64]}},
        trial=("baseline=null",))))

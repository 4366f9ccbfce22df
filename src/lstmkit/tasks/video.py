"""Video prediction end to end: moving digits -> ConvLSTM encoder-forecaster -> per-frame metrics.

``train_video(config, out_dir)`` is what ``lstmkit train`` runs for ``task: video``, through the
steps this module declares (:data:`STEPS`):

1. generate ``data.train_clips`` moving-digit clips from the training glyphs and
   ``data.test_clips`` from the test glyphs (:func:`lstmkit.data.video.moving_digits`, fixed
   seeds per split); each clip is ``input_frames`` frames to read and ``output_frames`` to predict;
2. carve a validation part from the training clips (``train.val_fraction``, seed ``train.seed``);
3. train the registered model (``model.name``, default ``convlstm_forecaster``) with
   :func:`lstmkit.tasks.trainer.fit` on its own loss, keeping the best weights on validation;
4. score the test clips: per-frame MSE and SSIM (``skimage.metrics.structural_similarity``,
   data range 1) averaged over clips and horizon steps, and per horizon step, for the model and
   the baselines: ``copy_last`` (the last input frame repeated; the target is MSE <= 0.7x its
   MSE) and ``mean_frame`` (every pixel the training clips' mean intensity: the best constant,
   an honest floor for the MSE ratio since blurry guesses beat copy-last at long horizons);
5. the run lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory; the report
   adds ``strip_<k>.png`` (rows: input | truth | prediction) and ``horizon.png``
   (:func:`lstmkit.eval.vision_report.video_report`).

``predict_frames(run_dir, clip_path)`` forecasts the frames following a user's clip (a ``.npy``
of ``input_frames`` frames); ``write_predicted_frames`` is ``lstmkit predict-frames``;
``lstmkit evaluate DIR`` is :func:`lstmkit.tasks.lifecycle.evaluate_run`.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..checkpoint import atomic_write_bytes
from ..data.splits import random_split
from ..data.video import FrameBatches, config_clips, load_clip
from ..eval.image_quality import frame_metrics
from ..eval.images import frame_strip, write_png
from ..eval.vision_report import video_report
from .config import check_task, model_section, path_field, to_plain
from .registry import Prediction, Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, run_task
from .runs import load_model, model_spec
from .trainer import TrainConfig

__all__ = ["VideoDataConfig", "VideoConfig", "train_video", "predict_frames",
           "write_predicted_frames", "copy_last", "TASK"]

log = logging.getLogger(__name__)

TASK = "video"


@dataclass
class VideoDataConfig:
    """Moving-digit clips (Srivastava et al. 2015's protocol; :mod:`lstmkit.data.video`)."""

    train_clips: int = 3000  # generated from the training glyphs; validation is carved from them
    test_clips: int = 500  # generated from the test glyphs
    size: int = 64  # canvas H = W
    digits: int = 2
    glyph_size: int = 28
    input_frames: int = 10
    output_frames: int = 10
    mnist: str | None = path_field()  # a directory of MNIST IDX files; None: scikit-learn's digits
    train_seed: int | None = None  # None: the split's fixed default (lstmkit.data.video.SPLIT_SEEDS)
    test_seed: int | None = None
    strips: int = 3  # example strips (input | truth | prediction) written for the report

    def __post_init__(self) -> None:
        for name in ("train_clips", "test_clips", "size", "digits", "glyph_size", "input_frames", "output_frames"):
            check_int(f"data.{name}", getattr(self, name))
        if self.train_clips < 2:
            raise ValueError(f"data.train_clips must be >= 2 (a validation part is carved from them), got {self.train_clips}")
        if self.glyph_size > self.size:
            raise ValueError(f"data.glyph_size={self.glyph_size} does not fit on a data.size={self.size} canvas")
        for name in ("train_seed", "test_seed"):
            if getattr(self, name) is not None:
                check_int(f"data.{name}", getattr(self, name), minimum=0)
        if isinstance(self.strips, bool) or not isinstance(self.strips, int) or not 0 <= self.strips <= self.test_clips:
            raise ValueError(f"data.strips must be an int in [0, data.test_clips], got {self.strips!r}")


@dataclass
class VideoConfig:
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "convlstm_forecaster"})
    train: TrainConfig = field(default_factory=TrainConfig)
    task: Literal["video"] = "video"

    def __post_init__(self) -> None:
        check_task(self, TASK)
        self.model = model_section("model", self.model, "convlstm_forecaster")
        fixed = {"frame_size": self.data.size, "input_frames": self.data.input_frames,
                 "output_frames": self.data.output_frames}
        model_spec(self.model, **fixed)  # a model value that contradicts the data raises here, before any work


# ------------------------------------------------------------------------------- metrics


def copy_last(inputs: np.ndarray, steps: int) -> np.ndarray:
    """The copy-last-frame baseline: (N, T_in, H, W) -> (N, steps, H, W)."""
    return np.repeat(inputs[:, -1:], steps, axis=1)


# ---------------------------------------------------------------------------------- data


def _loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    x, y = batch
    return model.loss(x, y)


def _evaluate(model: nn.Module, batches) -> dict:
    n, loss, mse = 0, 0.0, 0.0
    for x, y in batches:
        logits = model(x)
        k = len(x)
        loss += model.criterion(logits, y).item() * k
        mse += ((torch.sigmoid(logits) - y) ** 2).mean().item() * k
        n += k
    return {"loss": loss / n, "mse": mse / n}


@torch.no_grad()
def _predict(model: nn.Module, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    out = [model.predict(torch.from_numpy(inputs[i:i + batch_size]).to(device)).cpu().numpy()
           for i in range(0, len(inputs), batch_size)]
    return np.concatenate(out)


def _test_scores(model: nn.Module, test: np.ndarray, input_frames: int, mean_value: float
                 ) -> tuple[dict, dict, np.ndarray]:
    """(the model's test metrics with its MSE ratios to the baselines, the baselines' metrics, the
    model's predictions) on test clips; ``mean_value``: the training clips' mean intensity."""
    x, y = test[:, :input_frames], test[:, input_frames:]
    pred = _predict(model, x)
    scores = frame_metrics(pred, y)
    base_copy = frame_metrics(copy_last(x, y.shape[1]), y)
    base_mean = frame_metrics(np.full_like(y, mean_value), y)
    scores["mse_ratio_copy_last"] = scores["mse"] / base_copy["mse"]
    scores["mse_ratio_mean_frame"] = scores["mse"] / base_mean["mse"]
    return scores, {"copy_last": base_copy, "mean_frame": {**base_mean, "value": mean_value}}, pred


# ------------------------------------------------------------------------------- training


def _prepare(config: VideoConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) clips; val is carved from the training clips with ``train.seed``."""
    clips = config_clips(config.data, "train")
    kept, carved = random_split(len(clips), config.train.val_fraction, config.train.seed)
    train, val, test = clips[kept], clips[carved], config_clips(config.data, "test")
    log.info(f"moving digits: {len(train)} train / {len(val)} validation / {len(test)} test clips")
    return train, val, test


def _train(run: Run, data: tuple) -> None:
    (train, val, _), d, tc = data, run.config.data, run.train
    name, kwargs = model_spec(run.config.model, frame_size=d.size, input_frames=d.input_frames,
                              output_frames=d.output_frames)
    model = run.build(name, kwargs)
    spec = {"name": name, **(to_plain(model.config) if hasattr(model, "config") else kwargs)}  # every field, resolved
    run.fit("model", model, spec, FrameBatches(train, d.input_frames, tc.batch_size, shuffle=True, seed=tc.seed),
            list(FrameBatches(val, d.input_frames, max(tc.batch_size, 64), shuffle=False)()), _loss, _evaluate,
            meta={"data": to_plain(d), "train_seed": tc.seed})
    run.add("copy_last")
    run.add("mean_frame")


def _score(run: Run, data: tuple, part: str) -> Scores:
    if part == "val":  # the selected epoch's validation row
        return Scores(run.model.result.best)
    train, _, test = data
    scores, baselines, pred = _test_scores(run.model.model, test, run.config.data.input_frames, float(train.mean()))
    return Scores(scores, baselines, pred)


def _metrics(run: Run, data: tuple, scores: dict) -> dict:
    (train, val, test), m, test_scores = data, run.model, scores["test"].model
    log.info(f"test MSE {test_scores['mse']:.5f} ({test_scores['mse_ratio_copy_last']:.3f}x copy-last), "
             f"SSIM {test_scores['ssim']:.3f}")
    return {"baselines": scores["test"].baselines,
            "target": {"mse_ratio_copy_last_max": 0.7, "met": bool(test_scores["mse_ratio_copy_last"] <= 0.7)},
            "cpu_seconds": round(run.cpu_seconds(), 3),
            **m.fit_fields(), "seed": run.train.seed, "device": m.device, "parameters": m.params,
            "n_train": len(train), "n_val": len(val), "n_test": len(test), "loss": m.spec.get("loss", "bce")}


def _report(run: Run, data: tuple, metrics: dict, scores: dict):
    test, pred, k_in = data[2], scores["test"].outputs, run.config.data.input_frames
    strips = [frame_strip(test[k, :k_in], test[k, k_in:], pred[k]) for k in range(run.config.data.strips)]
    return video_report(run.out, config=to_plain(run.config), metrics=metrics, history=run.model.history,
                        strips=strips)


STEPS = Steps(TASK, _prepare, _train, _score, _metrics, _report)


def train_video(config: VideoConfig, out_dir: str | os.PathLike, resume: bool = False, score_test: bool = True) -> dict:
    """Run one video-prediction experiment and write its run directory; returns metrics.json
    (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the interrupted run there)."""
    return run_task(STEPS, config, out_dir, resume, score_test)


# ----------------------------------------------------------------------------- prediction


def _load(run_dir: str | os.PathLike, clip_path: str | os.PathLike, device: str) -> tuple[nn.Module, np.ndarray]:
    model, _ = load_model(run_dir, TASK, device)
    c = model.config
    return model, load_clip(clip_path, frames=c.input_frames, size=c.frame_size)


def predict_frames(run_dir: str | os.PathLike, clip_path: str | os.PathLike, device: str = "cpu") -> np.ndarray:
    """The frames following the clip in ``clip_path`` (a ``.npy`` of the model's ``input_frames``
    frames, see :func:`lstmkit.data.video.load_clip`): ``(output_frames, H, W)`` float32 in [0, 1]."""
    model, clip = _load(run_dir, clip_path, device)
    return _predict(model, clip[None])[0]


def write_predicted_frames(run_dir: str | os.PathLike, clip_path: str | os.PathLike,
                           output: str | os.PathLike | None = None, device: str = "cpu") -> tuple[np.ndarray, Path]:
    """``lstmkit predict-frames DIR CLIP.npy [--output FILE.npy|.png]``: predict and write the
    frames as ``.npy`` ``(T_out, H, W)`` float32, or as a ``.png`` strip (rows: input | prediction).
    Without ``output``: ``CLIP.pred.npy`` beside the clip. Returns (frames, the path written)."""
    clip_path = Path(clip_path)
    path = Path(output) if output is not None else clip_path.with_name(clip_path.stem + ".pred.npy")
    if path.suffix.lower() not in (".npy", ".png"):
        raise ValueError(f"output must end in .npy or .png, got {str(path)!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of output {str(path)!r} does not exist")
    model, clip = _load(run_dir, clip_path, device)
    frames = _predict(model, clip[None])[0]
    if path.suffix.lower() == ".npy":
        buf = io.BytesIO()
        np.save(buf, frames, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    else:
        write_png(path, frame_strip(clip, frames))
    return frames, path


def _predict_run(run: str | os.PathLike, clip: str | os.PathLike, options: dict) -> Prediction:
    frames, path = write_predicted_frames(run, clip, options.get("output"))
    return Prediction(None, {"output": str(path), "frames": list(frames.shape)})


register_task(Task(
    "video", "next-frame prediction with ConvLSTM, against copying the last frame", VideoConfig, train_video,
    _predict_run, "a .npy clip (T, H, W) of the run's input length and frame size", steps=STEPS,
    multi_process=None,  # the loss is a mean over equal-sized clips
    # MSE of the predicted frames: comparable whatever model.loss (bce or mse) a trial trains with
    tune=Tuning("val_mse", {"val_mse": "minimize", "val_loss": "minimize"}, {
        "train.lr": {"type": "float", "low": 5.0e-4, "high": 5.0e-3, "log": True},
        "train.batch_size": {"type": "categorical", "choices": [8, 16, 32]},
        "model.kernel_size": {"type": "categorical", "choices": [3, 5]}})))

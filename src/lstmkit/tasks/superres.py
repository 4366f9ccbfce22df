"""Super-resolution end to end: bundled natural images -> LR/HR patches -> ``lstm_sr`` -> PSNR/SSIM
against bicubic -> run directory.

``train_superres(config, out_dir)`` is what ``lstmkit train`` runs for ``task: superres``, through
the steps this module declares (:data:`STEPS`):

1. load the luminance (Y of full-range YCbCr, :mod:`lstmkit.data.natural`) of scikit-image's
   bundled images with the fixed split by name: test = ``data.test_images`` (default chelsea,
   coffee, rocket), train = ``data.train_images``;
2. carve the last ``train.val_fraction`` of every training image along its longer side as
   validation; training draws ``data.patches_per_epoch`` fresh random (LR, HR) patch pairs per
   epoch from the rest (seed ``train.seed``, flips/rotations, near-flat patches redrawn), validation is a fixed set of
   ``data.val_patches`` pairs from the carved parts (seed 0, the same for every run);
3. train with :func:`lstmkit.tasks.trainer.fit` (MSE loss, best validation loss restored);
4. score whole images once: every carved validation part and every test image, each cropped to
   a multiple of the scale, shrunk by antialiased bicubic (:func:`lstmkit.data.natural.downscale`),
   then upscaled by the model and by bicubic interpolation of the same LR image. PSNR and SSIM
   are scikit-image's (``skimage.metrics``, data range 1) on the Y channel after cropping
   ``scale`` pixels from every border (both methods are unreliable there);
5. the run lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory; this
   task adds to ``metrics.json`` ``baselines.bicubic`` (bicubic's scores) and ``gain_db`` (PSNR of
   the model minus bicubic), and to the report one ``test_<name>.png`` per test image (bicubic |
   model | HR, full image and an enlarged detail; :func:`lstmkit.eval.vision_report.superres_report`).

``lstmkit upscale DIR IMAGE --scale 2 [--output PNG]`` runs :func:`write_upscaled`: the image is
taken as the low-resolution input; a greyscale image is upscaled by the model, an RGB one has its
Y upscaled by the model and its Cb/Cr bicubically (the usual practice: the eye sees detail
mostly in luminance), then converted back to RGB. ``lstmkit evaluate DIR`` re-scores the test images
(:func:`lstmkit.tasks.lifecycle.evaluate_run`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..data.images import read_image
from ..data.splits import carve_validation
from ..data.natural import (TEST_IMAGES, TRAIN_IMAGES, PatchPairs, crop_to_multiple, downscale,
                            list_natural_images, load_natural, rgb_to_ycbcr, ycbcr_to_rgb)
from ..eval.image_quality import image_quality
from ..eval.images import write_png
from ..eval.vision_report import superres_report
from ..models.registry import check_model_task
from ..models.superres import LSTMSuperRes, bicubic_upscale
from ..checks import check_int
from .config import check_task, model_section, to_plain
from .registry import Prediction, Task, Tuning, register_task
from .lifecycle import Run, Scores, Steps, nested_test_block, run_task
from .runs import load_model, model_spec
from .trainer import TrainConfig

__all__ = ["SuperResDataConfig", "SuperResConfig", "train_superres", "load_upscaler",
           "upscale_array", "upscale_image", "write_upscaled", "evaluate_images"]

log = logging.getLogger(__name__)

TASK = "superres"


@dataclass
class SuperResDataConfig:
    scale: int = 2  # 2, 3 or 4; also fixes model.scale
    patch: int = 24  # LR patch side; HR patches are scale * patch
    patches_per_epoch: int = 1024  # fresh random training pairs per epoch
    val_patches: int = 256  # fixed validation pairs from the carved parts (monitored each epoch)
    augment: bool = True  # random flips and 90-degree rotations of training pairs
    min_std: float = 0.02  # redraw training pairs whose HR patch is flatter than this (lstmkit.data.natural.PatchPairs)
    train_images: list[str] = field(default_factory=lambda: list(TRAIN_IMAGES))
    test_images: list[str] = field(default_factory=lambda: list(TEST_IMAGES))

    def __post_init__(self) -> None:
        if self.scale not in (2, 3, 4) or isinstance(self.scale, bool):
            raise ValueError(f"data.scale must be 2, 3 or 4, got {self.scale!r}")
        self.patch = check_int("data.patch", self.patch, 4)
        self.patches_per_epoch = check_int("data.patches_per_epoch", self.patches_per_epoch)
        self.val_patches = check_int("data.val_patches", self.val_patches)
        if isinstance(self.min_std, bool) or not isinstance(self.min_std, (int, float)) or not 0 <= self.min_std < 0.5:
            raise ValueError(f"data.min_std must be a number in [0, 0.5), got {self.min_std!r}")
        known = list_natural_images()
        for key in ("train_images", "test_images"):
            names = getattr(self, key)
            if isinstance(names, str) or not isinstance(names, (list, tuple)) or not names:
                raise ValueError(f"data.{key} must be a non-empty list of image names ({', '.join(known)})")
            bad = [n for n in names if n not in known]
            if bad:
                raise ValueError(f"data.{key}: unknown image(s) {', '.join(map(repr, bad))}; valid: {', '.join(known)}")
            setattr(self, key, list(names))
        both = sorted(set(self.train_images) & set(self.test_images))
        if both:
            raise ValueError(f"data.train_images and data.test_images share {', '.join(both)}; "
                             "test images must be held out")


@dataclass
class SuperResConfig:
    data: SuperResDataConfig = field(default_factory=SuperResDataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "lstm_sr"})
    train: TrainConfig = field(default_factory=TrainConfig)
    task: Literal["superres"] = "superres"

    def __post_init__(self) -> None:
        check_task(self, TASK)
        model_section("model", self.model, "lstm_sr")
        if self.train.monitor != "val_loss":
            raise ValueError(f"train.monitor must be 'val_loss' for super-resolution, got {self.train.monitor!r}")


# --------------------------------------------------------------------------------- scores


def _predict(model: LSTMSuperRes, lr: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None].to(device)
    return model.upscale(x)[0, 0].cpu().numpy()


def _bicubic(lr: np.ndarray, scale: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
    return bicubic_upscale(x, scale)[0, 0].numpy()


def evaluate_images(model: LSTMSuperRes, images: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """(model metrics, bicubic metrics, {name: (bicubic, model, hr)}) on whole HR luminance images:
    each metrics dict holds the mean ``psnr``/``ssim`` and ``per_image``."""
    s = model.scale
    model.eval()
    ours, base, outputs = {}, {}, {}
    for name, image in images.items():
        hr = crop_to_multiple(image, s)
        lr = downscale(hr, s)
        up, sr = _bicubic(lr, s), _predict(model, lr)
        ours[name], base[name] = image_quality(hr, sr, s), image_quality(hr, up, s)
        outputs[name] = (up, sr, hr)

    def summary(per: dict) -> dict:
        return {"psnr": float(np.mean([m["psnr"] for m in per.values()])),
                "ssim": float(np.mean([m["ssim"] for m in per.values()])), "per_image": per}

    return summary(ours), summary(base), outputs


# ---------------------------------------------------------------------------------- train


def _val_metrics(model: LSTMSuperRes, batches) -> dict:
    """Validation loss (MSE), PSNR of that MSE (all patches pooled, so near-flat patches, whose
    PSNR is huge, do not dominate) and its gain over bicubic on the same patches."""
    se = se_bicubic = n = 0
    for lr, hr in batches:
        se = se + ((model(lr) - hr) ** 2).sum()
        se_bicubic = se_bicubic + ((bicubic_upscale(lr, model.scale) - hr) ** 2).sum()
        n += hr.numel()
    mse, mse_b = (se / n).item(), (se_bicubic / n).item()
    psnr = -10 * np.log10(max(mse, 1e-12))
    return {"loss": mse, "psnr": float(psnr), "psnr_gain": float(psnr + 10 * np.log10(max(mse_b, 1e-12)))}


def _prepare(config: SuperResConfig) -> dict:
    d, tc = config.data, config.train
    s, hr_patch = d.scale, d.patch * d.scale
    train_parts, val_parts = {}, {}
    for name in d.train_images:
        try:
            train_parts[name], val_parts[name] = carve_validation(load_natural(name), tc.val_fraction, hr_patch, s)
        except ValueError as e:
            raise ValueError(f"training image {name!r}: {e} (lower data.patch or train.val_fraction)") from None
    pairs = PatchPairs(list(train_parts.values()), s, d.patch, seed=tc.seed, augment=d.augment, min_std=d.min_std)
    val_lr, val_hr = PatchPairs(list(val_parts.values()), s, d.patch, seed=0, augment=False).fixed(d.val_patches)
    bs = tc.batch_size
    name, kwargs = model_spec(config.model, scale=s)
    check_model_task(name, TASK)
    return {"pairs": pairs, "val": [(val_lr[i:i + bs], val_hr[i:i + bs]) for i in range(0, len(val_lr), bs)],
            "val_parts": val_parts, "spec": (name, kwargs)}


def _train(run: Run, data: dict) -> None:
    d, tc = run.config.data, run.train
    name, kwargs = data["spec"]
    model = run.build(name, kwargs)
    run.fit("model", model, {"name": name, **kwargs},
            lambda epoch: data["pairs"].batches(epoch, d.patches_per_epoch, tc.batch_size), data["val"],
            lambda m, batch: m.loss(*batch), _val_metrics, meta={"scale": d.scale, "color": "luminance"})
    run.add("bicubic")


def _score(run: Run, data: dict, part: str) -> Scores:
    images = (data["val_parts"] if part == "val"
              else {name: load_natural(name) for name in run.config.data.test_images})
    ours, base, outputs = evaluate_images(run.model.model, images)
    return Scores(ours, {"bicubic": base}, outputs)


def _metrics(run: Run, data: dict, scores: dict) -> dict:
    d, m = run.config.data, run.model
    test, val = scores["test"], scores["val"]
    log.info(f"x{d.scale} test PSNR {test.model['psnr']:.2f} dB (bicubic {test.baselines['bicubic']['psnr']:.2f}), "
             f"SSIM {test.model['ssim']:.4f} (bicubic {test.baselines['bicubic']['ssim']:.4f})")
    return {"baselines": {"bicubic": {"test": test.baselines["bicubic"], "val": val.baselines["bicubic"]}},
            "task": TASK, "scale": d.scale, "model": m.spec, "color": "luminance (Y of full-range YCbCr)",
            "split": {"train": d.train_images, "test": d.test_images},
            "gain_db": {p: scores[p].model["psnr"] - scores[p].baselines["bicubic"]["psnr"] for p in ("test", "val")},
            "cpu_seconds": round(run.cpu_seconds(), 3), "wall_seconds": round(run.wall_seconds(), 3),
            "epochs": m.result.epochs, "best_epoch": m.result.best_epoch, "seed": run.train.seed,
            "device": m.device, "parameters": m.params}


def _report(run: Run, data: dict, metrics: dict, scores: dict):
    return superres_report(run.out, config=to_plain(run.config), metrics=metrics, history=run.model.history,
                           outputs=scores["test"].outputs)


STEPS = Steps(TASK, _prepare, _train, _score, _metrics, _report, block=nested_test_block)


def train_superres(config: SuperResConfig, out_dir: str | os.PathLike, resume: bool = False,
                   score_test: bool = True) -> dict:
    """Train ``lstm_sr`` on the training images, score validation and test images, write ``out_dir``
    (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the interrupted run there)."""
    return run_task(STEPS, config, out_dir, resume, score_test)


# -------------------------------------------------------------------------------- upscale


def load_upscaler(directory: str | os.PathLike, device: str = "cpu") -> LSTMSuperRes:
    """The trained super-resolution model of a run directory, in eval mode (``.scale`` is its factor)."""
    model, _ = load_model(directory, TASK, device)
    if not isinstance(model, LSTMSuperRes):
        raise ValueError(f"{directory} holds a {type(model).__name__}, not a super-resolution model")
    return model


def _check_scale(model: LSTMSuperRes, scale: int, where: str) -> None:
    if scale != model.scale or isinstance(scale, bool):
        raise ValueError(f"{where} was trained for x{model.scale} upscaling, not x{scale!r}; use --scale "
                         f"{model.scale} or a model trained with data.scale={scale}")


def upscale_array(model: LSTMSuperRes, image: np.ndarray) -> np.ndarray:
    """Upscale an LR image ``(h, w)`` grey or ``(h, w, 3)`` RGB in [0, 1] by ``model.scale``.

    Grey: the model. RGB: Y by the model, Cb/Cr bicubically, back to RGB. Returns float32 in [0, 1].
    """
    a = np.asarray(image)
    if not np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_:
        raise TypeError(f"image must be a numeric array, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"image must be (h, w) greyscale or (h, w, 3) RGB, got shape {a.shape}"
                         + (f" ({a.shape[2]} channels)" if a.ndim == 3 else ""))
    if a.shape[0] < 4 or a.shape[1] < 4:
        raise ValueError(f"image must be at least 4x4 pixels to upscale, got {a.shape[0]}x{a.shape[1]} (hxw)")
    a = a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise ValueError("image values must be finite and in [0, 1]")
    if a.ndim == 2:
        return _predict(model, a)
    ycc = rgb_to_ycbcr(a)
    y = _predict(model, ycc[..., 0])
    chroma = bicubic_upscale(torch.from_numpy(np.ascontiguousarray(ycc[..., 1:].transpose(2, 0, 1)))[None], model.scale)
    return ycbcr_to_rgb(np.concatenate([y[..., None], chroma[0].numpy().transpose(1, 2, 0)], axis=2))


def _model_for(directory: str | os.PathLike, scale: int | None) -> LSTMSuperRes:
    model = load_upscaler(directory)
    if scale is not None:
        _check_scale(model, scale, f"the model in {directory}")
    return model


def upscale_image(directory: str | os.PathLike, image_path: str | os.PathLike, scale: int | None = None) -> np.ndarray:
    """The image file upscaled by the run's model: (s*h, s*w) grey or (s*h, s*w, 3) RGB in [0, 1].

    ``scale``, if given, must be the one the model was trained for (None: that one); files that
    are not images raise ValueError.
    """
    model = _model_for(directory, scale)
    return upscale_array(model, read_image(image_path))


def write_upscaled(directory: str | os.PathLike, image_path: str | os.PathLike, scale: int | None = None,
                   output: str | os.PathLike | None = None) -> Path:
    """``lstmkit upscale DIR IMAGE [--scale S] [--output PNG]``: write the upscaled image as a PNG
    (default: ``<image stem>_x<S>.png`` beside the input) and return its path."""
    if output is not None and Path(output).suffix.lower() != ".png":
        raise ValueError(f"output must be a .png file, got {str(output)!r}")
    model = _model_for(directory, scale)
    image_path = Path(image_path)
    target = Path(output) if output is not None else image_path.with_name(f"{image_path.stem}_x{model.scale}.png")
    write_png(target, upscale_array(model, read_image(image_path)))
    return target


def _predict_run(run: str | os.PathLike, image: str | os.PathLike, options: dict) -> Prediction:
    return Prediction(None, {"output": str(write_upscaled(run, image, options.get("scale"), options.get("output")))})


register_task(Task(
    "superres", "single-image super-resolution with 2D LSTM sweeps, against bicubic", SuperResConfig,
    train_superres, _predict_run, "an image", predict_options=("scale",),
    steps=STEPS, multi_process=None,  # MSE over equal-sized patches
    tune=Tuning("val_psnr", {"val_psnr": "maximize", "val_ssim": "maximize"}, {
        "train.lr": {"type": "float", "low": 2.0e-4, "high": 5.0e-3, "log": True},
        "model.hidden_size": {"type": "categorical", "choices": [16, 32, 64]},
        "model.features": {"type": "categorical", "choices": [16, 32, 64]},
        "train.batch_size": {"type": "categorical", "choices": [8, 16, 32]}})))

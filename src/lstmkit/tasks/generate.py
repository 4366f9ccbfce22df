"""Autoregressive generation of binary images: PixelRNN against PixelCNN and independent pixels.

``train_generator(config, out_dir)`` is what ``lstmkit train`` runs for ``task: generate``, through
the steps this module declares (:data:`STEPS`):

1. load binarised digits (:func:`lstmkit.data.binary.load_binary_images`: scikit-learn 8x8 or
   an MNIST IDX directory), carve validation from the training images (seed ``train.seed``);
2. train the model and every baseline of ``baselines`` in the same run, each from seed
   ``train.seed``, with :func:`lstmkit.tasks.trainer.fit` on the mean negative log-likelihood
   (nats per image), best-on-validation weights. A model with a closed-form maximum-likelihood
   fit (``independent_pixels``: ``fit_mean``, the training mean per pixel) is fit that way;
3. score validation and test once: NLL in nats per image (and bits per pixel);
4. the run lifecycle (:func:`lstmkit.tasks.lifecycle.run_task`) writes the run directory, each
   baseline's weights in ``baselines/<label>/``; the report
   (:func:`lstmkit.eval.vision_report.generate_report`) adds ``samples.png`` (64 samples of the
   model; one ``samples-<label>.png`` per baseline) and ``completions.png`` (test images, their top
   half, three completions of the bottom half).

``lstmkit sample DIR --n 64 [--output PNG] [--seed S]`` is :func:`write_samples`;
``lstmkit evaluate DIR`` is :func:`lstmkit.tasks.lifecycle.evaluate_run`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..checks import check_int
from ..data.binary import BinaryImages, load_binary_images
from ..data.collate import TensorBatches
from ..data.subsets import check_subset
from ..eval.images import binary_grid, completion_grid, write_png
from ..eval.vision_report import generate_report
from .registry import Prediction, Task, Tuning, register_task
from .config import check_task, path_field, to_plain
from .lifecycle import Run, Scores, Steps, Trained, nested_test_block, run_task
from .runs import load_model, model_spec
from .trainer import FitResult, TrainConfig, resolve_device

__all__ = ["GenerateDataConfig", "GenerateConfig", "train_generator", "load_generator",
           "sample_from_run", "write_samples", "nll_per_image"]

log = logging.getLogger(__name__)

TASK = "generate"
_LN2 = float(np.log(2.0))


@dataclass
class GenerateDataConfig:
    """Which binary images: scikit-learn's 8x8 digits, or an MNIST IDX directory (28x28)."""

    name: Literal["digits", "mnist"] = "digits"
    path: str | None = path_field()  # the MNIST IDX directory (name: mnist)
    threshold: float = 0.5  # a pixel is 1 where the glyph's [0, 1] value is >= threshold
    max_train: int | None = None  # a stratified subset of the training images (before validation is carved)
    classes: list | None = None  # keep only these digits (train, validation and test), e.g. [5, 6, 7, 8, 9]
    train_fraction: float | None = None  # a stratified share of the training images (seed train.seed)

    def __post_init__(self) -> None:
        if self.name not in ("digits", "mnist"):
            raise ValueError(f"data.name must be 'digits' or 'mnist', got {self.name!r}")
        if (self.name == "mnist") != (self.path is not None):
            raise ValueError(f"data.name 'mnist' needs data.path (the MNIST IDX directory) and 'digits' takes none; "
                             f"got name={self.name!r}, path={self.path!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) or not 0 < self.threshold <= 1:
            raise ValueError(f"data.threshold must be a number in (0, 1], got {self.threshold!r}")
        if self.max_train is not None:
            check_int("data.max_train", self.max_train, minimum=10)
        check_subset(self.classes, self.train_fraction)


def _default_baselines() -> list[dict[str, Any]]:
    return [{"name": "pixel_cnn"}, {"name": "independent_pixels"}]


def _label(spec: dict) -> str:
    return spec.get("label") or spec.get("name")


@dataclass
class GenerateConfig:
    data: GenerateDataConfig = field(default_factory=GenerateDataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "pixel_rnn", "layer": "diagonal"})
    # trained in the same run, same data and TrainConfig; an optional "label" names one (default: its name)
    baselines: list[dict[str, Any]] = field(default_factory=_default_baselines)
    train: TrainConfig = field(default_factory=TrainConfig)
    samples: int = 64  # images in samples.png
    task: Literal["generate"] = "generate"

    def __post_init__(self) -> None:
        check_task(self, TASK)
        if not isinstance(self.model, dict) or not isinstance(self.model.get("name"), str):
            raise ValueError(f"model must be a mapping with a 'name' (pixel_rnn, pixel_cnn, independent_pixels), "
                             f"got {self.model!r}")
        if "label" in self.model:
            raise ValueError("model.label: only baselines take a label (the model is 'model' in metrics.json)")
        seen = set()
        for i, spec in enumerate(self.baselines):
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ValueError(f"baselines[{i}] must be a mapping with a 'name', got {spec!r}")
            label = _label(spec)
            if not isinstance(label, str) or not label or "/" in label or label in seen:
                raise ValueError(f"baselines[{i}]: label {label!r} must be a distinct non-empty name without '/'; "
                                 "give two baselines of the same model different 'label's")
            seen.add(label)
        check_int("samples", self.samples, maximum=1024)


# ------------------------------------------------------------------------------ training


def _images(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32)).unsqueeze(1)  # -> (N, 1, H, W)


def _loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    return model.nll(batch[0]).mean()  # nats per image


def _evaluate(model: nn.Module, batches) -> dict:
    nll = torch.cat([model.nll(b[0]) for b in batches]).double()
    return {"loss": nll.mean().item()}


@torch.no_grad()
def nll_per_image(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> dict:
    """Mean negative log-likelihood of binary ``images`` (N, H, W): nats per image, bits per
    pixel, and the standard error of the mean (nats)."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        nll = torch.cat([model.nll(b[0].to(device)).cpu() for b in TensorBatches([_images(images)], batch_size)]).double()
    finally:
        model.train(was_training)
    pixels = images.shape[1] * images.shape[2]
    return {"nll": nll.mean().item(), "bits_per_pixel": nll.mean().item() / (_LN2 * pixels),
            "nll_sem": (nll.std() / len(nll) ** 0.5).item() if len(nll) > 1 else 0.0, "n": len(nll)}


def _fit(run: Run, role: str, spec: dict, data: BinaryImages, meta: dict) -> None:
    """Train one model of the run as ``role`` (a closed-form maximum-likelihood fit where the model has one)."""
    h, w = data.size
    name, kwargs = model_spec({k: v for k, v in spec.items() if k != "label"}, height=h, width=w)
    model, full, tc = run.build(name, kwargs), {"name": name, **kwargs}, run.train
    if hasattr(model, "fit_mean"):  # closed-form maximum likelihood
        start, cpu = time.perf_counter(), time.process_time()
        model.fit_mean(torch.from_numpy(data.train.astype(np.float32)))
        model.to(resolve_device(tc.device))
        run.add(role, Trained(model, full, FitResult(epochs=0, best_epoch=0), time.perf_counter() - start,
                              time.process_time() - cpu, meta))
    else:
        run.fit(role, model, full, TensorBatches([_images(data.train)], tc.batch_size, shuffle=True, seed=tc.seed),
                list(TensorBatches([_images(data.val)], 256)), _loss, _evaluate, meta=meta)
    model.eval()


def _prepare(config: GenerateConfig) -> BinaryImages:
    data = _load(config)
    h, w = data.size
    log.info(f"binary {config.data.name} {h}x{w}: {len(data.train)} train / {len(data.val)} val / "
             f"{len(data.test)} test images")
    return data


def _train(run: Run, data: BinaryImages) -> None:
    """The model and every baseline, each from seed ``train.seed``."""
    size = list(data.size)
    _fit(run, "model", run.config.model, data,
         {"image_size": size, "data": to_plain(run.config.data), "train_seed": run.train.seed})
    for spec in run.config.baselines:
        _fit(run, _label(spec), spec, data, {"image_size": size, "label": _label(spec)})


def _score(run: Run, data: BinaryImages, part: str) -> Scores:
    scores = {role: nll_per_image(t.model, getattr(data, part)) for role, t in run.roles.items()}
    return Scores(scores.pop("model"), scores)


def _summary(run: Run, role: str, scores: dict) -> dict:
    t = run.roles[role]
    pick = (lambda s: s.model) if role == "model" else (lambda s: s.baselines[role])  # noqa: E731
    summary = {"val": pick(scores["val"]), "test": pick(scores["test"]), "train_seconds": round(t.seconds, 3),
               **t.fit_fields(), "parameters": t.params}
    log.info(f"{role}: test NLL {summary['test']['nll']:.3f} nats/image, val {summary['val']['nll']:.3f} "
             f"({t.seconds:.1f}s, {t.result.epochs} epochs)")
    return summary


def _metrics(run: Run, data: BinaryImages, scores: dict) -> dict:
    main = _summary(run, "model", scores)
    return {"baselines": {role: _summary(run, role, scores) for role in run.baselines},
            "model": run.model.spec["name"], **main, "seed": run.train.seed, "image_size": list(data.size),
            "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test),
            "device": run.model.device, "cpu_seconds": round(run.cpu_seconds(), 2)}


def _report(run: Run, data: BinaryImages, metrics: dict, scores: dict):
    out, model, seed = run.out, run.model.model, run.train.seed
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    write_png(out / "samples.png", binary_grid(model.sample(run.config.samples, generator)))
    for label, b in run.baselines.items():
        g = torch.Generator(device=next(b.model.parameters()).device).manual_seed(seed)
        write_png(out / f"samples-{label}.png", binary_grid(b.model.sample(run.config.samples, g)))
    write_png(out / "completions.png", _completions(model, data.test, generator))
    if run.model.history:
        from ..eval.plots import plot_learning_curves

        plot_learning_curves(run.model.history, out / "learning_curves.png", metric="loss",
                             best_epoch=metrics["best_epoch"])
    return generate_report(out, config=to_plain(run.config), metrics=metrics)


STEPS = Steps(TASK, _prepare, _train, _score, _metrics, _report, block=nested_test_block)


def train_generator(config: GenerateConfig, out_dir: str | os.PathLike, resume: bool = False,
                    score_test: bool = True) -> dict:
    """Run one generation experiment (the model and its baselines) and write its run directory;
    returns metrics.json (:func:`lstmkit.tasks.lifecycle.run_task`; ``resume``: continue the
    interrupted run there)."""
    return run_task(STEPS, config, out_dir, resume, score_test)


def _load(config: GenerateConfig) -> BinaryImages:
    d = config.data
    return load_binary_images(d.name, d.path, d.threshold, float(config.train.val_fraction), config.train.seed,
                              d.max_train, d.classes, d.train_fraction)


def _completions(model: nn.Module, images: np.ndarray, generator: torch.Generator, k: int = 8, draws: int = 3
                 ) -> np.ndarray:
    """A grid image: per row a test image, its top half (bottom grey), ``draws`` completions."""
    x = torch.from_numpy(images[:k].astype(np.float32)).unsqueeze(1).to(next(model.parameters()).device)
    filled = model.complete(x.repeat_interleave(draws, 0), images.shape[1] // 2, generator).cpu().numpy()[:, 0]
    return completion_grid(images[:k], filled, draws)


# ------------------------------------------------------------------------ using a run


def load_generator(directory: str | os.PathLike, device: str = "cpu") -> nn.Module:
    """The trained model of a generation run directory (or of one of its ``baselines/<label>``)."""
    model, _ = load_model(directory, TASK, device)
    return model


def sample_from_run(directory: str | os.PathLike, n: int = 64, seed: int = 0, device: str = "cpu") -> np.ndarray:
    """``n`` samples (n, H, W) uint8 in {0, 1} from a run's model, reproducible from ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    model = load_generator(directory, device)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    return model.sample(n, generator).cpu().numpy()[:, 0].astype(np.uint8)


def write_samples(directory: str | os.PathLike, n: int = 64, output: str | os.PathLike | None = None, seed: int = 0,
                  device: str = "cpu") -> Path:
    """``lstmkit sample DIR --n N [--output PNG] [--seed S]``: a grid PNG of ``n`` samples; the
    default output is ``DIR/samples-seed<S>.png``. Returns the path written."""
    images = sample_from_run(directory, n, seed, device)
    path = Path(output) if output is not None else Path(directory) / f"samples-seed{seed}.png"
    write_png(path, binary_grid(images))
    return path


def _predict(run: str | os.PathLike, input: str | None, options: dict) -> Prediction:
    if input is not None:
        raise ValueError(f"a generate run draws new images and reads no input; got {input!r} (use --n and --seed)")
    n = 64 if options.get("n") is None else options["n"]
    seed = 0 if options.get("seed") is None else options["seed"]
    return Prediction(None, {"output": str(write_samples(run, n, options.get("output"), seed))})


register_task(Task(
    "generate", "image generation: PixelRNN (Row LSTM, Diagonal BiLSTM) against PixelCNN and a per-pixel baseline",
    GenerateConfig, train_generator, _predict, "none: draws --n samples (--seed)", input_required=False,
    predict_options=("n", "seed"), steps=STEPS, multi_process=None,  # mean NLL per image
    tune=Tuning("val_nll", {"val_nll": "minimize", "val_bits_per_pixel": "minimize"}, {
        "train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
        "model.hidden_size": {"type": "categorical", "choices": [16, 32, 64]},
        "train.weight_decay": {"type": "float", "low": 1.0e-4, "high": 1.0e-1, "log": True},
        "train.batch_size": {"type": "categorical", "choices": [16, 32, 64]}})))

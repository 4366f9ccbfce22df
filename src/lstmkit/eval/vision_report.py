"""``report.md`` and its figures for the vision tasks (segment, generate, superres, video, action and
volume, caption), each built with :class:`lstmkit.eval.report.Report` from the run's resolved
config (a plain dict), its ``metrics.json`` dict and the arrays the figures show; each writes its
figures and returns the report, which the run lifecycle writes (:mod:`lstmkit.tasks.lifecycle`). Pure
presentation: nothing here trains or scores."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..checks import require
from ..checkpoint import atomic_write_bytes
from .images import image_grid, write_png
from .metrics import format_confusion
from .plots import plot_confusion_matrix, plot_learning_curves
from .report import Report
from .segmentation import class_palette, write_segmentation_overlays

__all__ = ["segment_report", "generate_report", "superres_report", "video_report", "clips_report", "caption_report",
           "plot_attention", "side_by_side"]


# ------------------------------------------------------------------------------ segment

def _seg_row(label: str, m: dict) -> str:
    return f"| {label} | {100 * m['pixel_accuracy']:.2f}% | {m['miou']:.4f} | {m['loss']:.4f} |"


def segment_report(out: str | os.PathLike, *, config: dict, metrics: dict, histories: dict[str, tuple],
                   images: np.ndarray, masks: np.ndarray, preds: dict[str, np.ndarray], classes: Sequence[str],
                   examples: int = 8) -> Report:
    """``learning_curves.png`` (``baseline_learning_curves.png``), ``overlays.png`` and ``report.md``.
    ``histories``: ``{"model" | "baseline": (history, best epoch)}``; ``preds``: the test predictions
    of each model by its name (the overlay columns); ``images``, ``masks``: the test scenes."""
    out = Path(out)
    plot_learning_curves(histories["model"][0], out / "learning_curves.png", metric="miou",
                         best_epoch=histories["model"][1])
    if "baseline" in histories:
        plot_learning_curves(histories["baseline"][0], out / "baseline_learning_curves.png", metric="miou",
                             best_epoch=histories["baseline"][1])
    n = min(examples, len(images))
    write_segmentation_overlays(out / "overlays.png", images[:n], masks[:n], {k: p[:n] for k, p in preds.items()},
                                len(classes))
    d = config["data"]
    source = d["path"] if d["path"] is not None else (f"digit-scenes {d['size']}x{d['size']}, 1-{d['max_digits']} "
                                                       f"digits of {d['glyph_size']} px")
    if d["fresh_scenes"]:
        source += (f", new training scenes every epoch (glyphs turned up to {d['rotate']:g} degrees, resized by up "
                   f"to {d['rescale']:.0%})")
    table = [("model", metrics["model"], metrics["parameters"], metrics)]
    table += [("baseline", name, b["parameters"], b) for name, b in metrics["baselines"].items()]
    weights = metrics.get("class_weights")
    report = Report(f"Segmentation run: {source} · {metrics['model']}")
    report.text(f"{metrics['n_train']} training / {metrics['n_val']} validation (carved from training) / "
                f"{metrics['n_test']} test images; seed {metrics['seed']}, device {metrics['device']}.")
    report.text("Loss (both models): " + ("per-pixel cross-entropy." if weights is None else
                                          f"class-weighted per-pixel cross-entropy ({config['class_weights']}: " +
                                          ", ".join(f"{c} {w:.3g}" for c, w in weights.items()) + ")."))
    report.table(["role", "model", "parameters", "epochs (selected)", "train s", "CPU s"],
                 [(role, label, f"{p:,}", f"{m['epochs']} ({m['best_epoch']})", f"{m['train_seconds']:.1f}",
                   f"{m['cpu_seconds']:.1f}") for role, label, p, m in table])
    report.section("Metrics", ["| model / split | pixel accuracy | mIoU | cross-entropy (unweighted) |",
                               "|---|---|---|---|", *(_seg_row(f"{label} / {split}", m[split])
                                                      for _, label, _, m in table for split in ("val", "test"))])
    report.text("mIoU averages the per-class IoU over the classes present in the truth or the prediction.")
    report.section("Per-class IoU (test)").table(
        ["class", *(t[1] for t in table)],
        [(c, *("—" if t[3]["test"]["iou"][c] is None else f"{t[3]['test']['iou'][c]:.4f}" for t in table))
         for c in classes])
    legend = ", ".join(f"{c} #{''.join(f'{round(255 * v):02x}' for v in rgb)}"
                       for c, rgb in zip(classes[1:], class_palette(len(classes))[1:]))
    report.section("Test examples", [f"Columns: image | truth | {' | '.join(preds)}; labelled pixels are tinted with "
                                     f"their class colour ({legend})."]).figure("overlays.png", "overlays")
    report.section("Learning curves", [f"{metrics['model']}:"]).figure("learning_curves.png", "learning curves")
    if "baseline" in histories:
        report.text(f"{next(iter(metrics['baselines']))}:").figure("baseline_learning_curves.png",
                                                                   "baseline learning curves")
    return report


# ----------------------------------------------------------------------------- generate

def generate_report(out: str | os.PathLike, *, config: dict, metrics: dict) -> Report:
    """``report.md`` of a generation run (its PNGs are written by the task as it samples)."""
    out = Path(out)
    h, w = metrics["image_size"]
    rows = [("model: " + metrics["model"] + (f" ({config['model'].get('layer', 'diagonal')})"
                                               if metrics["model"] == "pixel_rnn" else ""), metrics)]
    rows += [(f"baseline: {k}", v) for k, v in metrics["baselines"].items()]
    report = Report(f"Generation run: {metrics['model']} on binary {config['data']['name']} {h}x{w}")
    report.text(f"Seed {metrics['seed']}; {metrics['n_train']} train / {metrics['n_val']} validation (carved from "
                f"train) / {metrics['n_test']} test images; {metrics['cpu_seconds']} CPU seconds in all.")
    report.text("Negative log-likelihood (lower is better), exact for every model (autoregressive in raster order):")
    report.table(["model", "test NLL (nats/image)", "± s.e.", "test bits/pixel", "val NLL", "parameters",
                  "epochs (best)", "train s (wall)"],
                 [(label, f"{m['test']['nll']:.3f}", f"{m['test']['nll_sem']:.3f}",
                   f"{m['test']['bits_per_pixel']:.4f}", f"{m['val']['nll']:.3f}", m["parameters"],
                   f"{m['epochs']} ({m['best_epoch']})", f"{m['train_seconds']:.1f}") for label, m in rows])
    report.section("Samples").figure("samples.png", "samples of the model")
    for k in metrics["baselines"]:
        report.figure(f"samples-{k}.png", f"samples of {k}")
    report.section("Half-image completions", ["Each row: a test image, its top half, three samples of the bottom "
                                              "half given the top half."]).figure("completions.png", "completions")
    if (out / "learning_curves.png").exists():
        report.section("Learning curves").figure("learning_curves.png", "learning curves")
    return report


# ----------------------------------------------------------------------------- superres

def side_by_side(up: np.ndarray, sr: np.ndarray, hr: np.ndarray, detail: int = 96, zoom: int = 3) -> np.ndarray:
    """bicubic | model | HR in a row, and below the same centre detail enlarged ``zoom`` x (nearest)."""
    full = image_grid(np.stack([up, np.clip(sr, 0, 1), hr]), ncol=3, pad=4)
    h, w = hr.shape
    d = min(detail, h, w // 3)
    i, j = (h - d) // 2, (w - d) // 2
    crops = np.stack([a[i:i + d, j:j + d] for a in (up, np.clip(sr, 0, 1), hr)])
    crops = crops.repeat(zoom, axis=1).repeat(zoom, axis=2)
    zoomed = image_grid(crops, ncol=3, pad=4)
    width = max(full.shape[1], zoomed.shape[1])
    rows = [np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=1.0) for a in (full, zoomed)]
    return np.concatenate([rows[0], np.ones((8, width), np.float32), rows[1]])


def superres_report(out: str | os.PathLike, *, config: dict, metrics: dict, history: list, outputs: dict) -> Report:
    """``learning_curves.png``, one ``test_<name>.png`` per test image (``outputs``: ``{name: (bicubic,
    model, HR)}``, see :func:`side_by_side`) and ``report.md``."""
    out = Path(out)
    plot_learning_curves(history, out / "learning_curves.png", metric="psnr", best_epoch=metrics["best_epoch"])
    for name, (up, sr, hr) in outputs.items():
        write_png(out / f"test_{name}.png", side_by_side(up, sr, hr))
    d, s = config["data"], config["data"]["scale"]
    report = Report(f"Super-resolution x{s}: `{metrics['model']['name']}`")
    report.text(f"Luminance (Y of full-range YCbCr) of scikit-image's bundled images. Test images (held out): "
                f"{', '.join(d['test_images'])}. Training images: {', '.join(d['train_images'])}; "
                f"validation is the last {config['train']['val_fraction']:.0%} of each along its longer side.")
    report.text(f"LR images: antialiased bicubic downscaling x{s}. PSNR (dB) and SSIM: scikit-image, data range 1, "
                f"{s}-pixel border cropped.")
    report.text(f"Seed {metrics['seed']}, {metrics['epochs']} epochs (best {metrics['best_epoch']}), "
                f"{metrics['parameters']:,} parameters, training {metrics['train_seconds']:.0f} s wall, "
                f"{metrics['cpu_seconds']:.0f} s CPU.")
    rows = []
    for split in ("test", "val"):
        ours, base = metrics[split], metrics["baselines"]["bicubic"][split]
        for name in ours["per_image"]:
            o, b = ours["per_image"][name], base["per_image"][name]
            rows.append((split, name, f"{b['psnr']:.2f}", f"{o['psnr']:.2f}", f"{o['psnr'] - b['psnr']:+.2f}",
                         f"{b['ssim']:.4f}", f"{o['ssim']:.4f}"))
        rows.append((split, "**mean**", f"{base['psnr']:.2f}", f"{ours['psnr']:.2f}",
                     f"**{ours['psnr'] - base['psnr']:+.2f}**", f"{base['ssim']:.4f}", f"{ours['ssim']:.4f}"))
    report.table(["split", "image", "bicubic PSNR", "model PSNR", "gain", "bicubic SSIM", "model SSIM"], rows)
    report.figure("learning_curves.png", "learning curves")
    report.text("Test images, left to right: bicubic | model | original (HR); below: the centre enlarged.")
    for name in d["test_images"]:
        report.figure(f"test_{name}.png", name)
    return report


# -------------------------------------------------------------------------------- video

def _plot_horizon(metrics: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4))
    ax_mse, ax_ssim = fig.subplots(1, 2)
    runs = {"model": metrics["test"], "copy last frame": metrics["baselines"]["copy_last"],
            "mean frame": metrics["baselines"]["mean_frame"]}
    for label, m in runs.items():
        steps = np.arange(1, len(m["mse_per_step"]) + 1)
        ax_mse.plot(steps, m["mse_per_step"], marker="o", ms=3, label=label)
        ax_ssim.plot(steps, m["ssim_per_step"], marker="o", ms=3, label=label)
    ax_mse.set(title="test MSE per predicted frame", xlabel="frames ahead")
    ax_ssim.set(title="test SSIM per predicted frame", xlabel="frames ahead")
    ax_mse.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def video_report(out: str | os.PathLike, *, config: dict, metrics: dict, history: list, strips: Sequence) -> Report:
    """``strip_<k>.png`` (``strips``: grid images input | truth | prediction), ``horizon.png``,
    ``learning_curves.png`` and ``report.md`` of a video-prediction run."""
    out = Path(out)
    for k, strip in enumerate(strips):
        write_png(out / f"strip_{k}.png", strip)
    _plot_horizon(metrics, out / "horizon.png")
    plot_learning_curves(history, out / "learning_curves.png", metric="mse", best_epoch=metrics["best_epoch"])
    t, c, m = metrics["test"], metrics["baselines"]["copy_last"], metrics["baselines"]["mean_frame"]
    d = config["data"]
    glyphs = "MNIST" if d["mnist"] else "scikit-learn's digits, upscaled"
    row = lambda name, s: (name, f"{s['mse']:.5f}", f"{s['mse'] / c['mse']:.3f}", f"{s['ssim']:.3f}")  # noqa: E731
    report = Report(f"Video prediction run: moving digits · {config['model']['name']}")
    report.text(f"Predict {d['output_frames']} frames from {d['input_frames']} of {d['size']}x{d['size']} clips with "
                f"{d['digits']} bouncing handwritten digits ({glyphs}); test clips ({metrics['n_test']}) are made from "
                f"test glyphs only. Weights selected on validation loss ({metrics['loss']}) over {metrics['n_val']} "
                f"clips carved from the {metrics['n_train'] + metrics['n_val']} training clips (epoch "
                f"{metrics['best_epoch']} of {metrics['epochs']}).")
    report.text(f"Test MSE **{t['mse']:.5f}** = **{t['mse_ratio_copy_last']:.3f}x** copy-last-frame "
                f"(target <= 0.7x: {'met' if metrics['target']['met'] else 'NOT met'}); SSIM {t['ssim']:.3f}.",
                "Per-frame MSE and SSIM are averaged over clips and predicted frames (Shi et al. 2015 report "
                "cross-entropy per sequence instead, 3670 for their encoder-forecaster on Moving MNIST; not "
                "comparable).")
    report.table(["predictor", "MSE", "MSE / copy-last", "SSIM"],
                 [row("model", t), row("copy last frame", c), row(f"mean frame ({m['value']:.3f} everywhere)", m)])
    report.text("The mean frame (a constant, no motion at all) is listed because copy-last is a weak baseline at long "
                "horizons: a digit that moved away is counted twice. A model should beat both."
                + (" The model's SSIM is below copy-last's: its forecasts are blurred (a per-pixel loss averages over "
                   "the futures it cannot tell apart), which SSIM punishes more than MSE does."
                   if t["ssim"] < c["ssim"] else ""))
    report.text(f"Training: {metrics['train_seconds']:.1f} s wall, {metrics['cpu_seconds']:.1f} s CPU for the whole "
                f"run, seed {metrics['seed']}, {metrics['parameters']:,} parameters, device {metrics['device']}.")
    steps = range(len(t["mse_per_step"]))
    report.section("Per horizon step").table(
        ["frames ahead", *(k + 1 for k in steps)],
        [("model MSE", *(f"{v:.4f}" for v in t["mse_per_step"])),
         ("copy-last MSE", *(f"{v:.4f}" for v in c["mse_per_step"])),
         ("model SSIM", *(f"{v:.3f}" for v in t["ssim_per_step"])),
         ("copy-last SSIM", *(f"{v:.3f}" for v in c["ssim_per_step"]))])
    report.figure("horizon.png", "per-step metrics")
    report.section("Examples (rows: input | truth | prediction)")
    for k in range(len(strips)):
        report.figure(f"strip_{k}.png", f"test clip {k}")
    report.section("Learning curves").figure("learning_curves.png", "learning curves")
    return report


# ----------------------------------------------------------------------- action, volume

def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def clips_report(out: str | os.PathLike, *, task: str, metrics: dict, histories: dict[str, tuple],
                 samples: np.ndarray) -> Report:
    """Confusion matrices, learning curves, ``samples.png`` and ``report.md`` of an action or volume
    run (``task``): the model's block is metrics.json itself, the baseline's its one ``baselines``
    entry. ``histories``: ``{"model" | "baseline": (history, best epoch)}``."""
    out = Path(out)
    (bname, b), classes = next(iter(metrics["baselines"].items())), metrics["classes"]
    m = metrics
    plot_confusion_matrix(np.array(m["confusion_matrix"]), classes, out / "confusion_matrix.png",
                          title=f"{m['name']} (test)")
    plot_confusion_matrix(np.array(b["confusion_matrix"]), classes, out / "confusion_matrix_baseline.png",
                          title=f"{bname} (test)")
    for role, png in (("model", "learning_curves.png"), ("baseline", "learning_curves_baseline.png")):
        plot_learning_curves(histories[role][0], out / png, best_epoch=histories[role][1])
    write_png(out / "samples.png", samples)
    unit = "frame" if task == "action" else "slice"
    report = Report(f"{task} run: {m['name']} against {bname}")
    report.text(f"Test accuracy **{_pct(m['test']['accuracy'])}** for {m['name']}, {_pct(b['test']['accuracy'])} for "
                f"the single-{unit} baseline {bname} (middle {'valid frame' if task == 'action' else 'slice'}); "
                f"chance {_pct(m['chance'])} ({len(classes)} classes). {m['n_train']} train / {m['n_val']} validation "
                f"/ {m['n_test']} test samples; seed {m['seed']}; {m['cpu_seconds']} CPU seconds in all.")
    report.table(["model", "test accuracy", "test macro-F1", "val accuracy", "epochs (best)", "train seconds (wall)",
                  "CPU seconds", "parameters"],
                 [(n, _pct(r["test"]["accuracy"]), _pct(r["test"]["macro_f1"]), _pct(r["val"]["accuracy"]),
                   f"{r['epochs']} ({r['best_epoch']})", f"{r['train_seconds']:.1f}", r["train_cpu_seconds"],
                   f"{r['parameters']:,}") for n, r in ((m["name"], m), (f"{bname} (baseline)", b))])
    for n, r, png in ((m["name"], m, "confusion_matrix.png"), (bname, b, "confusion_matrix_baseline.png")):
        report.section(f"{n}: per class (test)").table(
            ["class", "precision", "recall", "F1", "support"],
            [(c["class"], f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", c["support"])
             for c in r["per_class"]])
        report.text("```", format_confusion(np.array(r["confusion_matrix"]), classes), "```")
        report.figure(png, "confusion matrix")
    report.section("Learning curves").figure("learning_curves.png", "model").figure("learning_curves_baseline.png",
                                                                                    "baseline")
    report.section("Training samples (one row per class)").figure("samples.png", "samples")
    return report


# ------------------------------------------------------------------------------ caption

def caption_report(out: str | os.PathLike, *, config: dict, metrics: dict, history: list,
                   attention_files: Sequence[str]) -> Report:
    """``learning_curves.png`` and ``report.md`` of a captioning run: BLEU and exact match for the
    model (greedy and beam, test and validation) and the baselines, example captions, the per-word
    attention PNGs (``attention_files``, written by the task) and the learning curves."""
    out = Path(out)
    plot_learning_curves(history, out / "learning_curves.png", metric="bleu4", best_epoch=metrics["best_epoch"])
    f = lambda v: f"{v:.3f}"  # noqa: E731
    beam = metrics["beam"]
    rows = [("model, greedy (test)", metrics["test"]["greedy"]),
            (f"model, beam {beam} (test)", metrics["test"]["beam"]),
            ("model, greedy (val)", metrics["val"]["greedy"]), (f"model, beam {beam} (val)", metrics["val"]["beam"]),
            ("baseline: most frequent caption (test)", metrics["baselines"]["most_frequent_caption"]),
            ("baseline: nearest training image (test)", metrics["baselines"]["nearest_neighbour"])]
    report = Report(f"Captioning run: {config['data']['source']}")
    report.text(f"{metrics['n_train']} train / {metrics['n_val']} validation / {metrics['n_test']} test images; "
                f"{metrics['parameters']:,} parameters; {metrics['epochs']} epochs (best {metrics['best_epoch']}); "
                f"training {metrics['train_seconds']:.0f} s, {metrics['cpu_seconds']:.0f} CPU s in all; "
                f"seed {metrics['seed']}.")
    report.text("BLEU on the 0-1 scale (sacrebleu corpus BLEU / 100, all references); exact: the caption equals one "
                "of its references.")
    report.table(["", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "exact"],
                 [(label, *(f(m[k]) for k in ("bleu1", "bleu2", "bleu3", "bleu4", "exact"))) for label, m in rows])
    report.section("Test examples").table(["#", "greedy", "beam", "references"],
                                          [(e["index"], e["greedy"], e["beam"], " / ".join(e["references"]))
                                           for e in metrics["examples"]])
    report.section("Attention per generated word (beam search)")
    for a in attention_files:
        report.figure(a)
    report.section("Learning curves").figure("learning_curves.png")
    return report


def plot_attention(path: str | os.PathLike, image: np.ndarray, words: Sequence[str], attention: np.ndarray,
                   title: str = "") -> None:
    """The image, then one panel per word with its attention map (upsampled) over the image.

    image (C, H, W), (H, W) or (H, W, C) in [0, 1]; attention (T, h, w) with T = len(words).
    """
    Figure = require("matplotlib.figure", "plots need matplotlib", "train").Figure
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[2] not in (1, 3):
        img = img.transpose(1, 2, 0)
    img = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    att = np.asarray(attention, dtype=np.float32)
    if att.ndim != 3 or len(att) != len(words):
        raise ValueError(f"attention must be (T, h, w) with T = {len(words)} words, got shape {att.shape}")
    h, w = img.shape[:2]
    up = (torch.nn.functional.interpolate(torch.from_numpy(att)[:, None], size=(h, w), mode="bilinear",
                                          align_corners=False)[:, 0].numpy() if len(att) else att)
    n = len(words) + 1
    ncol = min(n, 6)
    nrow = -(-n // ncol)
    fig = Figure(figsize=(1.9 * ncol * max(w / h, 0.6), 1.9 * nrow + 0.3))
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    cmap = "gray" if img.ndim == 2 else None
    axes[0].imshow(img, cmap=cmap, vmin=0, vmax=1)
    axes[0].set_title("image", fontsize=9)
    for i, word in enumerate(words):
        ax = axes[i + 1]
        ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
        ax.imshow(up[i], cmap="inferno", alpha=0.6, vmin=0, vmax=max(float(up[i].max()), 1e-6))
        ax.set_title(word, fontsize=10)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())

"""Image quality against a reference: PSNR and SSIM of a whole image with a border cropped
(super-resolution), and per-frame MSE and SSIM of predicted clips (video prediction), both through
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity``."""

from __future__ import annotations

import numpy as np

from ..checks import require

__all__ = ["image_quality", "frame_metrics"]


def _skimage_metrics():
    return require("skimage.metrics", "PSNR and SSIM need scikit-image", "vision")


def image_quality(hr: np.ndarray, pred: np.ndarray, border: int) -> dict[str, float]:
    """PSNR (dB) and SSIM of ``pred`` against ``hr`` ((H, W) in [0, 1]) with ``border`` pixels cropped
    from every side (scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity``)."""
    metrics = _skimage_metrics()
    if hr.shape != pred.shape or hr.ndim != 2:
        raise ValueError(f"hr and pred must be (H, W) of one shape, got {hr.shape} and {pred.shape}")
    if min(hr.shape) - 2 * border < 7:
        raise ValueError(f"image of {hr.shape[0]}x{hr.shape[1]} is too small for a {border}-pixel border crop and SSIM")
    b = (slice(border, hr.shape[0] - border), slice(border, hr.shape[1] - border))
    a, p = hr[b].astype(np.float64), np.clip(pred[b], 0.0, 1.0).astype(np.float64)
    return {"psnr": float(metrics.peak_signal_noise_ratio(a, p, data_range=1.0)),
            "ssim": float(metrics.structural_similarity(a, p, data_range=1.0))}


def frame_metrics(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per-frame MSE and SSIM of (N, T, H, W) predictions in [0, 1]: the means over clips and
    steps (``mse``, ``ssim``) and per horizon step (``mse_per_step``, ``ssim_per_step``)."""
    structural_similarity = _skimage_metrics().structural_similarity
    if pred.shape != truth.shape or pred.ndim != 4:
        raise ValueError(f"pred and truth must be equal (N, T, H, W) arrays, got {pred.shape} and {truth.shape}")
    pred, truth = pred.astype(np.float64), truth.astype(np.float64)
    mse = ((pred - truth) ** 2).mean(axis=(2, 3))  # -> (N, T)
    ssim = np.array([[structural_similarity(truth[i, t], pred[i, t], data_range=1.0) for t in range(pred.shape[1])]
                     for i in range(len(pred))])  # -> (N, T)
    return {"mse": float(mse.mean()), "ssim": float(ssim.mean()),
            "mse_per_step": [float(v) for v in mse.mean(0)], "ssim_per_step": [float(v) for v in ssim.mean(0)],
            "n": int(len(pred))}

"""Image quality against a reference (lstmkit.eval.image_quality): super-resolution's PSNR / SSIM with a
border crop, video prediction's per-frame MSE / SSIM."""

import numpy as np
import pytest

from lstmkit.eval.image_quality import frame_metrics, image_quality


def test_image_quality_crops_the_border():
    hr = np.full((20, 20), 0.5)
    pred = hr + 0.01
    pred[:2] = 1.0  # wrong only in the 2-pixel border
    m = image_quality(hr, pred, border=2)
    assert m["psnr"] == pytest.approx(40.0) and 0.99 < m["ssim"] <= 1.0
    assert image_quality(hr, pred, border=0)["psnr"] < 20
    with pytest.raises(ValueError, match="must be .H, W. of one shape"):
        image_quality(hr, pred[1:], 2)


def test_frame_metrics():
    truth = np.random.default_rng(0).random((3, 4, 16, 16))
    perfect = frame_metrics(truth, truth)
    assert perfect["mse"] == 0 and perfect["ssim"] == pytest.approx(1.0)
    off = frame_metrics(np.clip(truth + 0.1, 0, 1), truth)
    assert 0 < off["mse"] <= 0.01 and off["ssim"] < 1 and len(off["mse_per_step"]) == 4
    with pytest.raises(ValueError, match=r"equal \(N, T, H, W\) arrays"):
        frame_metrics(truth[0], truth[0])

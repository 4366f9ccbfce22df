"""Segmentation metrics (hand-computed) and the overlay PNG."""

import numpy as np
import pytest
from PIL import Image

from lstmkit.eval.segmentation import (class_palette, colorize_mask, segmentation_confusion, segmentation_metrics,
                                       write_segmentation_overlays)


def test_metrics_by_hand():
    truth = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 3]])
    cm = segmentation_confusion(truth, pred, 5)
    assert cm.sum() == 8 and cm[0, 0] == 2 and cm[0, 1] == 1 and cm[2, 0] == 1 and cm[1, 3] == 1
    m = segmentation_metrics(cm, ["bg", "a", "b", "c", "d"])
    assert m["pixel_accuracy"] == pytest.approx(5 / 8)
    # bg: tp 2, fp 1 (a 2 predicted 0), fn 1 -> 2/4; a: tp 2, fp 1, fn 1 -> 2/4; b: tp 1, fn 1 -> 1/2;
    # c: only predicted -> 0; d: absent from both -> None, excluded from the mean
    assert m["iou"] == {"bg": 0.5, "a": 0.5, "b": 0.5, "c": 0.0, "d": None}
    assert m["miou"] == pytest.approx(1.5 / 4)


def test_perfect_prediction():
    y = np.random.default_rng(0).integers(0, 3, (2, 5, 5))
    m = segmentation_metrics(segmentation_confusion(y, y, 3))
    assert m["pixel_accuracy"] == 1.0 and m["miou"] == 1.0 and set(m["iou"]) == {"0", "1", "2"}


def test_metric_errors():
    with pytest.raises(ValueError, match="truth and prediction must have the same shape"):
        segmentation_confusion(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match=r"y_pred must hold class indices in \[0, 2\)"):
        segmentation_confusion(np.zeros((2, 2), int), np.full((2, 2), 2), 2)
    with pytest.raises(ValueError, match="cm is empty"):
        segmentation_metrics(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="class_names has 1 names but cm is 2x2"):
        segmentation_metrics(np.eye(2, dtype=np.int64), ["x"])


def test_colorize_and_palette():
    p = class_palette(11)
    assert p.shape == (11, 3) and (p[0] == 0).all() and len({tuple(c) for c in p}) == 11
    assert class_palette(30).shape == (30, 3)
    rgb = colorize_mask(np.array([[0, 3]]), 11)
    np.testing.assert_array_equal(rgb[0, 1], p[3])
    with pytest.raises(ValueError, match=r"mask must be \(H, W\) class indices in \[0, 4\)"):
        colorize_mask(np.array([[4]]), 4)


def test_overlay_png(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((3, 1, 6, 7)).astype(np.float32)
    truth = rng.integers(0, 4, (3, 6, 7))
    path = tmp_path / "o.png"
    write_segmentation_overlays(path, images, truth, {"a": truth, "b": np.zeros_like(truth)}, 4, scale=2)
    im = np.asarray(Image.open(path))
    # 4 columns (image, truth, a, b) of 7*2 px with 2 px padding; 3 rows of 6*2 px
    assert im.shape == (3 * 12 + 2 * 2, 4 * 14 + 3 * 2, 3)
    np.testing.assert_array_equal(im[:12, 16:30], im[:12, 32:46])  # prediction a == truth, drawn the same
    np.testing.assert_array_equal(im[:12, :14], im[:12, 48:62])  # nothing labelled: just the image
    with pytest.raises(ValueError, match="every prediction must be"):
        write_segmentation_overlays(path, images, truth, {"a": truth[:, :3]}, 4)

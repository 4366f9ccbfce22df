"""The grids the vision reports show (lstmkit.eval.images)."""

import numpy as np

from lstmkit.eval.images import binary_grid, class_strip, completion_grid, frame_strip


def test_binary_grid_draws_ink_dark_and_scales_up():
    assert binary_grid(np.zeros((5, 8, 8), np.uint8)).shape == (2 * 48 + 2, 3 * 48 + 2 * 2)  # a 3 x 2 grid
    assert set(np.unique(binary_grid(np.ones((1, 8, 8))))) == {0.0}  # ink is dark: 1 - pixel


def test_completion_grid_rows_hold_the_image_its_top_half_and_the_draws():
    images = np.ones((2, 8, 8), np.float32)
    grid = completion_grid(images, np.zeros((6, 8, 8), np.float32), draws=3)
    assert grid.shape == (2 * 48 + 2, 5 * 48 + 4 * 2)
    top = grid[:48, 50:98]  # the second tile of the first row: the image's top half, its bottom grey
    assert (top[:24] == 0).all() and np.allclose(top[24:], 0.5)


def test_frame_strip_pads_short_rows_and_class_strip_takes_one_sample_per_class():
    inputs, truth = np.zeros((3, 4, 4)), np.ones((2, 4, 4))
    strip = frame_strip(inputs, truth)
    assert strip.shape == (2 * 4 + 2, 3 * 4 + 2 * 2)
    assert (strip[6:, 12:] == 1).all()  # the truth row's missing third frame is blank (white)
    x = np.arange(4)[:, None, None, None] * np.ones((4, 5, 2, 2))
    row = class_strip(x, np.array([1, 0, 1, 2]), num_classes=4, step=2)  # class 3 has no sample
    assert row.shape == (3 * 2 + 2, 3 * 2 + 2)
    assert row[0, 0] == 1 and row[3, 0] == 0 and row[6, 0] == 3  # the first sample of classes 0, 1, 2

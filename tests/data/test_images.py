import gzip
import struct

import numpy as np
import pytest

from lstmkit.data.images import load_glyphs, read_image, resize
from lstmkit.eval.images import image_grid, write_png


def _idx(path, arr):
    codes = {np.dtype(np.uint8): 0x08}
    head = bytes([0, 0, codes[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.tobytes())


def test_sklearn_glyphs_are_disjoint_and_scaled():
    tr, te = load_glyphs("train", 12), load_glyphs("test", 12)
    assert tr.images.shape == (1347, 12, 12) and te.images.shape == (450, 12, 12)
    assert set(np.unique(tr.labels)) == set(range(10)) == set(np.unique(te.labels))
    assert tr.images.dtype == np.float32
    assert np.allclose(tr.images.max(axis=(1, 2)), 1) and np.allclose(tr.images.min(axis=(1, 2)), 0)
    native = load_glyphs("test", 8)  # no resize: scikit-learn's 8x8 pixels, rescaled per glyph
    assert native.images.shape == (450, 8, 8)


def test_mnist_glyphs_from_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    g = load_glyphs("test", 28, mnist=tmp_path)
    assert g.images.shape == (3, 28, 28) and g.labels.dtype == np.int64
    assert load_glyphs("train", 14, mnist=tmp_path).images.shape == (5, 14, 14)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        load_glyphs("test", 28, mnist=tmp_path)


@pytest.mark.parametrize("kwargs, match", [({"split": "val"}, "split"), ({"split": "train", "size": 2}, "size"),
                                           ({"split": "train", "mnist": "/nonexistent"}, "not a directory")])
def test_glyph_arguments_are_checked(kwargs, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_glyphs(**kwargs)


def test_png_round_trip_and_bad_files(tmp_path):
    img = np.linspace(0, 1, 6 * 5 * 3, dtype=np.float32).reshape(6, 5, 3)
    write_png(tmp_path / "a.png", img)
    back = read_image(tmp_path / "a.png")
    assert back.shape == (6, 5, 3) and np.abs(back - img).max() <= 0.5 / 255 + 1e-6
    assert read_image(tmp_path / "a.png", channels=1).shape == (6, 5)
    with pytest.raises(ValueError, match="needs 4x6"):
        read_image(tmp_path / "a.png", size=(6, 4))
    (tmp_path / "b.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="not a readable image"):
        read_image(tmp_path / "b.png")
    with pytest.raises(ValueError, match="channels"):
        read_image(tmp_path / "a.png", channels=2)
    with pytest.raises(ValueError, match="NaN"):
        write_png(tmp_path / "c.png", np.full((2, 2), np.nan))
    assert not list(tmp_path.glob(".*.tmp"))


def test_grid_and_resize():
    imgs = np.stack([np.full((3, 4), k, dtype=np.float32) for k in range(5)])
    g = image_grid(imgs, ncol=2, pad=1, pad_value=-1)
    assert g.shape == (3 * 4 - 1, 2 * 5 - 1)
    assert g[0, 0] == 0 and g[0, 5] == 1 and g[4, 0] == 2 and g[8, 0] == 4 and g[8, 5] == -1
    r = resize(imgs, (6, 8))
    assert r.shape == (5, 6, 8) and np.allclose(r[3], 3)
    with pytest.raises(ValueError, match="shape"):
        resize(imgs[0], 4)

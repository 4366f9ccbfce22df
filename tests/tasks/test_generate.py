"""Generation task: binary digits, a tiny end-to-end run, sampling from a run, config and input errors."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.data.binary import binarize, load_binary_images
from lstmkit.tasks.config import build, load_yaml
from lstmkit.eval.images import binary_grid
from lstmkit.tasks.generate import (GenerateConfig, load_generator, sample_from_run, train_generator,
                                    write_samples)

PRESETS = Path(__file__).resolve().parents[2] / "src" / "lstmkit" / "configs" / "generate"

TINY = {"model": {"name": "pixel_rnn", "layer": "diagonal", "hidden_size": 4, "num_layers": 1, "output_size": 8},
        "baselines": [{"name": "pixel_cnn", "hidden_size": 4, "num_layers": 1, "output_size": 8},
                      {"name": "pixel_rnn", "label": "row", "layer": "row", "hidden_size": 4, "num_layers": 1,
                       "output_size": 8},
                      {"name": "independent_pixels"}],
        "train": {"epochs": 2, "batch_size": 128, "lr": 0.01, "progress": "off", "val_fraction": 0.1},
        "samples": 6}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    metrics = train_generator(build(GenerateConfig, TINY), out)
    return out, metrics


# ---------------------------------------------------------------------------------- data


def test_binary_digits_splits():
    d = load_binary_images("digits", val_fraction=0.1, seed=0)
    assert d.size == (8, 8) and d.train.dtype == np.uint8
    assert (len(d.train) + len(d.val), len(d.test)) == (1347, 450)
    assert set(np.unique(np.concatenate([d.train, d.val, d.test]))) == {0, 1}
    assert abs(len(d.val) - 135) <= 5 and set(np.unique(d.val_labels)) == set(range(10))
    other = load_binary_images("digits", val_fraction=0.1, seed=1)
    assert np.array_equal(other.test, d.test) and not np.array_equal(other.val, d.val)  # val moves, test does not


def test_threshold_is_half_of_the_glyph_ink():
    """For glyphs whose darkest pixel is 16 (98% of them), a pixel is 1 exactly where the original value is >= 8."""
    from sklearn.datasets import load_digits

    from lstmkit.data.images import load_glyphs
    from lstmkit.data.splits import stratified_split

    raw = load_digits()
    _, test_idx = stratified_split(raw.target, 0.25, seed=0)
    images = raw.images[test_idx]
    ours = binarize(load_glyphs("test", 8).images)
    full = images.max(axis=(1, 2)) == 16
    assert full.mean() > 0.95
    assert np.array_equal(ours[full], (images[full] >= 8).astype(np.uint8))


def _mnist_dir(root, n_train=40, n_test=10):
    """Fake MNIST IDX files: 28x28 uint8 blobs (a bright square whose place depends on the digit)."""
    import gzip
    import struct

    def idx(path, arr):
        head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
        with gzip.open(path, "wb") as f:
            f.write(head + arr.tobytes())

    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
        for k, y in enumerate(labels):
            images[k, 2 * y:2 * y + 8, 4:12] = 250
        idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def test_mnist_idx_directory_end_to_end(tmp_path):
    d = load_binary_images("mnist", _mnist_dir(tmp_path), val_fraction=0.1)
    assert d.size == (28, 28) and (len(d.train), len(d.val), len(d.test)) == (30, 10, 10)
    for image, y in zip(d.test, d.test_labels):  # the square is ink, the noise is not
        assert image[2 * y:2 * y + 8, 4:12].all() and image.sum() == 64
    cfg = build(GenerateConfig, {"data": {"name": "mnist", "path": str(tmp_path)},
                                 "model": {"name": "pixel_cnn", "hidden_size": 2, "num_layers": 1, "output_size": 4},
                                 "baselines": [{"name": "independent_pixels"}], "samples": 2,
                                 "train": {"epochs": 1, "progress": "off", "val_fraction": 0.1}})
    metrics = train_generator(cfg, tmp_path / "run")
    assert metrics["image_size"] == [28, 28] and metrics["n_test"] == 10
    assert 0 < metrics["baselines"]["independent_pixels"]["test"]["nll"] < metrics["test"]["nll"]
    assert sample_from_run(tmp_path / "run", 2).shape == (2, 28, 28)


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="cifar"), "name must be 'digits'"),
    (dict(name="mnist"), "name 'mnist' needs path"),
    (dict(val_fraction=1.0), "val_fraction must be a float in"),
    (dict(max_train=3), "max_train must be an int >= 10"),
])
def test_load_binary_images_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_binary_images(**kwargs)


def test_binarize_rejects_values_outside_unit_range():
    with pytest.raises(ValueError, match=r"finite values in \[0, 1\].*divide 8-bit images by 255"):
        binarize(np.array([[0, 255]]))
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\]"):
        binarize(np.zeros((2, 2)), threshold=0)
    assert binarize(np.array([0.2, 0.5, 0.9])).tolist() == [0, 1, 1]


# ------------------------------------------------------------------------- the run itself


def test_run_directory_and_metrics(run):
    out, metrics = run
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "samples.png", "completions.png", "learning_curves.png", "samples-pixel_cnn.png", "samples-row.png",
                 "samples-independent_pixels.png"):
        assert (out / name).is_file(), name
    for label in ("pixel_cnn", "row", "independent_pixels"):
        assert (out / "baselines" / label / "model.safetensors").is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert {"test", "val", "baselines", "train_seconds", "cpu_seconds", "seed", "parameters", "epochs"} <= set(saved)
    assert set(saved["baselines"]) == {"pixel_cnn", "row", "independent_pixels"}
    assert saved["n_train"] + saved["n_val"] == 1347 and saved["n_test"] == 450 and saved["image_size"] == [8, 8]
    for m in [saved, *saved["baselines"].values()]:
        assert 0 < m["test"]["nll"] < 64 * math.log(2) + 1  # better than (or near) a coin per pixel
        assert math.isclose(m["test"]["bits_per_pixel"], m["test"]["nll"] / (64 * math.log(2)))
    assert saved["epochs"] == 2 and len(json.loads((out / "history.json").read_text())) == 2
    report = (out / "report.md").read_text()
    for text in ("baseline: pixel_cnn", "baseline: row", "baseline: independent_pixels", "samples.png",
                 "completions.png", "model: pixel_rnn (diagonal)"):
        assert text in report
    assert load_yaml(out / "config.yaml")["baselines"][1]["label"] == "row"


def test_independent_baseline_is_the_smoothed_training_mean(run):
    """Its test NLL recomputed by hand from the training split (same seed, same carving)."""
    out, metrics = run
    d = load_binary_images("digits", val_fraction=0.1, seed=0)
    p = (d.train.sum(0) + 0.5) / (len(d.train) + 1.0)
    nll = -(d.test * np.log(p) + (1 - d.test) * np.log(1 - p)).sum(axis=(1, 2)).mean()
    assert math.isclose(metrics["baselines"]["independent_pixels"]["test"]["nll"], nll, rel_tol=1e-5)


def test_pngs_have_the_grid_size(run):
    from PIL import Image

    out, _ = run
    with Image.open(out / "completions.png") as im:  # 8 rows x 5 columns of 48-pixel tiles, 2-pixel gaps
        assert im.size == (5 * 48 + 4 * 2, 8 * 48 + 7 * 2)
    with Image.open(out / "samples.png") as im:  # 6 samples: 3 x 2
        assert im.size == (3 * 48 + 2 * 2, 2 * 48 + 2)


def test_sample_from_run_is_reproducible_and_writes_pngs(run, tmp_path):
    out, _ = run
    a, b, c = sample_from_run(out, 5, seed=3), sample_from_run(out, 5, seed=3), sample_from_run(out, 5, seed=4)
    assert a.shape == (5, 8, 8) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert write_samples(out, 4, seed=2) == out / "samples-seed2.png" and (out / "samples-seed2.png").is_file()
    target = tmp_path / "grid.png"
    assert write_samples(out / "baselines" / "row", 4, output=target) == target and target.is_file()
    assert binary_grid(a).shape == (2 * 48 + 2, 3 * 48 + 2 * 2)  # (rows, columns) of a 3 x 2 grid


def test_a_loaded_model_refuses_wrong_inputs(run):
    out, metrics = run
    model = load_generator(out)
    d = load_binary_images("digits", val_fraction=0.1, seed=0)
    x = torch.from_numpy(d.test[:16]).float().unsqueeze(1)
    assert math.isclose(model.nll(x).mean().item(), model.nll(torch.from_numpy(d.test[:16])).mean().item())
    with pytest.raises(ValueError, match="images of 28x28 .* this model is for 8x8"):
        model.complete(torch.zeros(2, 1, 28, 28), 14)
    with pytest.raises(ValueError, match=r"binary pixels \(0 or 1\), found 0.3"):
        model.nll(torch.full((2, 1, 8, 8), 0.3))
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        sample_from_run(out, 0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        sample_from_run(out, 2, seed=-1)


def test_load_generator_refuses_other_tasks(tmp_path):
    from lstmkit.checkpoint import save_checkpoint

    save_checkpoint(tmp_path, {"w": torch.zeros(1)}, {"task": "classify", "model": {"name": "rnn_classifier"}})
    with pytest.raises(ValueError, match="holds a 'classify' model; this needs 'generate'"):
        load_generator(tmp_path)


@pytest.mark.parametrize("patch,match", [
    ({"task": "classify"}, "task must be 'generate'"),
    ({"model": {"layer": "row"}}, "model must be a mapping with a 'name'"),
    ({"model": {"name": "pixel_rnn", "label": "x"}}, "only baselines take a label"),
    ({"baselines": [{"name": "pixel_cnn"}, {"name": "pixel_cnn"}]}, "label 'pixel_cnn' must be a distinct"),
    ({"baselines": [{"hidden_size": 3}]}, r"baselines\[0\] must be a mapping with a 'name'"),
    ({"samples": 0}, r"samples must be an int in \[1, 1024\]"),
    ({"data": {"name": "mnist"}}, "data.name 'mnist' needs data.path"),
    ({"data": {"threshold": 1.5}}, r"data.threshold must be a number in \(0, 1\]"),
    ({"data": {"nme": "digits"}}, "unknown config key 'data.nme'; did you mean 'name'"),
])
def test_config_errors(patch, match):
    with pytest.raises(ValueError, match=match):
        build(GenerateConfig, patch)


def test_model_size_is_fixed_by_the_data(tmp_path):
    cfg = build(GenerateConfig, {**TINY, "model": {"name": "pixel_cnn", "height": 28}, "baselines": []})
    with pytest.raises(ValueError, match="model.height=28 but the data sets it to 8; remove it"):
        train_generator(cfg, tmp_path / "out")


def test_presets_build():
    for path in PRESETS.glob("*.yaml"):
        cfg = build(GenerateConfig, load_yaml(path))
        assert cfg.task == "generate" and path.read_text().startswith("#")
        assert "lstmkit train configs/generate/" in path.read_text()


@pytest.mark.slow
def test_digits_diagonal_preset_beats_the_baselines(tmp_path):
    """The preset (seed 0): Diagonal BiLSTM <= PixelCNN < independent pixels in test NLL."""
    cfg = build(GenerateConfig, load_yaml(PRESETS / "digits-diagonal.yaml"))
    m = train_generator(cfg, tmp_path / "run")
    diagonal, cnn = m["test"]["nll"], m["baselines"]["pixel_cnn"]["test"]["nll"]
    independent = m["baselines"]["independent_pixels"]["test"]["nll"]
    assert diagonal <= cnn + 0.1 and cnn < independent - 3, (diagonal, cnn, independent)

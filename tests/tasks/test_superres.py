import json

import numpy as np
import pytest
import torch

from lstmkit.data.natural import crop_to_multiple, downscale, load_natural, rgb_to_ycbcr
from lstmkit.data.images import read_image
from lstmkit.eval.images import write_png
from lstmkit.models.superres import bicubic_upscale
from lstmkit.tasks.config import build, load_yaml
from lstmkit.tasks.superres import (SuperResConfig, load_upscaler, train_superres, upscale_array,
                                    upscale_image, write_upscaled)

TINY = {"data": {"scale": 2, "patch": 8, "patches_per_epoch": 24, "val_patches": 8,
                 "train_images": ["camera", "coins"], "test_images": ["chelsea"]},
        "model": {"name": "lstm_sr", "features": 6, "hidden_size": 4},
        "train": {"epochs": 2, "batch_size": 8, "lr": 0.003, "progress": "off", "seed": 1}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sr") / "run"
    torch.manual_seed(0)
    metrics = train_superres(build(SuperResConfig, TINY), out)
    return out, metrics


def test_end_to_end_run_directory(run):
    out, metrics = run
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "learning_curves.png", "test_chelsea.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["split"] == {"train": ["camera", "coins"], "test": ["chelsea"]} and saved["seed"] == 1
    assert saved["epochs"] == 2 and len(json.loads((out / "history.json").read_text())) == 2
    assert set(saved["val"]["per_image"]) == {"camera", "coins"} and set(saved["test"]["per_image"]) == {"chelsea"}
    assert saved["parameters"] == sum(p.numel() for p in load_upscaler(out).parameters())
    # the bicubic baseline, recomputed here with scikit-image on the 2-pixel-cropped Y channel
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    hr = crop_to_multiple(load_natural("chelsea"), 2)
    up = bicubic_upscale(torch.from_numpy(downscale(hr, 2))[None, None], 2)[0, 0].numpy().astype(np.float64)
    b = saved["baselines"]["bicubic"]["test"]
    assert b["psnr"] == pytest.approx(peak_signal_noise_ratio(hr[2:-2, 2:-2].astype(np.float64), up[2:-2, 2:-2],
                                                              data_range=1.0), abs=1e-6)
    assert b["ssim"] == pytest.approx(structural_similarity(hr[2:-2, 2:-2].astype(np.float64), up[2:-2, 2:-2],
                                                            data_range=1.0), abs=1e-6)
    assert 25 < b["psnr"] < 40 and saved["gain_db"]["test"] == pytest.approx(saved["test"]["psnr"] - b["psnr"])
    assert "| test | chelsea |" in (out / "report.md").read_text()
    assert build(SuperResConfig, load_yaml(out / "config.yaml")) == build(SuperResConfig, TINY)


def test_upscale_grey_and_rgb_files(run, tmp_path):
    out, _ = run
    model = load_upscaler(out)
    rng = np.random.default_rng(0)
    grey = rng.random((10, 13)).astype(np.float32)
    write_png(tmp_path / "g.png", grey)
    up = upscale_image(out, tmp_path / "g.png", 2)
    q = np.round(grey * 255) / 255  # what the PNG stores
    with torch.no_grad():
        want = model(torch.from_numpy(q)[None, None]).clamp(0, 1)[0, 0].numpy()
    assert up.shape == (20, 26)
    np.testing.assert_allclose(up, want, atol=1e-5)
    rgb = rng.random((9, 11, 3)).astype(np.float32)
    up = upscale_array(model, rgb)
    assert up.shape == (18, 22, 3) and up.dtype == np.float32
    ycc = rgb_to_ycbcr(up)
    with torch.no_grad():  # where nothing is clipped, Y is the model's and Cb/Cr are bicubic
        y = model(torch.from_numpy(rgb_to_ycbcr(rgb)[..., 0])[None, None]).clamp(0, 1)[0, 0].numpy()
    cbcr = bicubic_upscale(torch.from_numpy(rgb_to_ycbcr(rgb)[..., 1:].transpose(2, 0, 1).copy())[None], 2)[0].numpy()
    inside = ((up > 0) & (up < 1)).all(axis=2)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(ycc[..., 0][inside], y[inside], atol=1e-4)
    np.testing.assert_allclose(ycc[..., 1:][inside], cbcr.transpose(1, 2, 0)[inside], atol=1e-4)
    path = write_upscaled(out, tmp_path / "g.png")  # scale: the trained one
    assert path == tmp_path / "g_x2.png" and path.is_file()
    again = write_upscaled(out, tmp_path / "g.png", 2, tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(path), read_image(again))
    assert read_image(path).shape == (20, 26)
    assert write_upscaled(out, tmp_path / "g.png", 2, tmp_path / "o.png") == tmp_path / "o.png"


def test_upscale_errors(run, tmp_path):
    out, _ = run
    model = load_upscaler(out)
    write_png(tmp_path / "g.png", np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"trained for x2 upscaling, not x4; use --scale 2 or a model trained with "
                                         r"data.scale=4"):
        upscale_image(out, tmp_path / "g.png", 4)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png is not a readable image file"):
        upscale_image(out, tmp_path / "notes.png", 2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        upscale_image(out, tmp_path / "missing.png", 2)
    with pytest.raises(ValueError, match=r"image must be \(h, w\) greyscale or \(h, w, 3\) RGB, got shape \(8, 8, 2\) "
                                         r"\(2 channels\)"):
        upscale_array(model, np.zeros((8, 8, 2), np.float32))
    with pytest.raises(ValueError, match="at least 4x4 pixels to upscale, got 3x8"):
        upscale_array(model, np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match=r"values must be finite and in \[0, 1\]"):
        upscale_array(model, np.full((8, 8), 255.0, np.float32))
    with pytest.raises(ValueError, match="output must be a .png file"):
        write_upscaled(out, tmp_path / "g.png", 2, tmp_path / "o.jpg")
    with pytest.raises(ValueError, match="holds a 'superres' model"):
        from lstmkit.tasks.runs import load_model

        load_model(out, "classify")


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="data.test_images: unknown image.s. 'lena'"):
        build(SuperResConfig, {"data": {"test_images": ["lena"]}})
    with pytest.raises(ValueError, match="share camera; test images must be held out"):
        build(SuperResConfig, {"data": {"train_images": ["camera", "moon"], "test_images": ["camera"]}})
    with pytest.raises(ValueError, match="data.scale must be 2, 3 or 4, got 8"):
        build(SuperResConfig, {"data": {"scale": 8}})
    with pytest.raises(ValueError, match="train.monitor must be 'val_loss'"):
        build(SuperResConfig, {"train": {"monitor": "val_accuracy"}})
    with pytest.raises(ValueError, match="task must be 'superres' here"):
        build(SuperResConfig, {"task": "classify"})
    with pytest.raises(ValueError, match=r"model.scale=4 but the data sets it to 2"):
        train_superres(build(SuperResConfig, {**TINY, "model": {"name": "lstm_sr", "scale": 4}}), tmp_path / "x")
    with pytest.raises(ValueError, match="training image 'page': image of 191x384 .HxW. is smaller than 192 pixels "
                                         ".lower data.patch or train.val_fraction"):
        train_superres(build(SuperResConfig, {**TINY, "data": {**TINY["data"], "patch": 96,
                                                                "train_images": ["page"]}}), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # refused before anything is written


@pytest.mark.parametrize("scale", [2, 4])
def test_presets_build(scale):
    from importlib import resources

    path = resources.files("lstmkit") / "configs" / "superres" / f"x{scale}.yaml"
    config = build(SuperResConfig, load_yaml(str(path)))
    assert config.data.scale == scale and config.model["name"] == "lstm_sr"
    assert config.data.test_images == ["chelsea", "coffee", "rocket"]
    assert f"configs/superres/x{scale}.yaml" in path.read_text().splitlines()[5]


@pytest.mark.slow
def test_x2_preset_beats_bicubic_by_one_db(tmp_path):
    from importlib import resources

    config = build(SuperResConfig, load_yaml(str(resources.files("lstmkit") / "configs" / "superres" / "x2.yaml")))
    metrics = train_superres(config, tmp_path / "x2")
    assert metrics["gain_db"]["test"] >= 1.0
    assert metrics["test"]["ssim"] > metrics["baselines"]["bicubic"]["test"]["ssim"]

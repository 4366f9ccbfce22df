"""Video prediction pipeline: a tiny end-to-end run, the run directory, predict-frames, errors;
the real preset behind @pytest.mark.slow."""

import json
from pathlib import Path

import numpy as np
import pytest

from lstmkit.tasks.config import build, load_yaml
from lstmkit.tasks.video import VideoConfig, copy_last, predict_frames, train_video, write_predicted_frames

PRESET = Path(__file__).resolve().parents[2] / "src" / "lstmkit" / "configs" / "video" / "moving-digits.yaml"

TINY = {
    "task": "video",
    "data": {"train_clips": 12, "test_clips": 4, "size": 16, "glyph_size": 8, "input_frames": 3, "output_frames": 2,
             "strips": 2},
    "model": {"name": "convlstm_forecaster", "patch": 4, "hidden_channels": [4], "peephole": "channel"},
    "train": {"epochs": 2, "batch_size": 4, "val_fraction": 0.25, "progress": "off"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("video-run")
    return out, train_video(build(VideoConfig, TINY), out)


def test_tiny_run_writes_the_run_directory(run):
    out, metrics = run
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "strip_0.png", "strip_1.png", "horizon.png", "learning_curves.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["mse"] == pytest.approx(metrics["test"]["mse"])
    assert set(saved["baselines"]) == {"copy_last", "mean_frame"}
    for m in (saved["test"], *saved["baselines"].values()):
        assert len(m["mse_per_step"]) == 2 and len(m["ssim_per_step"]) == 2 and m["n"] == 4
    assert saved["test"]["mse_ratio_copy_last"] == pytest.approx(saved["test"]["mse"] / saved["baselines"]["copy_last"]["mse"])
    assert saved["n_train"] == 9 and saved["n_val"] == 3 and saved["epochs"] == 2
    assert {"train_seconds", "cpu_seconds", "seed", "parameters"} <= set(saved)
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert build(VideoConfig, load_yaml(out / "config.yaml")) == build(VideoConfig, TINY)  # resolved config round trip
    report = (out / "report.md").read_text()
    assert "copy-last" in report and "![test clip 1](strip_1.png)" in report


def test_predict_frames_from_a_users_clip(run, tmp_path):
    out, _ = run
    clip = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "clip.npy", clip)
    frames = predict_frames(out, tmp_path / "clip.npy")
    assert frames.shape == (2, 16, 16) and frames.dtype == np.float32 and 0 <= frames.min() <= frames.max() <= 1
    written, path = write_predicted_frames(out, tmp_path / "clip.npy")
    assert path == tmp_path / "clip.pred.npy"
    np.testing.assert_array_equal(np.load(path), frames)
    np.testing.assert_array_equal(written, frames)
    _, png = write_predicted_frames(out, tmp_path / "clip.npy", tmp_path / "strip.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_predict_frames_errors(run, tmp_path):
    out, _ = run
    np.save(tmp_path / "long.npy", np.zeros((5, 16, 16), np.float32))
    with pytest.raises(ValueError, match="the clip has 5 frames but the model reads 3"):
        predict_frames(out, tmp_path / "long.npy")
    np.save(tmp_path / "big.npy", np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ValueError, match=r"frames are 64x64 \(HxW\) but the model needs 16x16"):
        predict_frames(out, tmp_path / "big.npy")
    np.save(tmp_path / "ok.npy", np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="output must end in .npy or .png"):
        write_predicted_frames(out, tmp_path / "ok.npy", tmp_path / "x.gif")
    with pytest.raises(ValueError, match="holds a 'classify' model; this needs 'video'"):
        (tmp_path / "other").mkdir()
        from lstmkit.checkpoint import save_checkpoint

        save_checkpoint(tmp_path / "other", {}, {"task": "classify"})
        predict_frames(tmp_path / "other", tmp_path / "ok.npy")


def test_copy_last():
    inputs = np.random.default_rng(0).random((3, 5, 16, 16))
    repeated = copy_last(inputs, 4)
    assert repeated.shape == (3, 4, 16, 16) and (repeated == inputs[:, -1:]).all()


@pytest.mark.parametrize("section, key, value, match", [
    ("data", "glyph_size", 80, "data.glyph_size=80 does not fit on a data.size=64 canvas"),
    ("data", "train_clips", 1, "data.train_clips must be >= 2"),
    ("data", "strips", 9, r"data.strips must be an int in \[0, data.test_clips\]"),
    ("data", "input_frames", 0, "data.input_frames must be an int >= 1, got 0"),
    ("model", "frame_size", 32, "model.frame_size=32 but the data sets it to 64; remove it"),
    (None, "task", "classify", "task must be 'video' here"),
])
def test_config_errors(section, key, value, match):
    cfg = {"task": "video", "data": {"test_clips": 5}}
    if section is None:
        cfg[key] = value
    else:
        cfg.setdefault(section, {})[key] = value
    with pytest.raises(ValueError, match=match):
        build(VideoConfig, cfg)


def test_preset_loads():
    config = build(VideoConfig, load_yaml(PRESET))
    assert config.model["name"] == "convlstm_forecaster" and config.data.size == 64
    assert config.data.input_frames == 10 and config.data.output_frames == 10 and config.data.digits == 2


@pytest.mark.slow
def test_preset_beats_copy_last_by_the_target(tmp_path):
    metrics = train_video(build(VideoConfig, load_yaml(PRESET)), tmp_path)
    assert metrics["test"]["mse_ratio_copy_last"] <= 0.7, metrics["test"]
    assert metrics["test"]["mse"] < metrics["baselines"]["mean_frame"]["mse"]

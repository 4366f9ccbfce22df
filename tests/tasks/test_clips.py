import json
from pathlib import Path

import numpy as np
import pytest

from lstmkit.data.clips import motion_clips
from lstmkit.tasks.clips import ActionConfig, VolumeConfig, classify_clip, classify_volume, train_action, train_volume
from lstmkit.tasks.config import build, load_yaml

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "lstmkit" / "configs"
NET = {"encoder_kwargs": {"channels": [4], "features": 8}}
TRAIN = {"epochs": 2, "batch_size": 16, "progress": "off"}
ACTION = {"data": {"n_train": 64, "n_test": 16, "size": 16, "glyph_size": 8, "min_frames": 3, "max_frames": 5},
          "model": {**NET, "hidden_size": 8}, "baseline": NET, "train": TRAIN}
VOLUME = {"data": {"n_train": 48, "n_test": 12, "size": 12, "depth": 6},
          "model": {**NET, "hidden_size": 8}, "baseline": NET, "train": TRAIN}
FILES = ["config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
         "confusion_matrix.png", "confusion_matrix_baseline.png", "learning_curves.png", "learning_curves_baseline.png",
         "samples.png", "baselines/{baseline}/model.safetensors", "baselines/{baseline}/model.json",
         "baselines/{baseline}/history.json"]


@pytest.fixture(scope="module")
def action_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("action")
    return out, train_action(build(ActionConfig, ACTION), out)


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("volume")
    return out, train_volume(build(VolumeConfig, VOLUME), out)


def _check_run(out, metrics, model, baseline, classes):
    for f in FILES:
        assert (out / f.format(baseline=baseline)).is_file(), f
    assert metrics == json.loads((out / "metrics.json").read_text())
    assert metrics["name"] == model and list(metrics["baselines"]) == [baseline]
    assert metrics["chance"] == pytest.approx(1 / classes) and len(metrics["classes"]) == classes
    for m in (metrics, metrics["baselines"][baseline]):
        assert set(m["test"]) >= {"accuracy", "macro_f1", "loss"} and 0 <= m["test"]["accuracy"] <= 1
        assert len(m["per_class"]) == classes and np.array(m["confusion_matrix"]).sum() == metrics["n_test"]
    for key in ("val", "train_seconds", "cpu_seconds", "seed", "parameters", "n_train", "n_val"):
        assert key in metrics, key
    assert "baseline" in (out / "report.md").read_text()
    saved = build(ActionConfig if model == "cnn_lstm" else VolumeConfig, load_yaml(out / "config.yaml"))
    assert saved.model["name"] == model


def test_action_end_to_end(action_run):
    out, metrics = action_run
    _check_run(out, metrics, "cnn_lstm", "frame_cnn", 8)
    assert metrics["n_train"] + metrics["n_val"] == 64 and metrics["n_test"] == 16


def test_volume_end_to_end(volume_run):
    out, metrics = volume_run
    _check_run(out, metrics, "slice_lstm", "slice_cnn", 6)


def test_classify_clip(action_run, tmp_path):
    out, _ = action_run
    clips = motion_clips(3, seed=9, split="test", size=16, glyph_size=8, min_frames=4, max_frames=4).x
    np.save(tmp_path / "batch.npy", clips)
    np.save(tmp_path / "one.npy", clips[0, :, 0])
    batch = classify_clip(out, tmp_path / "batch.npy")
    one = classify_clip(out, tmp_path / "one.npy")
    assert len(batch) == 3 and len(one) == 1
    assert one[0]["label"] == batch[0]["label"]
    assert one[0]["probabilities"] == pytest.approx(batch[0]["probabilities"], abs=1e-6)
    assert sum(batch[1]["probabilities"].values()) == pytest.approx(1.0)
    assert batch[2]["label"] in batch[2]["probabilities"]


@pytest.mark.parametrize("shape, message", [
    ((7, 16, 16), "clips have 7 frames but this model was trained on 3 to 5"),
    ((4, 16, 20), r"frames are 20x16 but this model was trained on 16x16"),
    ((16, 16), r"a clip is \(L, 16, 16\)"),
    ((2, 4, 3, 16, 16), r"got shape \(2, 4, 3, 16, 16\)"),
])
def test_classify_clip_errors(action_run, tmp_path, shape, message):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match=message):
        classify_clip(action_run[0], tmp_path / "x.npy")


def test_classify_errors_on_files(action_run, volume_run, tmp_path):
    bad = np.zeros((4, 16, 16), np.float32)
    bad[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(ValueError, match="contains NaN"):
        classify_clip(action_run[0], tmp_path / "nan.npy")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        classify_clip(action_run[0], tmp_path / "missing.npy")
    np.save(tmp_path / "v.npy", np.zeros((6, 12, 12), np.float32))
    with pytest.raises(ValueError, match="holds a 'volume' model; this needs 'action'"):
        classify_clip(volume_run[0], tmp_path / "v.npy")


def test_classify_volume(volume_run, tmp_path):
    out, _ = volume_run
    np.save(tmp_path / "v.npy", np.random.default_rng(0).integers(0, 256, (2, 6, 12, 12), dtype=np.uint8))
    preds = classify_volume(out, tmp_path / "v.npy")
    assert len(preds) == 2 and preds[0]["label"] in ("cylinder", "sphere", "cone_up", "cone_down", "spindle", "hourglass")
    for shape, message in [((12, 12), "got rank 2"), ((1, 2, 6, 12, 12), "got rank 5"),
                           ((5, 12, 12), r"volumes are \(5, 12, 12\) \(D, H, W\) but this model was trained on "
                                         r"\(6, 12, 12\)")]:
        np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
        with pytest.raises(ValueError, match=message):
            classify_volume(out, tmp_path / "bad.npy")


def test_volume_from_a_medmnist_file(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 6, 10, 10), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    np.savez(tmp_path / "m.npz", **arrays)
    cfg = build(VolumeConfig, {**VOLUME, "data": {"medmnist": str(tmp_path / "m.npz")}, "train": {**TRAIN, "epochs": 1}})
    metrics = train_volume(cfg, tmp_path / "run")
    assert metrics["n_train"] == 24 and metrics["n_val"] == 8 and metrics["n_test"] == 8
    assert metrics["classes"] == ["0", "1"]
    np.save(tmp_path / "v.npy", arrays["test_images"][:3])
    assert len(classify_volume(tmp_path / "run", tmp_path / "v.npy")) == 3
    arrays["train_labels"] = np.zeros((24, 3))
    np.savez(tmp_path / "multi.npz", **arrays)
    cfg = build(VolumeConfig, {**VOLUME, "data": {"medmnist": str(tmp_path / "multi.npz")}, "train": TRAIN})
    with pytest.raises(ValueError, match="multi-label"):
        train_volume(cfg, tmp_path / "run2")


@pytest.mark.parametrize("cls, data, message", [
    (ActionConfig, {"task": "volume"}, "task must be 'action' here"),
    (VolumeConfig, {"task": "action"}, "task must be 'volume' here"),
    (ActionConfig, {"data": {"n_train": 3}}, "data.n_train must be an int >= 16"),
    (ActionConfig, {"data": {"glyph_size": 40}}, "data.glyph_size must be <= data.size=32"),
    (ActionConfig, {"data": {"min_frames": 9, "max_frames": 8}}, "data.max_frames must be an int >= 9"),
    (ActionConfig, {"model": "cnn_lstm"}, "config key 'model' must be a mapping"),
    (ActionConfig, {"model": {"name": ["cnn_lstm"]}}, "model must be a mapping with a 'name'"),
    (VolumeConfig, {"data": {"noise": 2}}, r"data.noise must be a number in \[0, 1\)"),
    (VolumeConfig, {"baseline": {"name": 3}}, "baseline must be a mapping with a 'name'"),
])
def test_config_errors(cls, data, message):
    with pytest.raises(ValueError, match=message):
        build(cls, data)


def test_a_data_fixed_value_may_not_be_overridden(tmp_path):
    cfg = build(ActionConfig, {**ACTION, "model": {**ACTION["model"], "num_classes": 5}})
    with pytest.raises(ValueError, match="model.num_classes=5 but the data sets it to 8"):
        train_action(cfg, tmp_path)


@pytest.mark.parametrize("cls, path, model, baseline", [(ActionConfig, "video/actions.yaml", "cnn_lstm", "frame_cnn"),
                                                         (VolumeConfig, "volume/shapes.yaml", "slice_lstm", "slice_cnn")])
def test_presets_build_and_say_how_to_run_them(cls, path, model, baseline):
    config = build(cls, load_yaml(CONFIGS / path))
    assert config.model["name"] == model and config.baseline["name"] == baseline
    header = (CONFIGS / path).read_text().split("\ntask:")[0]
    assert f"lstmkit train configs/{path}" in header


@pytest.mark.slow
def test_actions_preset_meets_its_targets(tmp_path):
    metrics = train_action(build(ActionConfig, load_yaml(CONFIGS / "video" / "actions.yaml")), tmp_path)
    assert metrics["test"]["accuracy"] >= 0.90
    assert metrics["baselines"]["frame_cnn"]["test"]["accuracy"] <= metrics["chance"] + 0.05


@pytest.mark.slow
def test_shapes_preset_beats_the_single_slice_baseline(tmp_path):
    metrics = train_volume(build(VolumeConfig, load_yaml(CONFIGS / "volume" / "shapes.yaml")), tmp_path)
    assert metrics["test"]["accuracy"] >= 0.90
    assert metrics["baselines"]["slice_cnn"]["test"]["accuracy"] <= metrics["chance"] + 0.10

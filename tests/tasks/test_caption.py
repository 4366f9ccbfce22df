import json
from importlib import resources

import numpy as np
import pytest

from lstmkit.data.captions import caption_scenes
from lstmkit.eval.images import write_png
from lstmkit.tasks.caption import (CaptionConfig, caption_command, caption_image, load_captioner,
                                   train_captioner, write_attention_png)
from lstmkit.tasks.config import apply_overrides, build, load_yaml

PRESET = resources.files("lstmkit") / "configs" / "caption" / "digit-scenes.yaml"
TINY = ["data.n_train=80", "data.n_test=16", "model.channels=[4,8,8]", "model.embed_size=8", "model.hidden_size=16",
        "model.attention_size=8", "train.epochs=2", "train.batch_size=16", "train.progress=off", "evaluate.beam=2",
        "evaluate.max_len=12", "evaluate.examples=3", "evaluate.attention_images=2"]


def _config(overrides=()):
    return build(CaptionConfig, apply_overrides(load_yaml(str(PRESET)), list(overrides)))


def test_tiny_run_writes_the_run_directory_and_captions_a_file(tmp_path):
    metrics = train_captioner(_config(TINY), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "learning_curves.png", "attention_0.png", "attention_1.png"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["n_train"] == 64 and saved["n_val"] == 16 and saved["n_test"] == 16 and saved["epochs"] == 2
    for part in (saved["test"]["greedy"], saved["test"]["beam"], saved["val"]["greedy"], saved["val"]["beam"],
                 saved["baselines"]["most_frequent_caption"], saved["baselines"]["nearest_neighbour"]):
        assert set(part) >= {"bleu1", "bleu2", "bleu3", "bleu4", "exact"}
        assert all(0 <= part[f"bleu{n}"] <= 1 for n in (1, 2, 3, 4))
    assert saved["bleu_scale"].startswith("0-1") and saved["seed"] == 0 and saved["parameters"] > 0
    assert len(saved["examples"]) == 3 and len(saved["examples"][0]["references"]) == 4
    assert metrics["test"]["beam"] == saved["test"]["beam"]
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 2 and "val_bleu4" in history[0]
    assert "| baseline: nearest training image (test) |" in (run / "report.md").read_text()

    # the saved captioner decodes as the run did
    cap = load_captioner(run)
    scenes = caption_scenes(16, seed=1, split="test")  # the run's test scenes (data.seed + 1)
    assert cap.decode(scenes.images[:3], beam=1)[0] == [e["greedy"] for e in saved["examples"]]
    image = tmp_path / "scene.png"
    write_png(image, scenes.images[0, 0])
    caption, attention = caption_image(run, image, beam=2)
    assert isinstance(caption, str) and attention.shape == (len(caption.split()), 5, 7)
    np.testing.assert_allclose(attention.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert write_attention_png(tmp_path / "att.png", run, image, beam=2) == caption
    assert (tmp_path / "att.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert caption_command(run, image, beam=2) == caption
    assert caption_command(run, image, beam=2, attention=tmp_path / "cli.png") == caption
    assert (tmp_path / "cli.png").is_file()


def test_caption_image_errors(tmp_path):
    train_captioner(_config([*TINY, "train.epochs=1", "evaluate.attention_images=0"]), tmp_path / "run")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="bad.png is not a readable image file"):
        caption_image(tmp_path / "run", bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        caption_image(tmp_path / "run", tmp_path / "missing.png")


def test_flickr8k_layout_trains_end_to_end(tmp_path):
    from PIL import Image

    folder = tmp_path / "flickr"
    (folder / "Flicker8k_Dataset").mkdir(parents=True)
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}
    lines = []
    for i in range(12):
        name, colour = f"im{i}.jpg", list(colours)[i % 3]
        Image.new("RGB", (24, 20), colours[colour]).save(folder / "Flicker8k_Dataset" / name)
        lines += [f"{name}#0\ta {colour} picture .", f"{name}#1\tall {colour}"]
    (folder / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    config = _config([*TINY, "data.source=flickr8k", f"data.directory={folder}", "data.image_size=[16,16]",
                      "evaluate.attention_images=1"])
    metrics = train_captioner(config, tmp_path / "run")
    assert metrics["n_test"] == 2 and metrics["n_train"] + metrics["n_val"] == 10
    assert load_captioner(tmp_path / "run").channels == 3


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="data.source must be 'scenes' or 'flickr8k'"):
        _config(["data.source=coco"])
    with pytest.raises(ValueError, match="data.source flickr8k needs data.directory"):
        _config(["data.source=flickr8k"])
    with pytest.raises(ValueError, match=r"data.canvas must be \[height, width\]"):
        _config(["data.canvas=[40]"])
    with pytest.raises(ValueError, match="evaluate.beam must be an int >= 1, got 0"):
        _config(["evaluate.beam=0"])
    with pytest.raises(ValueError, match="train.monitor must be 'val_loss' for captioning"):
        _config(["train.monitor=val_accuracy"])
    with pytest.raises(ValueError, match="model.vocab_size=5 but the data sets it"):
        train_captioner(_config([*TINY, "model.vocab_size=5"]), tmp_path)


@pytest.mark.slow
def test_digit_scenes_preset_reaches_bleu4_of_0_6(tmp_path):
    metrics = train_captioner(_config(["train.progress=off"]), tmp_path)
    assert metrics["test"]["greedy"]["bleu4"] >= 0.6
    assert metrics["test"]["beam"]["bleu4"] >= 0.6
    assert metrics["test"]["beam"]["bleu4"] > metrics["baselines"]["nearest_neighbour"]["bleu4"]

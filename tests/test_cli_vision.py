"""The vision commands end to end through ``lstmkit.cli.main``: ``train`` on a tiny config of each
task, then the command that uses the run (segment, sample, upscale, predict-frames, caption,
classify-clip), each command refusing another task's run, and ``evaluate`` repeating the run's
test scores."""

import json
from pathlib import Path

import numpy as np
import pytest

from lstmkit.cli import main
from lstmkit.eval.images import write_png
from lstmkit.tasks.config import dump_yaml
from tests.tasks import test_caption, test_clips, test_generate, test_segment, test_superres, test_video


def _train(tmp_path, name: str, config: dict, overrides=()) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(dump_yaml(config))
    out = tmp_path / name
    args = ["-q", "train", str(path), "--out", str(out)]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    assert {"config.yaml", "model.json", "model.safetensors", "metrics.json", "report.md"} <= {
        p.name for p in out.iterdir()}
    return str(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision")
    return root, {
        "segment": _train(root, "segment", test_segment.TINY),
        "generate": _train(root, "generate", {"task": "generate", **test_generate.TINY}),
        "superres": _train(root, "superres", {"task": "superres", **test_superres.TINY}),
        "video": _train(root, "video", test_video.TINY),
        "action": _train(root, "action", {"task": "action", **test_clips.ACTION}),
        "volume": _train(root, "volume", {"task": "volume", **test_clips.VOLUME}),
        "caption": _train(root, "caption", {"task": "caption", "data": {}, "model": {"name": "attention_captioner"}},
                          test_caption.TINY),
    }


def _json(capsys) -> dict | list:
    return json.loads(capsys.readouterr().out)


def test_segment_sample_upscale(runs, capsys):
    root, r = runs
    img = root / "scene.png"
    write_png(img, np.random.default_rng(0).random((16, 16)))
    assert main(["segment", r["segment"], str(img), "--output", str(root / "seg.png")]) == 0
    out = _json(capsys)
    assert out["output"].endswith("seg.png") and sum(out["pixels_per_class"].values()) == 16 * 16
    assert main(["sample", r["generate"], "--n", "4", "--output", str(root / "s.png")]) == 0
    assert (root / "s.png").is_file() and _json(capsys)["output"].endswith("s.png")
    photo = root / "photo.png"
    write_png(photo, np.random.default_rng(1).random((20, 24)))
    assert main(["upscale", r["superres"], str(photo), "--scale", "2", "--output", str(root / "up.png")]) == 0
    assert (root / "up.png").is_file()
    capsys.readouterr()
    assert main(["upscale", r["superres"], str(photo), "--scale", "4"]) == 2
    assert "scale" in capsys.readouterr().err


def test_predict_frames_classify_clip_caption(runs, capsys, tmp_path):
    root, r = runs
    clip = tmp_path / "clip.npy"
    np.save(clip, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    assert main(["predict-frames", r["video"], str(clip), "--output", str(tmp_path / "pred.npy")]) == 0
    assert _json(capsys)["frames"][0] == 2 and np.load(tmp_path / "pred.npy").shape[0] == 2
    frames = tmp_path / "action.npy"
    np.save(frames, np.random.default_rng(1).random((4, 16, 16)).astype(np.float32))
    assert main(["classify-clip", r["action"], str(frames)]) == 0
    rows = _json(capsys)
    assert len(rows) == 1 and rows[0]["label"] in ("left", "right", "up", "down", "clockwise", "counterclockwise",
                                                   "zoom_in", "zoom_out")
    scene = tmp_path / "scene.png"
    write_png(scene, np.random.default_rng(2).random((40, 56)))
    assert main(["caption", r["caption"], str(scene), "--beam", "2", "--attention", str(tmp_path / "att.png")]) == 0
    out = _json(capsys)
    assert isinstance(out["caption"], str) and (tmp_path / "att.png").is_file()


@pytest.mark.parametrize("command", [["segment", "{run}", "{img}"], ["sample", "{run}"],
                                     ["upscale", "{run}", "{img}", "--scale", "2"], ["caption", "{run}", "{img}"],
                                     ["predict-frames", "{run}", "{npy}"], ["classify-clip", "{run}", "{npy}"]])
def test_commands_refuse_another_tasks_run(runs, capsys, tmp_path, command):
    root, r = runs
    img, npy = tmp_path / "x.png", tmp_path / "x.npy"
    write_png(img, np.zeros((16, 16)))
    np.save(npy, np.zeros((3, 16, 16), dtype=np.float32))
    other = r["generate"] if command[0] != "sample" else r["segment"]
    args = [a.format(run=other, img=img, npy=npy) for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"lstmkit {command[0]}: error:" in err and "model" in err, err


# what metrics.json records of how a baseline was trained, beside its test scores; evaluate re-scores only those
_TRAINING = {"name", "spec", "val", "parameters", "parameter_ratio", "epochs", "best_epoch", "stopped_early",
             "train_seconds", "train_cpu_seconds", "cpu_seconds"}


@pytest.mark.parametrize("task", ["segment", "generate", "superres", "video", "action", "volume", "caption"])
def test_evaluate_repeats_the_runs_test_scores(runs, capsys, task):
    run = runs[1][task]
    assert main(["-q", "evaluate", run]) == 0
    printed = _json(capsys)
    saved = json.loads((Path(run) / "metrics.json").read_text())
    assert printed.pop("data") == "the run's test split" and "test" in printed and saved["baselines"]
    assert printed.pop("baselines") == {name: {k: v for k, v in b.items() if k not in _TRAINING}
                                        for name, b in saved["baselines"].items()}
    assert printed == {k: saved[k] for k in printed}  # test (and, for action and volume, per_class, confusion matrix)
    assert main(["evaluate", run, "--data", "x.npz"]) == 2
    assert f"evaluate --data applies to classification runs; a {task!r} run is re-scored on its own test split" \
        in capsys.readouterr().err

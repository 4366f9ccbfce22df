"""Run directories written before the redesign (model.json format 1, the old metrics layout) still
load for evaluate, predict, forecast and export. The fixtures in tests/fixtures/runs_v1 were
written by lstmkit at commit e46d1bf (tiny settings; report and figures left out)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lstmkit.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v1"


@pytest.fixture
def old(tmp_path):
    """A copy of the fixtures (commands may write beside a run, e.g. model.onnx)."""
    shutil.copytree(FIXTURES, tmp_path / "runs")
    return tmp_path / "runs"


def test_the_fixtures_are_format_1(old):
    for task in ("classify", "forecast"):
        assert json.loads((old / task / "model.json").read_text())["format_version"] == 1


def test_an_old_classification_run_evaluates_to_its_metrics_and_predicts(old, tmp_path, capsys):
    from lstmkit.nn.fused_recurrence import recurrence_backend

    saved = json.loads((old / "classify" / "metrics.json").read_text())["test"]
    with recurrence_backend("torch"):  # the recurrence the run was scored with: its numbers, exactly
        assert main(["-q", "evaluate", str(old / "classify")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {k: result[k] for k in saved} == saved
    # the default (the fused CPU kernel where it compiles) sums in another order: float32 rounding
    assert main(["-q", "evaluate", str(old / "classify")]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert {k: fused[k] for k in saved if k != "loss"} == {k: v for k, v in saved.items() if k != "loss"}
    assert fused["loss"] == pytest.approx(saved["loss"], rel=1e-6)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "new.npz", X=rng.random((3, 8, 8)).astype(np.float32))
    assert main(["-q", "predict", str(old / "classify"), str(tmp_path / "new.npz")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("index,class,p_0") and len(rows) == 4


def test_an_old_forecasting_run_forecasts_and_evaluates_to_its_metrics(old, capsys):
    assert main(["-q", "forecast", str(old / "forecast"), "--horizon", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["-q", "predict", str(old / "forecast"), "--horizon", "3"]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(old / "forecast")]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = json.loads((old / "forecast" / "metrics.json").read_text())
    assert {k: result["test"][k] for k in saved["test"]} == saved["test"]  # the new keys (mse) come on top


@pytest.mark.parametrize("task", ["classify", "forecast"])
def test_an_old_run_exports(old, task, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["-q", "export", str(old / task)]) == 0
    assert (old / task / "model.onnx").is_file()


# ------------------------------------------------------------------ one baselines folder layout

BASELINE_DIR_FIXTURES = Path(__file__).parent / "fixtures" / "runs_baseline_dir"
_TRAINING = {"name", "spec", "val", "parameters", "parameter_ratio", "epochs", "best_epoch", "stopped_early",
             "train_seconds", "train_cpu_seconds", "cpu_seconds"}


@pytest.fixture
def old_layout(tmp_path):
    """Runs written by lstmkit at commit 90da6f1 (tiny settings; report, figures and histories left out),
    when segment, action and volume kept their one baseline in ``baseline/`` instead of
    ``baselines/<label>/``."""
    shutil.copytree(BASELINE_DIR_FIXTURES, tmp_path / "runs")
    return tmp_path / "runs"


@pytest.mark.parametrize("task", ["segment", "action"])
def test_a_run_with_its_baseline_in_the_old_folder_evaluates_to_its_metrics(old_layout, task, capsys):
    run = old_layout / task
    assert (run / "baseline" / "model.json").is_file() and not (run / "baselines").exists()
    assert main(["-q", "evaluate", str(run)]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run / "metrics.json").read_text())
    assert printed.pop("data") == "the run's test split"
    _same_scores(printed.pop("baselines"), {name: {k: v for k, v in b.items() if k not in _TRAINING}
                                            for name, b in saved["baselines"].items()})
    assert "test" in printed
    _same_scores(printed, {k: saved[k] for k in printed})


def _same_scores(got, want):
    """Equal, every count and rate exactly; a float32 cross-entropy sum (``loss``) to 1e-6, whose last
    bits follow the process's state (it comes back bit for bit in a fresh process, but not after some
    other runs in the same one, as in the full test session)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (got, want)
        for k in want:
            if k == "loss":
                assert got[k] == pytest.approx(want[k], rel=1e-6)
            else:
                _same_scores(got[k], want[k])
    else:
        assert got == want


def test_a_run_with_its_baseline_in_the_old_folder_predicts(old_layout, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "scene.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    assert main(["-q", "predict", str(old_layout / "segment"), str(image), "--output", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    capsys.readouterr()
    clip = tmp_path / "clip.npy"
    np.save(clip, np.zeros((4, 16, 16), np.float32))
    assert main(["-q", "predict", str(old_layout / "action"), str(clip)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and set(rows[0]) == {"label", "probabilities"}


def test_baseline_dir_reads_the_new_layout_first_and_the_old_one_where_it_is(old_layout, tmp_path):
    from lstmkit.tasks.runs import baseline_dir

    assert baseline_dir(old_layout / "segment", "fcn_segmenter") == old_layout / "segment" / "baseline"
    (tmp_path / "new" / "baselines" / "fcn_segmenter").mkdir(parents=True)
    assert baseline_dir(tmp_path / "new", "fcn_segmenter") == tmp_path / "new" / "baselines" / "fcn_segmenter"
    assert baseline_dir(tmp_path / "none", "x") == tmp_path / "none" / "baselines" / "x"  # where a new run writes it

"""The one run lifecycle (lstmkit.tasks.lifecycle.run_task): every task goes through it,
and a run with test scoring off (a tune trial) never asks any task for its test part's scores."""

import dataclasses
import json

import pytest

from lstmkit.tasks.config import build
from lstmkit.tasks.lifecycle import Run, Trained, run_task
from lstmkit.tasks.registry import get_task, list_tasks


def _tiny(task):
    from tests.tasks import test_segment
    from tests.tasks.test_resume import _vision_configs

    configs = {**_vision_configs(), "segment": test_segment.TINY,
               "classify": {"task": "classify", "data": {"name": "digits"},
                            "model": {"name": "rnn_classifier", "hidden_size": 8},
                            "train": {"epochs": 1, "progress": "off"}},
               "forecast": {"task": "forecast", "data": {"name": "airline", "test_size": 12}, "ensemble": 2,
                            "model": {"hidden_size": 8}, "train": {"epochs": 2, "progress": "off"},
                            "evaluate": {"horizon": 6, "season": 12, "samples": 10, "baselines": ["naive"]}}}
    return configs[task]


def test_every_task_declares_its_steps():
    on = sorted(t.name for t in list_tasks() if t.steps is not None)
    assert on == ["action", "caption", "classify", "forecast", "generate", "segment", "superres", "video", "volume"]
    for task in list_tasks():
        assert task.steps.task == task.name and task.config.__module__ == task.train.__module__


@pytest.mark.parametrize("task", ["segment", "generate", "superres", "video", "action", "volume", "caption",
                                  "forecast"])
def test_a_run_without_test_scoring_never_asks_for_the_test_part(tmp_path, task):
    t = get_task(task)
    parts = []

    def score(run, data, part):
        parts.append(part)
        if part != "val":
            raise AssertionError(f"the {part!r} part was scored")
        return t.steps.score(run, data, part)

    steps = dataclasses.replace(t.steps, score=score)
    metrics = run_task(steps, build(t.config, _tiny(task)), tmp_path / "r", score_test=False)
    assert parts == ["val"] and metrics["test"] is None and metrics["val"]
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert saved["test"] is None and saved["val"] == metrics["val"] and saved["epochs"] >= 1
    assert set(saved["params"]) == {"model", *saved["baselines"]}
    assert (tmp_path / "r" / "model.safetensors").is_file() and (tmp_path / "r" / "history.json").is_file()
    assert not (tmp_path / "r" / "report.md").exists() and not (tmp_path / "r" / "checkpoint").exists()
    assert not (tmp_path / "r" / "forecasts.csv").exists()  # forecasting's test forecasts: never made


def test_a_full_run_scores_val_then_test_once_each(tmp_path):
    t = get_task("video")
    parts = []
    steps = dataclasses.replace(t.steps, score=lambda run, data, part: parts.append(part) or t.steps.score(run, data,
                                                                                                        part))
    metrics = run_task(steps, build(t.config, _tiny("video")), tmp_path / "r")
    assert parts == ["val", "test"] and metrics["test"]["mse"] > 0 and (tmp_path / "r" / "report.md").is_file()


def test_roles_are_named_and_the_model_comes_first(tmp_path):
    run = Run("video", tmp_path, None, tmp_path / "checkpoint", True)
    with pytest.raises(ValueError, match="first role must be 'model'"):
        run.add("bicubic")
    run.add("model", Trained())
    with pytest.raises(ValueError, match="already in this run"):
        run.add("model")
    from lstmkit.tasks.lifecycle import _folder

    assert _folder("model") == "model" and _folder("pixel_cnn") == "baselines/pixel_cnn"
    for bad in ("", "a/b", ".."):
        with pytest.raises(ValueError, match="a role is a name without '/'"):
            _folder(bad)


def test_a_data_error_leaves_no_run_directory(tmp_path):
    """The task's data is prepared before the run directory is started."""
    t = get_task("video")

    def prepare(config):
        raise ValueError("bad data")

    with pytest.raises(ValueError, match="bad data"):
        run_task(dataclasses.replace(t.steps, prepare=prepare), build(t.config, _tiny("video")), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_evaluate_refuses_a_run_that_did_not_finish(tmp_path, capsys):
    """``lstmkit evaluate`` (lifecycle.evaluate_run) re-scores the roles a finished run's metrics.json names;
    an interrupted run has none to name, and the error says how to finish it."""
    from lstmkit.cli import main
    from lstmkit.tasks.config import dump_yaml

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(dump_yaml(_tiny("video")))
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run} has no metrics.json: the run did not finish" in err
    assert f"lstmkit train --resume {run}" in err


def test_evaluate_reads_data_through_the_tasks_given_step(tmp_path):
    """``lstmkit evaluate RUN [--data X]`` is lifecycle.evaluate_run for every task: a task that reads ``--data``
    declares ``Steps.given`` (classification), whose data ``Steps.score`` scores and whose source is printed;
    without it, ``--data`` is refused."""
    from lstmkit.tasks.lifecycle import evaluate_run

    t = get_task("classify")
    metrics = t.train(build(t.config, _tiny("classify")), tmp_path / "r")
    seen = []

    def given(run, data, options):
        seen.append((data, options))
        prepared, _ = t.steps.given(run, None, {})
        return prepared, "given"

    got = evaluate_run(dataclasses.replace(t.steps, given=given), t.config, tmp_path / "r", "other", {"labels": "x"})
    assert seen == [("other", {"labels": "x"})] and got["data"] == "given"
    assert {k: got[k] for k in metrics["test"]} == metrics["test"] and len(got["confusion_matrix"]) == 10
    with pytest.raises(ValueError, match="evaluate --data applies to classification runs; a 'classify' run is re-sc"):
        evaluate_run(dataclasses.replace(t.steps, given=None), t.config, tmp_path / "r", "other")

"""The task registry: one declaration per task, read by the CLI, resume, --devices and export."""

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from lstmkit.cli import build_parser, main
from lstmkit.cli_runs import _EVALUATE_DEFAULTS, _PREDICT_DEFAULTS
from lstmkit.tasks.registry import Task, get_task, list_tasks, register_task, task_of_run

SRC = Path(__file__).resolve().parents[2] / "src" / "lstmkit"
NAMES = ("action", "caption", "classify", "forecast", "generate", "segment", "superres", "video", "volume")


def test_nine_tasks_each_declared_once_in_its_own_module():
    tasks = list_tasks()
    assert tuple(t.name for t in tasks) == NAMES
    for t in tasks:
        assert t.config.__module__ == t.train.__module__, t.name
        assert isinstance(t.summary, str) and t.summary and t.predict_input
        task_field = {f.name: f for f in dataclasses.fields(t.config)}["task"]
        assert task_field.default == t.name, t.name  # a run's config.yaml names its task
    with pytest.raises(ValueError, match=r"unknown task 'clasify'; did you mean 'classify'\?"):
        get_task("clasify")
    with pytest.raises(ValueError, match="task 'classify' is already registered"):
        register_task(Task("classify", "x", object, print, print, "x"))
    with pytest.raises(ValueError, match="task 'newtask' declares no steps: every task runs through the run lifecycle"):
        register_task(Task("newtask", "x", object, print, print, "x"))
    assert "newtask" not in {t.name for t in list_tasks()}


def test_no_other_list_of_task_names_in_the_code():
    """Apart from the registry's module list, no source file spells out several task names in one
    tuple, list, set or dict (the old `_tasks()`, `RESUMABLE`, export builders...)."""
    for path in SRC.rglob("*.py"):
        if path.name == "registry.py" and path.parent.name == "tasks":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                items = node.keys if isinstance(node, ast.Dict) else node.elts
                names = {i.value for i in items if isinstance(i, ast.Constant) and i.value in NAMES}
                assert len(names) < 3, f"{path.relative_to(SRC)}:{node.lineno} lists tasks {sorted(names)}"


def test_tasks_command_prints_the_table(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["task", "resume", "evaluate", "--devices", "export"]
    assert [line.split()[0] for line in lines[1:]] == list(NAMES)
    row = {line.split()[0]: line.split()[1:5] for line in lines[1:]}
    assert row["classify"] == ["yes", "yes", "yes", "yes"] and row["forecast"] == ["yes", "yes", "no", "yes"]
    assert [name for name, r in row.items() if r[1] != "yes"] == []  # every task's runs re-score with evaluate


def test_predict_parser_defaults_are_the_ones_the_option_check_knows():
    parser = build_parser()
    for command, defaults in (("predict", _PREDICT_DEFAULTS), ("evaluate", _EVALUATE_DEFAULTS)):
        args = vars(parser.parse_args([command, "RUN", *(["IN"] if command == "predict" else [])]))
        assert {k: args[k] for k in defaults} == defaults, command


def test_devices_and_resume_read_the_registry(tmp_path, capsys, monkeypatch):
    assert main(["train", "segment/digit-scenes", "--devices", "2", "--out", str(tmp_path / "s")]) == 2
    assert re.search(r"--devices N does not apply to 'segment' runs: it .+ \(see `lstmkit tasks`\)",
                     capsys.readouterr().err)
    from lstmkit.tasks import registry

    # a task that does not resume (none does today): its runs say so, naming those that do
    monkeypatch.setitem(registry._TASKS, "forecast", dataclasses.replace(get_task("forecast"), resume=False))
    (tmp_path / "fc").mkdir()
    (tmp_path / "fc" / "config.yaml").write_text("task: forecast\n")
    assert main(["train", "--resume", str(tmp_path / "fc")]) == 2
    err = capsys.readouterr().err
    assert "is a 'forecast' run, which does not resume" in err
    assert ", ".join(t.name for t in list_tasks() if t.resume) in err


def test_task_of_run_reads_the_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        task_of_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="not an lstmkit run directory: model.safetensors is missing"):
        task_of_run(tmp_path)
    (tmp_path / "config.yaml").write_text("task: video\n")
    assert task_of_run(tmp_path).name == "video"


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    assert main(["-q", "train", "forecast/airline", "--out", str(root / "run"), "--set", "ensemble=1",
                 "--set", "train.epochs=2", "--set", "evaluate.samples=20", "--set", "train.progress=off"]) == 0
    return root / "run"


def test_evaluate_rescores_a_forecasting_run_to_its_metrics(forecast_run, capsys):
    assert main(["-q", "evaluate", str(forecast_run)]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = json.loads((forecast_run / "metrics.json").read_text())
    assert result["test"] == saved["test"] and result["baselines"] == saved["baselines"]


def test_predict_is_forecast_for_a_forecasting_run(forecast_run, capsys, tmp_path):
    assert main(["-q", "predict", str(forecast_run), "--horizon", "12", "--output", str(tmp_path / "p.csv")]) == 0
    assert main(["-q", "forecast", str(forecast_run), "--horizon", "12", "--output", str(tmp_path / "f.csv")]) == 0
    assert (tmp_path / "p.csv").read_text() == (tmp_path / "f.csv").read_text()
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 13
    capsys.readouterr()
    assert main(["predict", str(forecast_run), "--scale", "2"]) == 2  # an option of another task
    assert "--scale does not apply to 'forecast' runs (`lstmkit predict` reads --horizon, --gaps, --output" \
        in capsys.readouterr().err
    assert main(["evaluate", str(forecast_run), "--data", "x.csv"]) == 2
    assert "evaluate --data applies to classification runs" in capsys.readouterr().err


def test_every_model_names_the_task_it_serves(capsys):
    from lstmkit.models import list_models
    from lstmkit.models.registry import check_model_task, model_task

    assert {model_task(m) for m in list_models()} == set(NAMES)  # every model serves a task; every task has models
    for name in NAMES:
        assert main(["models", "--task", name]) == 0
        rows = capsys.readouterr().out.splitlines()
        assert rows and all(r.split()[1] == name for r in rows) and [r.split()[0] for r in rows] == list_models(name)
    with pytest.raises(ValueError, match=r"model.name 'reseg' is a segment model; classify runs take lstm_fcn, "
                                         r"mlstm_fcn, rnn_classifier"):
        check_model_task("reseg", "classify")
    assert main(["train", "classify/digits", "--set", "model.name=reseg", "--out", "never"]) == 2
    assert "is a segment model" in capsys.readouterr().err and not Path("never").exists()

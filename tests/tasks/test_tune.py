"""lstmkit tune: config validation, a tiny study end to end, resume, worker processes, pruning,
and the test split never being touched."""

import argparse
import dataclasses
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("optuna")

import lstmkit.tasks.tune as tune  # noqa: E402
from lstmkit.cli import resolve_config  # noqa: E402
from lstmkit.tasks.classify import ClassifyConfig  # noqa: E402
from lstmkit.tasks.config import build, dump_yaml, load_yaml  # noqa: E402
from lstmkit.cli_runs import add_tune_parser  # noqa: E402
from lstmkit.tasks.tune import TuneConfig, load_tune_config  # noqa: E402

# digits with a tiny budget: 2 epochs of a small unidirectional LSTM (fused path: no variants)
TINY = {"train.epochs": 2, "train.early_stopping": None, "model.hidden_size": 8, "model.bidirectional": False,
        "model.variants": {}}
SEARCH = {"model.hidden_size": {"type": "int", "low": 8, "high": 16},
          "train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True},
          "train.batch_size": {"type": "categorical", "choices": [32, 64]},
          "model.dropout": {"type": "float", "low": 0.0, "high": 0.3}}


def _write(path, **changes):
    data = {"base": "classify/digits", "overrides": TINY, "metric": "val_accuracy", "search": SEARCH,
            "pruner": {"type": "none"}, **changes}
    path.write_text(dump_yaml({k: v for k, v in data.items() if v is not None}))
    return path


class Untouchable:
    """Stands in for the test split: any look at it fails the test."""

    def _fail(self, *args, **kwargs):
        raise AssertionError("the test split was accessed during tuning")

    __len__ = __iter__ = __getitem__ = __array__ = __bool__ = _fail


@pytest.fixture
def no_test_split(monkeypatch):
    """load_data with the real training part and a test part that fails on any access."""
    real = tune.load_data
    calls = []

    def load(cfg):
        calls.append(cfg)
        train, _ = real(cfg)
        return train, (Untouchable(), Untouchable())

    monkeypatch.setattr(tune, "load_data", load)
    return calls


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="lstmkit")
    add_tune_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tune", *map(str, argv)])
    return args.func(args)


def _summary(capsys):
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------------- config


@pytest.mark.parametrize("changes, message", [
    ({"serach": {}}, "unknown key 'serach'; did you mean 'search'"),
    ({"search": None}, "no search section"),
    ({"search": {"model.hiden_size": {"type": "int", "low": 8, "high": 16}}},
     "search key 'model.hiden_size' does not exist in the base config"),
    ({"search": {"data.name": {"type": "categorical", "choices": ["digits"]}}}, "only model.*, train.*"),
    ({"search": {"model.hidden_size": {"type": "int", "low": 16, "high": 8}}},
     r"search.model.hidden_size: low \(16\) must not exceed high \(8\)"),
    ({"search": {"model.hidden_size": {"type": "int", "low": 8, "hgih": 16}}},
     "unknown config key 'search.model.hidden_size.hgih'"),
    ({"search": {"train.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}},
     "log-scale range needs low > 0"),
    ({"search": {"model.hidden_size": {"type": "int", "low": 8.5, "high": 16}}}, "low must be an int"),
    ({"search": {"train.batch_size": {"type": "categorical", "choices": [32, 64], "low": 1}}}, "takes choices only"),
    ({"search": {"train.batch_size": {"type": "categorical", "choices": []}}}, "choices must be a non-empty list"),
    ({"search": {"train.batch_size": {"type": "uniform", "low": 1, "high": 2}}}, "type must be one of"),
    ({"search": {"train.batch_size": {"type": "categorical", "choices": [0, 32]}}},
     "search.train.batch_size: the value 0 makes an invalid config"),
    ({"metric": "accuracy"}, "metric must be one of"),
    ({"pruner": {"type": "medain"}}, "unknown pruner 'medain'; did you mean 'median'"),
    ({"pruner": {"type": "median", "warmup": 3}}, "pruner 'median'"),
    ({"data": {"name": "digits"}}, "not both"),
    ({"base": None}, "no base run"),
    ({"overrides": "train.epochs=2"}, "overrides must be a mapping"),
])
def test_config_errors_name_the_problem(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        load_tune_config(_write(tmp_path / "t.yaml", **changes))


def test_a_base_of_any_task_takes_its_objective():
    c = TuneConfig(base={"task": "forecast", "data": {"name": "airline", "test_size": 12}},
                   search={"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2, "log": True}})
    assert c.metric == "val_mase" and c.direction == "minimize" and c.base["ensemble"] == 1
    with pytest.raises(ValueError, match="search must be a non-empty mapping"):
        TuneConfig(base={"task": "forecast", "data": {"name": "airline", "test_size": 12}}, search={})


def test_packaged_preset_and_inline_base(tmp_path):
    preset = load_tune_config("tune/digits", ["train.epochs=3"], seed=7)
    assert set(preset.search) == {"model.hidden_size", "model.num_layers", "train.lr", "train.batch_size",
                                  "model.dropout"}
    assert preset.base["train"]["epochs"] == 3 and preset.seed == 7 and preset.direction == "maximize"
    inline = _write(tmp_path / "inline.yaml", base=None, overrides=None, task="classify", data={"name": "digits"},
                    model={"name": "rnn_classifier", "hidden_size": 8, "dropout": 0.0}, metric="val_loss")
    c = load_tune_config(inline)
    assert c.direction == "minimize" and c.base["model"]["hidden_size"] == 8
    again = TuneConfig.from_dict(json.loads(json.dumps(c.to_dict())))  # what a worker receives
    assert again == c


# ------------------------------------------------------------------------------- studies


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """3 trials, then 1 more on the same storage (resume); in-process, test split poisoned."""
    root = tmp_path_factory.mktemp("tune")
    cfg = _write(root / "tiny.yaml")
    storage = f"sqlite:///{root / 'study.db'}"
    with pytest.MonkeyPatch.context() as mp:
        real, calls = tune.load_data, []
        mp.setattr(tune, "load_data", lambda c: (calls.append(c), (real(c)[0], (Untouchable(), Untouchable())))[1])
        assert _cli(cfg, "--trials", 3, "--storage", storage, "--out", root / "out") == 0
        first = json.loads((root / "out" / "trials.json").read_text())
        assert _cli(cfg, "--trials", 1, "--storage", storage, "--out", root / "out") == 0
    return root, cfg, first, calls


def test_study_writes_every_output(study):
    root, cfg, first, calls = study
    out = root / "out"
    for name in ("trials.csv", "trials.json", "report.md", "best.yaml", "tune_config.yaml", "optimization_history.png",
                 "param_importances.png"):
        assert (out / name).is_file(), name
    assert calls, "tuning did not go through load_data, so the untouched-test-split check proved nothing"
    assert [r["number"] for r in first] == [0, 1, 2] and all(r["state"] == "COMPLETE" for r in first)
    for r in first:
        assert r["epochs"] == 2 and r["duration_s"] > 0 and 8 <= r["params"]["model.hidden_size"] <= 16
        assert set(r["params"]) == set(SEARCH) and 0 <= r["value"] <= 1
    csv_lines = (out / "trials.csv").read_text().splitlines()
    assert csv_lines[0].startswith("number,state,value,duration_s") and "params_train.lr" in csv_lines[0]
    report = (out / "report.md").read_text()
    for part in ("## Best trial", "## Top trials", "## Search space", "lstmkit train best.yaml",
                 "test split is not used", "optimization_history.png"):
        assert part in report


def test_best_yaml_is_a_runnable_train_config(study):
    root, cfg, _, _ = study
    rows = json.loads((root / "out" / "trials.json").read_text())
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: r["value"])
    config, task = resolve_config(str(root / "out" / "best.yaml"), [])
    assert task == "classify" and isinstance(config, ClassifyConfig)
    assert config == load_tune_config(cfg).apply(best["params"])
    assert config.model["hidden_size"] == best["params"]["model.hidden_size"]
    assert config.train.lr == best["params"]["train.lr"] and config.train.epochs == 2
    assert config.model["variants"] == {}  # the base overrides are kept
    assert build(ClassifyConfig, load_yaml(root / "out" / "best.yaml")) == config  # fully resolved


def test_rerun_resumes_the_study(study):
    root, _, first, _ = study
    rows = json.loads((root / "out" / "trials.json").read_text())
    assert [r["number"] for r in rows] == [0, 1, 2, 3]
    assert [r["params"] for r in rows[:3]] == [r["params"] for r in first]  # kept, not started over
    assert [r["value"] for r in rows[:3]] == [r["value"] for r in first]
    # the resumed sampler is seeded past the trials so far: it does not replay the first points
    assert rows[3]["params"] not in [r["params"] for r in first]


def test_workers_share_the_trials(tmp_path, capsys):
    cfg = _write(tmp_path / "w.yaml")
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    assert _cli(cfg, "--trials", 3, "--workers", 2, "--storage", storage, "--out", tmp_path / "out",
                "--study-name", "shared") == 0
    summary = _summary(capsys)
    assert summary["trials"] == 3 and summary["complete"] == 3 and summary["study"] == "shared"
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    pids = {r["pid"] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids  # two separate worker processes
    assert len({json.dumps(r["params"]) for r in rows}) == 3  # workers sample differently
    import optuna

    assert len(optuna.load_study(study_name="shared", storage=storage).trials) == 3


def test_pruned_trials_and_default_storage(tmp_path, capsys, no_test_split):
    # val_accuracy never reaches 1.01: the threshold pruner stops every trial after its first epoch
    cfg = _write(tmp_path / "p.yaml", pruner={"type": "threshold", "lower": 1.01})
    assert _cli(cfg, "--trials", 2, "--out", tmp_path / "out", "--seed", 3) == 0
    summary = _summary(capsys)
    assert summary["pruned"] == 2 and summary["complete"] == 0 and summary["best"] is None
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    assert all(r["state"] == "PRUNED" and r["pruned_at_epoch"] == 1 and r["epochs"] == 1 for r in rows)
    assert (tmp_path / "out" / "study.db").is_file()  # the default storage lives in the output directory
    assert not (tmp_path / "out" / "best.yaml").exists()
    assert "No trial completed" in (tmp_path / "out" / "report.md").read_text()
    assert no_test_split


def test_the_poisoned_test_split_would_be_noticed():
    with pytest.raises(AssertionError, match="test split was accessed"):
        len(Untouchable())


def test_out_directory_of_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an lstmkit tune output"):
        tune.run_tune(load_tune_config(_write(tmp_path / "t.yaml")), tmp_path, 1)


# ------------------------------------------------------------------------ every task


TASK_PRESETS = sorted(f"{p.parent.name}/{p.stem}" for p in (Path(tune.__file__).parents[1] / "configs").glob("*/*.yaml")
                      if p.parent.name != "tune")
FORECAST_TINY = ["train.epochs=2", "ensemble=1", "evaluate.samples=20"]
VIDEO_TINY = ["data.train_clips=12", "data.test_clips=4", "data.size=16", "data.glyph_size=8", "data.input_frames=3",
              "data.output_frames=2", "data.strips=2", "model.patch=4", "model.hidden_channels=[4]",
              "model.peephole=channel", "train.epochs=2", "train.val_fraction=0.25"]


def test_every_task_declares_an_objective_and_a_default_space():
    from lstmkit.tasks.registry import list_tasks

    for task in list_tasks():
        assert task.tune is not None and task.tune.objective in task.tune.metrics, task.name
        for key, spec in task.tune.space.items():
            build(tune.SearchParam, spec, key)  # the format of a tune file's search section


@pytest.mark.parametrize("preset", TASK_PRESETS)
def test_every_training_preset_is_a_search_with_its_tasks_defaults(preset):
    c = load_tune_config(preset)
    task = c.task
    assert task.name == resolve_config(preset, [])[1] and c.metric == task.tune.objective
    assert c.search and set(c.search) <= set(task.tune.space)  # keys the preset lacks are left out
    low = {k: p.endpoints()[0] for k, p in c.search.items()}
    assert c.apply(low) is not None and c.apply(low, trial=True) is not None  # also with the trial-only overrides


def test_a_tune_file_overrides_the_tasks_space_and_metric(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(dump_yaml({"base": "forecast/sunspots", "metric": "val_mae",
                               "search": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2}}}))
    c = load_tune_config(path, ["train.epochs=3"])
    assert set(c.search) == {"train.lr"} and c.metric == "val_mae" and c.direction == "minimize"
    assert c.base["train"]["epochs"] == 3
    default = load_tune_config("forecast/sunspots", ["train.epochs=3"], seed=4)
    assert default.metric == "val_mase" and "model.hidden_size" in default.search and default.seed == 4
    assert "model.num_layers" not in default.search  # the preset's model section does not name it


def test_an_unknown_objective_is_a_clear_error(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(dump_yaml({"base": "video/moving-digits", "metric": "val_accuracy",
                               "search": {"train.lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-2}}}))
    with pytest.raises(ValueError, match=r"metric must be one of 'val_mse', 'val_loss' \(the validation metrics a "
                                         r"'video' run reports\), got 'val_accuracy'"):
        load_tune_config(path)
    with pytest.raises(ValueError, match=r"the run reports no val_mase on validation \(its val block holds val_loss\)"):
        tune.validation_value({"val": {"loss": 0.3}, "test": {"mase": 1.0}}, "val_mase")
    assert tune.validation_value({"val": {"greedy": {"bleu4": 0.5}}}, "val_greedy.bleu4") == 0.5


def test_workers_are_refused_for_other_tasks(tmp_path):
    with pytest.raises(ValueError, match="worker processes share classification studies only"):
        tune.run_tune(load_tune_config("forecast/sunspots"), tmp_path / "out", 2, workers=2)


def _validation_only(monkeypatch, name):
    """Each trial's run, with every block of the metrics it returns but val, epochs and best_epoch
    replaced by one that fails on any look (the objective reads validation only); it also fails if a
    trial ever asks for its task's test part's scores."""
    from lstmkit.tasks import registry

    task = registry.get_task(name)
    real = tune.trial_run

    def trial_run(task, config, out_dir):
        metrics = real(task, config, out_dir)
        return {k: v if k in ("val", "epochs", "best_epoch") else Untouchable() for k, v in metrics.items()}

    monkeypatch.setattr(tune, "trial_run", trial_run)

    def score(run, data, part):
        if part != "val":
            raise AssertionError(f"a tune trial scored the {part!r} part")
        return task.steps.score(run, data, part)

    monkeypatch.setitem(registry._TASKS, name, dataclasses.replace(
        task, steps=dataclasses.replace(task.steps, score=score)))


@pytest.mark.parametrize("preset, tiny, metric", [("forecast/sunspots", FORECAST_TINY, "mase"),
                                                  ("video/moving-digits", VIDEO_TINY, "mse")])
def test_a_training_preset_tunes_through_the_cli(preset, tiny, metric, tmp_path, capsys, monkeypatch):
    from lstmkit.cli import main

    _validation_only(monkeypatch, preset.split("/")[0])
    out = tmp_path / "out"
    argv = ["tune", preset, "--trials", "2", "--out", str(out), *(a for s in tiny for a in ("--set", s))]
    assert main(argv) == 0
    summary = _summary(capsys)
    assert summary["complete"] == 2 and summary["metric"] == f"val_{metric}" and summary["direction"] == "minimize"
    rows = json.loads((out / "trials.json").read_text())
    vals = [json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["val"][metric] for r in rows]
    assert [r["value"] for r in rows] == pytest.approx(vals)
    assert summary["best"]["number"] == rows[vals.index(min(vals))]["number"]  # chosen on validation
    config, task = resolve_config(str(out / "best.yaml"), [])
    assert task == preset.split("/")[0] and config == load_tune_config(preset, tiny).apply(summary["best"]["params"])
    report = (out / "report.md").read_text()
    # every task is on the run lifecycle: its trials never score the test part at all
    assert "test part never scored" in report
    assert all(json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["test"] is None for r in rows)

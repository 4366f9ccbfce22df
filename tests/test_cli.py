"""The CLI contract: train / evaluate / predict / datasets / models, and errors as exit code 2."""

import csv
import json

import numpy as np
import pytest
import yaml

from lstmkit.cli import main

from .tasks.helpers import waves, write_npz


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_npz(root / "train.npz", 150, seed=0)
    write_npz(root / "test.npz", 60, seed=1)
    (root / "cfg.yaml").write_text(yaml.safe_dump({
        "task": "classify",
        "data": {"train": str(root / "train.npz"), "test": str(root / "test.npz")},
        "model": {"name": "rnn_classifier", "hidden_size": 8},
        "train": {"epochs": 2, "progress": "off"},
    }))
    assert main(["-q", "train", str(root / "cfg.yaml"), "--out", str(root / "run"), "--set", "train.epochs=6",
                 "--set", "train.lr=1e-2", "--set", "model.pooling=max"]) == 0
    return root


def test_train_applies_overrides_and_writes_resolved_config(trained, capsys):
    cfg = yaml.safe_load((trained / "run" / "config.yaml").read_text())
    assert cfg["train"]["epochs"] == 6 and cfg["train"]["lr"] == 0.01 and cfg["model"]["pooling"] == "max"
    assert cfg["train"]["batch_size"] == 64  # defaults are written out too
    assert json.loads((trained / "run" / "metrics.json").read_text())["epochs"] == 6


def test_evaluate_defaults_to_the_runs_test_split(trained, capsys):
    capsys.readouterr()
    assert main(["-q", "evaluate", str(trained / "run"), "--output", str(trained / "eval.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "run" / "metrics.json").read_text())
    assert out["accuracy"] == pytest.approx(saved["test"]["accuracy"])
    assert out["n"] == 60 and len(out["confusion_matrix"]) == 3
    assert json.loads((trained / "eval.json").read_text()) == out
    assert main(["-q", "evaluate", str(trained / "run"), "--data", str(trained / "train.npz")]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 150


def test_predict_writes_classes_and_probabilities(trained, capsys):
    X, lengths, _ = waves(7, seed=3)
    np.savez(trained / "new.npz", X=X, lengths=lengths)  # unlabelled
    assert main(["-q", "predict", str(trained / "run"), str(trained / "new.npz"), "--output", str(trained / "p.csv")]) == 0
    rows = list(csv.reader((trained / "p.csv").read_text().splitlines()))
    assert rows[0] == ["index", "class", "p_high", "p_low", "p_mid"] and len(rows) == 8
    for r in rows[1:]:
        probs = [float(v) for v in r[2:]]
        assert abs(sum(probs) - 1) < 1e-5 and r[1] == ["high", "low", "mid"][int(np.argmax(probs))]
    assert main(["-q", "predict", str(trained / "run"), str(trained / "new.npz"), "--output", str(trained / "p.json")]) == 0
    js = json.loads((trained / "p.json").read_text())
    assert [j["class"] for j in js] == [r[1] for r in rows[1:]]
    capsys.readouterr()
    assert main(["-q", "predict", str(trained / "run"), str(trained / "new.npz")]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("index,class")


def test_predict_feature_mismatch_is_a_clear_error(trained, capsys):
    X, lengths, _ = waves(4, seed=3, features=3)
    np.savez(trained / "wide.npz", X=X, lengths=lengths)
    assert main(["-q", "predict", str(trained / "run"), str(trained / "wide.npz")]) == 2
    assert "sample 0 has 3 features per step but the model was trained on 2" in capsys.readouterr().err


def test_listing_commands(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "mnist1d" in out and "GunPoint" in out and "JapaneseVowels" in out
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("rnn_classifier", "lstm_fcn", "mlstm_fcn"):
        assert name in out


@pytest.mark.parametrize("args, message", [
    (["train", "nope.yaml"], "config nope.yaml does not exist"),
    (["train", "classify/digits", "--set", "model.name=lstm_fnc", "--out", "{tmp}/x"], "unknown model 'lstm_fnc'"),
    (["train", "classify/digits", "--set", "data.name=digitz", "--out", "{tmp}/x"], "unknown dataset 'digitz'"),
    (["train", "classify/digits", "--set", "train.lr=-1", "--out", "{tmp}/x"], "lr must be a positive number"),
    (["train", "classify/digits", "--set", "model.hiden_size=2", "--out", "{tmp}/x"],
     "model.hiden_size is not an argument of model 'rnn_classifier'; did you mean model.hidden_size"),
    (["train", "forecast/airline", "--set", "model.hiden_size=2", "--out", "{tmp}/x"],
     "model.hiden_size is not an argument of model 'lstm_forecaster'; did you mean model.hidden_size?"),
    (["train", "classify/digits", "--set", "train.lr", "--out", "{tmp}/x"], "must look like key.sub=value"),
    (["evaluate", "{tmp}"], "model.safetensors is missing"),
])
def test_errors_exit_2_with_a_message(args, message, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    assert message in capsys.readouterr().err


def test_out_refuses_a_foreign_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", "classify/digits", "--out", str(tmp_path)]) == 2
    assert "not an lstmkit run" in capsys.readouterr().err


def test_demo_runs_the_digits_preset_and_writes_its_report(tmp_path, capsys):
    assert main(["-q", "demo", "--out", str(tmp_path / "demo"), "--set", "train.epochs=15"]) == 0
    out = capsys.readouterr().out
    assert "Parity with torch.nn.LSTM" in out and "test accuracy" in out and out.rstrip().endswith("OK")
    assert (tmp_path / "demo" / "report.md").is_file()


def test_text_run_evaluates_and_predicts_csv_files(tmp_path, capsys):
    from .tasks.helpers import write_reviews

    write_reviews(tmp_path / "train.csv", 200, seed=0)
    write_reviews(tmp_path / "test.csv", 60, seed=1)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({
        "data": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"), "format": "text"},
        "model": {"name": "rnn_classifier", "hidden_size": 16, "input_size": 16, "pooling": "max"},
        "train": {"epochs": 15, "lr": 0.01, "progress": "off"}}))
    assert main(["-q", "train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "test.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 60
    (tmp_path / "new.csv").write_text('text\n"Great fun, I love it!"\n"Dull, boring and awful."\n')
    assert main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "new.csv")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "index,class,p_neg,p_pos" and rows[1].split(",")[1] == "pos" and rows[2].split(",")[1] == "neg"


def test_cli_formats_are_the_configs_formats():
    import typing

    from lstmkit.cli_runs import FORMATS
    from lstmkit.tasks.classify import Format

    assert FORMATS == typing.get_args(Format)


# ------------------------------------------------------------------ overwriting, outputs, -q


def _tiny_run(root, name="run", *extra):
    return main(["-q", "train", "classify/digits", "--out", str(root / name), "--set", "train.epochs=1",
                 "--set", "model.hidden_size=4", "--set", "train.progress=off", *extra])


def test_train_refuses_a_finished_run_unless_overwrite_which_clears_it(tmp_path, capsys):
    assert _tiny_run(tmp_path) == 0
    run = tmp_path / "run"
    (run / "model.onnx").write_bytes(b"an export of the old run")
    before = (run / "metrics.json").read_bytes()
    assert _tiny_run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "holds a finished run" in err and "--overwrite" in err
    assert (run / "metrics.json").read_bytes() == before and (run / "model.onnx").exists()  # untouched
    assert _tiny_run(tmp_path, "run", "--overwrite") == 0
    assert not (run / "model.onnx").exists()  # the old run's files went with it
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1


def test_overwrite_never_deletes_a_directory_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", "classify/digits", "--out", str(tmp_path), "--overwrite"]) == 2
    assert "not an lstmkit run" in capsys.readouterr().err and (tmp_path / "notes.txt").read_text() == "mine"


def test_interrupted_run_points_at_resume_and_overwrite_starts_it_over(tmp_path):
    from lstmkit.tasks.runs import claim_run_dir

    run = tmp_path / "run"
    (run / "checkpoint" / "epoch-000001").mkdir(parents=True)
    (run / "checkpoint" / "latest.json").write_text("{}")
    (run / "config.yaml").write_text("task: classify\n")
    with pytest.raises(ValueError, match=r"holds an interrupted run: continue it with `lstmkit train --resume "):
        claim_run_dir(run)
    claim_run_dir(run, overwrite=True)
    assert run.is_dir() and not any(run.iterdir())


@pytest.mark.parametrize("flag", ["--output", "--attention"])
def test_output_in_a_missing_directory_names_the_users_path(tmp_path, capsys, flag):
    target = tmp_path / "missing_dir" / "p.csv"
    args = (["predict", str(tmp_path), str(tmp_path / "x.npz"), "--output", str(target)] if flag == "--output" else
            ["caption", str(tmp_path), str(tmp_path / "x.png"), "--attention", str(target)])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{flag} {target}: directory {target.parent} does not exist" in err
    assert ".tmp" not in err and "model.safetensors" not in err  # checked before any work, no internal file named


def test_quiet_is_accepted_after_the_subcommand(tmp_path, capsys):
    for argv in (["-q", "train", "classify/digits"], ["train", "-q", "classify/digits"]):
        assert main([*argv, "--out", str(tmp_path / "r"), "--set", "train.epochs=1", "--set", "model.hidden_size=4",
                     "--set", "train.progress=log", "--overwrite"]) == 0
        err = capsys.readouterr().err
        assert "epoch 1/1" not in err, argv  # info lines suppressed either way
    from lstmkit.cli import _add_quiet_everywhere, build_parser

    parser = build_parser()
    _add_quiet_everywhere(parser)
    assert parser.parse_args(["datasets", "-q"]).quiet is True
    assert parser.parse_args(["-q", "datasets"]).quiet is True  # a subparser does not reset it
    assert parser.parse_args(["datasets"]).quiet is False
    assert parser.parse_args(["bench", "speed", "-q"]).quiet is True  # nested subcommands too


@pytest.mark.parametrize("preset,loader", [("classify/digits", "lstmkit.tasks.classify.load_data"),
                                           ("forecast/airline", "lstmkit.tasks.forecast.load_forecast_series")])
def test_model_keys_are_checked_before_any_data_loads(preset, loader, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(loader, never)
    assert main(["train", preset, "--set", "model.hiden_size=2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "model.hiden_size is not an argument" in err and "Traceback" not in err and not (tmp_path / "x").exists()


# ------------------------------------------------------------------ config paths and the report


def test_relative_data_paths_are_saved_absolute_and_the_reproduce_command_works_anywhere(tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    write_npz(work / "train.npz", 80, seed=0)
    write_npz(work / "test.npz", 30, seed=1)
    monkeypatch.chdir(work)
    args = ["--set", "train.epochs=1", "--set", "model.hidden_size=4", "--set", "train.progress=off"]
    assert main(["-q", "train", "classify/digits", "--set", "data.name=null", "--set", "data.train=train.npz",
                 "--set", "data.test=test.npz", "--out", "run", *args]) == 0
    saved = yaml.safe_load((work / "run" / "config.yaml").read_text())["data"]
    assert saved["train"] == str(work / "train.npz") and saved["test"] == str(work / "test.npz")
    report = (work / "run" / "report.md").read_text()
    command = next(line for line in report.splitlines() if line.startswith("lstmkit train "))
    assert command == f"lstmkit train {work / 'run' / 'config.yaml'} --out NEW_RUN_DIR"
    monkeypatch.chdir(elsewhere)  # the command as printed, from another directory
    assert main(["-q", *command.split()[1:-1], str(elsewhere / "again")]) == 0
    assert json.loads((elsewhere / "again" / "metrics.json").read_text())["n_test"] == 30


@pytest.mark.parametrize("data,expected", [
    ({"name": "gunpoint"}, "on the official test split of GunPoint (UCR/UEA archive) (150 samples)"),
    ({"name": "ucr:ItalyPowerDemand"}, "on the official test split of ItalyPowerDemand (UCR/UEA archive)"),
    ({"name": "digits"}, "on the fixed test split of digits (stratified 25%, seed 0: scikit-learn defines no "
                         "official one)"),
    ({"train": "/d/train.npz", "test": "/d/mine.npz"}, "on the test file `/d/mine.npz` (150 samples)"),
    ({"train": "/d/train.npz", "test": None, "test_fraction": 0.25, "split_seed": 3},
     "on a stratified 25% test split carved from `/d/train.npz` (seed 3; 150 samples)"),
])
def test_report_names_the_test_split_it_scored(data, expected):
    from lstmkit.data.datasets import describe_test_split

    text = "on " + describe_test_split(data, 150)
    assert text.startswith(expected)
    assert ("official test split" in text) == ("name" in data and data["name"] != "digits")


def test_train_names_a_training_file_with_one_class(tmp_path, capsys):
    X, lengths, _ = waves(20)
    np.savez(tmp_path / "one.npz", X=X, lengths=lengths, y=np.full(20, "a"))
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"data": {"train": str(tmp_path / "one.npz")},
                                                       "train": {"epochs": 1, "progress": "off"}}))
    assert main(["-q", "train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert f"{tmp_path / 'one.npz'}: labels hold only one class ('a'); classification needs at least 2" in \
        capsys.readouterr().err


def test_predict_reads_aeon_layout_npz_with_layout_ndt(trained, capsys):
    X, lengths, _ = waves(5, seed=4)
    np.savez(trained / "ntd.npz", X=X)
    np.savez(trained / "ndt.npz", X=X.transpose(0, 2, 1))
    capsys.readouterr()
    assert main(["-q", "predict", str(trained / "run"), str(trained / "ntd.npz")]) == 0
    expected = capsys.readouterr().out
    assert main(["-q", "predict", str(trained / "run"), str(trained / "ndt.npz"), "--layout", "ndt"]) == 0
    assert capsys.readouterr().out == expected
    (trained / "one.csv").write_text("1,2,3\n")
    assert main(["-q", "predict", str(trained / "run"), str(trained / "one.csv"), "--layout", "ndt"]) == 2
    assert "one.csv: layout='ndt' applies to npz files; this one is read as csv" in capsys.readouterr().err
    assert main(["-q", "evaluate", str(trained / "run"), "--layout", "ndt"]) == 2  # the run's split: nothing to lay out
    assert "--layout, --id-column and --time-column describe a --data FILE" in capsys.readouterr().err


def test_long_format_trains_evaluates_and_predicts_by_id(tmp_path, capsys):
    from .tasks.helpers import write_long

    write_long(tmp_path / "train.csv", 60, seed=0)
    write_long(tmp_path / "test.csv", 12, seed=1)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({
        "data": {"train": str(tmp_path / "train.csv"), "test": str(tmp_path / "test.csv"), "format": "long",
                 "id_column": "id", "time_column": "time"},
        "model": {"name": "rnn_classifier", "hidden_size": 8}, "train": {"epochs": 2, "progress": "off"}}))
    assert main(["-q", "train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n_test"] == 12
    saved = json.loads((tmp_path / "run" / "model.json").read_text())["meta"]["data"]
    assert saved["feature_columns"] == ["ch1", "ch2"]  # resolved from the training file, read by name later
    capsys.readouterr()
    assert main(["-q", "evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "test.csv"), "--format", "long"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 12
    assert main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "test.csv"), "--format", "long"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["index", "id", "class", "p_high", "p_low", "p_mid"] and [r[1] for r in rows[1:]] == \
        [f"s{i}" for i in range(12)]
    # unlabelled, columns in another order, other names given on the command line: the same predictions
    write_long(tmp_path / "new.csv", 12, seed=1, columns=("ch2", "id", "ch1", "time"), label=False)
    text = (tmp_path / "new.csv").read_text()
    (tmp_path / "new.csv").write_text(text.replace("ch2,id,ch1,time\n", "ch2,id,ch1,step\n", 1))
    assert main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "new.csv"), "--format", "long",
                 "--time-column", "step"]) == 0
    assert list(csv.reader(capsys.readouterr().out.splitlines())) == rows
    assert main(["-q", "predict", str(tmp_path / "run"), str(tmp_path / "test.csv")]) == 2
    assert "column 'id' belongs to a long-format file" in capsys.readouterr().err

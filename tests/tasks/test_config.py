from pathlib import Path

import pytest

from lstmkit.tasks.classify import ClassifyConfig
from lstmkit.tasks.config import apply_overrides, build, dump_yaml, load_yaml, to_plain
from lstmkit.tasks.trainer import TrainConfig


def test_overrides_parse_yaml_values_and_create_sections():
    out = apply_overrides({"train": {"lr": 0.1}}, ["train.lr=3e-3", "train.clip_norm=null", "model.variants.zoneout=[0.1, 0.2]",
                                                   "data.name=ucr:GunPoint", "train.deterministic=true"])
    assert out["train"] == {"lr": 0.003, "clip_norm": None, "deterministic": True}
    assert out["model"] == {"variants": {"zoneout": [0.1, 0.2]}}
    assert out["data"]["name"] == "ucr:GunPoint"


def test_yaml_1_2_scalars(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: 1e-3\nb: off\nc: yes\nd: true\ne: 2\nf: .5\ng: 1_000\n")
    assert load_yaml(path) == {"a": 0.001, "b": "off", "c": "yes", "d": True, "e": 2, "f": 0.5, "g": 1000}


def test_override_errors():
    with pytest.raises(ValueError, match="must look like key.sub=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(ValueError, match="'lr' is a value, not a section"):
        apply_overrides({"train": {"lr": 1}}, ["train.lr.x=2"])


def test_unknown_keys_suggest_close_names():
    with pytest.raises(ValueError, match=r"unknown config key 'train.learning_rate'.*valid: epochs"):
        build(ClassifyConfig, {"data": {"name": "digits"}, "train": {"learning_rate": 1}})
    with pytest.raises(ValueError, match=r"'train.epoch'; did you mean 'epochs'"):
        build(ClassifyConfig, {"data": {"name": "digits"}, "train": {"epoch": 1}})
    with pytest.raises(ValueError, match="data needs exactly one of name"):
        build(ClassifyConfig, {"data": {}})


def test_values_are_validated_where_they_are_set():
    with pytest.raises(ValueError, match="lr must be a positive number"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="monitor must be one of"):
        TrainConfig(monitor="accuracy")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 1.5"):
        TrainConfig(batch_size=1.5)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(device="tpu")


def test_resolved_config_round_trips(tmp_path):
    cfg = build(ClassifyConfig, {"data": {"name": "digits"}, "model": {"name": "rnn_classifier", "hidden_size": 8},
                                 "train": {"epochs": 3, "clip_norm": None}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(to_plain(cfg)))
    again = build(ClassifyConfig, load_yaml(path))
    assert again == cfg


def test_load_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_yaml(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="must hold a YAML mapping"):
        load_yaml(bad)
    with pytest.raises(FileNotFoundError):
        load_yaml(tmp_path / "missing.yaml")
    bad.write_text("!!python/object:os.system {}\n")
    with pytest.raises(ValueError, match="not valid YAML"):  # safe loader: no object construction
        load_yaml(bad)


def test_a_data_file_override_replaces_the_dataset_of_a_preset(tmp_path, caplog, monkeypatch):
    """`lstmkit train forecast/airline --set data.path=my.csv --set data.targets=[y]` needs no
    `--set data.name=null`: the override layer drops what the file names the dataset by, and says so."""
    import logging

    from lstmkit.cli import resolve_config

    monkeypatch.setattr(logging.getLogger("lstmkit"), "propagate", True)  # the CLI's main() turns it off
    caplog.set_level(logging.INFO, logger="lstmkit.tasks.config")
    config, task = resolve_config("forecast/airline", ["data.path=my.csv", "data.targets=[y]"])
    assert task == "forecast" and config.data.name is None and config.data.path == str(Path.cwd() / "my.csv")
    assert config.data.test_start == "1958-01" and config.evaluate.horizon == 36  # the rest of the preset stays
    assert "the dataset is replaced: data.path='my.csv' is given, so data.name='airline' from forecast/airline is " \
           "dropped" in caplog.text
    config, _ = resolve_config("forecast/airline", ["data.path=my.csv", "data.targets=[y]", "data.test_size=24"])
    assert config.data.test_start is None and config.data.test_size == 24
    assert "the test split is replaced" in caplog.text
    with pytest.raises(ValueError, match="exactly one of 'name'"):  # set both on purpose: the conflict is reported
        resolve_config("forecast/airline", ["data.path=my.csv", "data.targets=[y]", "data.name=airline"])

    config, task = resolve_config("classify/digits", ["data.train=mine.csv", "data.test=mine_test.csv"])
    assert task == "classify" and config.data.name is None and config.data.train == str(Path.cwd() / "mine.csv")
    path = tmp_path / "ucr.yaml"
    path.write_text("task: classify\ndata: {name: 'ucr:Wafer', download: true}\n")
    config, _ = resolve_config(str(path), ["data.train=mine.npz"])
    assert config.data.name is None and config.data.download is False  # dataset-only keys go with the name
    assert f"data.name='ucr:Wafer' from {path} is dropped" in caplog.text
    config, _ = resolve_config(str(path), [])  # without an override the file is read as written
    assert config.data.name == "ucr:Wafer" and config.data.download is True

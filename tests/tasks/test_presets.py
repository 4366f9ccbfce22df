"""Every packaged preset builds and runs one epoch on its real data (the full runs are slow tests)."""

from importlib import resources

import pytest

from lstmkit.cli import resolve_config
from lstmkit.tasks.classify import train_classifier

PRESETS = sorted(p.name.removesuffix(".yaml") for p in (resources.files("lstmkit") / "configs" / "classify").iterdir()
                 if p.name.endswith(".yaml"))


def test_the_issue_presets_exist():
    assert {"digits", "mnist1d", "gunpoint", "italypower", "basicmotions", "japanesevowels", "ucr"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_one_epoch(name, tmp_path):
    config, task = resolve_config(f"classify/{name}", ["train.epochs=1", "train.progress=off"])
    assert task == "classify"
    metrics = train_classifier(config, tmp_path)
    assert metrics["epochs"] == 1 and 0 <= metrics["test"]["accuracy"] <= 1
    assert (tmp_path / "report.md").is_file()


def test_ucr_preset_takes_any_shipped_dataset(tmp_path):
    config, _ = resolve_config("classify/ucr", ["data.name=ucr:ArrowHead", "train.epochs=1", "train.progress=off"])
    assert train_classifier(config, tmp_path)["n_test"] == 175  # ArrowHead: 36 train / 175 test

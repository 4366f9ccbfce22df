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


@pytest.mark.parametrize("name", ["airline", "sunspots"])
def test_forecast_preset_runs_briefly(name, tmp_path):
    from lstmkit.tasks.forecast import train_forecaster

    config, task = resolve_config(f"forecast/{name}", ["train.epochs=2", "train.progress=off", "ensemble=1",
                                                       "evaluate.samples=20"])
    assert task == "forecast"
    metrics = train_forecaster(config, tmp_path)
    assert {"mape", "smape", "mase", "owa", "coverage"} <= set(metrics["test"])
    if name == "airline":  # the issue's protocol: train through 1957-12, 36 months of 1958-1960 from one origin
        assert metrics["test_start"] == "1958-01-01" and metrics["test_end"] == "1960-12-01"
        assert metrics["test"]["n_forecasts"] == 1 and metrics["horizon"] == 36
        assert metrics["baselines"]["naive2(12)"]["mape"] == pytest.approx(12.95, abs=0.01)
    else:  # one-step-ahead over 1921-1987
        assert metrics["test_start"] == "1921-01-01" and metrics["test_end"] == "1987-01-01"
        assert metrics["test"]["n_forecasts"] == 67
        assert metrics["baselines"]["naive"]["mae"] == pytest.approx(22.97, abs=0.01)

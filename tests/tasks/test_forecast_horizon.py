"""A forecast does not depend on the horizon asked: the first k steps of a horizon-N forecast
(points and interval bounds) are the horizon-k forecast, for every head and likelihood, via
Forecaster.predict, a ForecastStream and `lstmkit forecast`. Daily data, so the calendar features
(day of week, day of year) of the forecast window differ from step to step: a model that read
anything but the true window (e.g. a repeated last row) would move."""

import csv
import json

import numpy as np
import pytest
import torch
import yaml

from lstmkit.cli import main
from lstmkit.data.series import Series
from lstmkit.data.transforms import SeriesTransform
from lstmkit.models import create_model
from lstmkit.tasks.forecast import Forecaster, load_forecaster

N = 7  # the trained horizon
HEADER = ["time", "sales", "promo"]


def _daily(n, seed=0):
    rng = np.random.default_rng(seed)
    times = np.datetime64("2023-01-02") + np.arange(n)
    promo = (rng.random(n) < 0.3).astype(float)
    sales = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 7) + 8 * promo + 2 * rng.standard_normal(n)
    return times, sales, promo


def _input_csv(path, times, sales, promo, n_history):
    """History rows, then the forecast window: empty targets, the planned promo."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i, t in enumerate(times):
            w.writerow([str(t), f"{sales[i]:.4f}" if i < n_history else "", int(promo[i])])
    return path


def _untrained(head, likelihood, history):
    """A forecaster with random weights (no training needed to read the window): daily step, the
    day-of-week/day-of-year calendar, one future covariate, a differencing transform."""
    torch.manual_seed(1)
    spec = {"name": "lstm_forecaster", "head": head, "likelihood": likelihood, "hidden_size": 6, "num_targets": 1,
            "horizon": N, "past_covariates": 0, "future_covariates": 1 + 2 * 2}
    model = create_model(**spec)
    tf = SeriesTransform(seasonal_period=7, difference=True).fit(history[:, :1])
    return Forecaster([model], spec, targets=["sales"], past=[], future=["promo"],
                      calendar=["dayofweek", "dayofyear"], step="1D", transforms={"shop": tf},
                      cov_mean=np.array([0.3]), cov_std=np.array([0.46]), level=0.8, samples=40, seed=3)


def _cli_forecast(run, horizon, input_csv, out, capsys):
    assert main(["-q", "forecast", str(run), "--horizon", str(horizon), "--input", str(input_csv),
                 "--output", str(out)]) == 0, capsys.readouterr().err
    with open(out) as f:
        return [(r["time"], float(r["forecast"]), r["lower"], r["upper"]) for r in csv.DictReader(f)]


def _same_first_steps(full, part, k, intervals):
    np.testing.assert_array_equal(full.times[:k], part.times)
    np.testing.assert_array_equal(full.point[:k], part.point)
    if intervals:
        np.testing.assert_array_equal(full.lower[:k], part.lower)
        np.testing.assert_array_equal(full.upper[:k], part.upper)
    else:
        assert full.lower is None and part.lower is None


@pytest.mark.parametrize("likelihood", ["mse", "gaussian", "quantile"])
@pytest.mark.parametrize("head", ["direct", "recursive", "seq2seq"])
def test_the_first_steps_do_not_depend_on_the_horizon_asked(head, likelihood, tmp_path, capsys):
    times, sales, promo = _daily(80 + N)
    values = np.stack([sales, promo], 1)
    history = Series(values[:80], times[:80], ("sales", "promo"), "shop")
    fc = _untrained(head, likelihood, values[:80])
    future = promo[80:, None]  # the whole trained window
    intervals = likelihood != "mse"
    full = fc.predict(history, N, future)
    stream = fc.stream("shop")
    for i in range(80):
        stream.update(values[i], times[0] if i == 0 else None)
    live_full = stream.forecast(N, future)
    for k in (1, 3):
        _same_first_steps(full, fc.predict(history, k, future), k, intervals)
        _same_first_steps(live_full, stream.forecast(k, future), k, intervals)
    # through the CLI, from a saved run directory (weights stored as float32, read back as float64)
    fc.save(tmp_path / "run")
    path = _input_csv(tmp_path / "in.csv", times, sales, promo, 80)
    rows = {h: _cli_forecast(tmp_path / "run", h, path, tmp_path / f"f{h}.csv", capsys) for h in (1, 3, N)}
    assert [r[0] for r in rows[N]] == [str(t) for t in times[80:]]
    for k in (1, 3):
        assert rows[k] == rows[N][:k]
        assert all((r[2] != "") == intervals for r in rows[k])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run trained through `lstmkit train`: daily sales with a planned promo, calendar
    features by default, the direct head with a Gaussian likelihood."""
    root = tmp_path_factory.mktemp("horizon")
    times, sales, promo = _daily(140)
    _input_csv(root / "sales.csv", times, sales, promo, 140)
    cfg = {"task": "forecast",
           "data": {"path": str(root / "sales.csv"), "targets": ["sales"], "future_covariates": ["promo"],
                    "test_size": 14},
           "transform": {"seasonal_period": 7}, "model": {"hidden_size": 6, "likelihood": "gaussian"},
           "train": {"epochs": 2, "lr": 0.01, "progress": "off"}, "val_size": 14,
           "evaluate": {"horizon": N, "season": 7, "samples": 30, "baselines": ["naive"]}}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["-q", "train", str(root / "cfg.yaml"), "--out", str(root / "run")]) == 0
    return root


def test_a_trained_run_forecasts_the_same_next_day_whatever_horizon_is_asked(trained_run, tmp_path, capsys):
    times, sales, promo = _daily(140 + N, seed=5)
    path = _input_csv(tmp_path / "in.csv", times, sales, promo, 140)
    rows = {h: _cli_forecast(trained_run / "run", h, path, tmp_path / f"f{h}.csv", capsys) for h in (1, 3, N)}
    assert len(rows[N]) == N and all(r[2] != "" for r in rows[N])
    assert rows[1] == rows[N][:1] and rows[3] == rows[N][:3]
    capsys.readouterr()
    assert main(["-q", "forecast", str(trained_run / "run"), "--horizon", "1", "--input", str(path),
                 "--output", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text())["forecasts"][0]["forecast"] == rows[N][0][1]


def test_future_covariates_are_needed_for_the_whole_trained_window(trained_run, tmp_path, capsys):
    fc = load_forecaster(trained_run / "run")
    times, sales, promo = _daily(140 + N)
    history = Series(np.stack([sales, promo], 1)[:140], times[:140], ("sales", "promo"), "sales.csv")
    with pytest.raises(ValueError, match=r"give their values for all 7 forecast steps of its trained horizon "
                                         r"\(whatever horizon is asked\) as a \(7, 1\) array, got \(1, 1\)"):
        fc.predict(history, 1, promo[140:141, None])
    short = _input_csv(tmp_path / "short.csv", times[:143], sales, promo, 140)
    assert main(["-q", "forecast", str(trained_run / "run"), "--horizon", "3", "--input", str(short)]) == 2
    assert "short.csv: 3 rows after the last target value give the future covariates ['promo']; the model reads " \
           "them for its whole trained horizon, whatever horizon is asked: give 7 rows" in capsys.readouterr().err

"""``lstmkit backtest``: over the run's test part it reproduces the run's test scores; on a new
CSV; and its error cases."""

import csv
import json

import pytest

from lstmkit.cli import main
from lstmkit.tasks.forecast import train_forecaster
from lstmkit.tasks.forecast_backtest import backtest_run

from .test_forecast import _config, _monthly, _write_csv, sales_csv  # noqa: F401 (a fixture)

BASELINES = ["naive", {"name": "seasonal_naive", "m": 12}, "drift"]


@pytest.fixture(scope="module")
def run(sales_csv, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("bt") / "run"
    cfg = _config(sales_csv, evaluate={"horizon": 6, "stride": 3, "season": 12, "samples": 50,
                                       "baselines": BASELINES})
    train_forecaster(cfg, out)
    return out


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_backtest_over_the_test_part_gives_the_runs_test_metrics(run, capsys):
    metrics = json.loads((run / "metrics.json").read_text())
    assert main(["backtest", str(run), "--start", metrics["test_start"][:7], "--horizon", "6", "--stride", "3"]) == 0
    out = run / f"backtest-{metrics['test_start'][:7]}-h6"
    got = json.loads((out / "backtest.json").read_text())
    assert got["model"] == metrics["test"]
    assert got["baselines"] == metrics["baselines"]
    assert set(got["baselines"]) == {"naive", "seasonal_naive(12)", "drift", "naive2(12)"}
    assert (got["horizon"], got["stride"], got["origins"]) == (6, 3, 3)
    assert _rows(out / "backtest.csv") == _rows(run / "forecasts.csv")  # the same origins, forecasts, baselines
    assert "| model (LSTM) |" in (out / "report.md").read_text()
    assert json.loads(capsys.readouterr().out)["model"] == metrics["test"]
    # the output directory exists now: refused
    assert main(["backtest", str(run), "--start", metrics["test_start"][:7], "--horizon", "6", "--stride", "3"]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_backtest_on_a_new_csv(run, tmp_path):
    times, y, temp, promo = _monthly(n=60, seed=1)
    rows = [[str(t)[:7], "" if i >= 54 else f"{a:.4f}", "" if i >= 54 else f"{b:.4f}", int(c)]
            for i, (t, a, b, c) in enumerate(zip(times, y, temp, promo))]  # the last 6 rows: future covariates
    path = _write_csv(tmp_path / "new.csv", rows, ["date", "sales", "temp", "promo"])
    got = backtest_run(run, "2003-01", 3, input=str(path), output=tmp_path / "bt")
    assert (got["start"][:7], got["last_origin"][:7], got["origins"]) == ("2003-01", "2004-04", 6)
    table = _rows(tmp_path / "bt" / "backtest.csv")
    assert len(table) == 6 * 3 and table[0]["origin"][:7] == "2003-01" and table[-1]["time"][:7] == "2004-06"
    assert {"series", "origin", "time", "step", "actual", "forecast", "lower", "upper", "naive", "drift"} \
        <= set(table[0])
    assert got["model"]["n_forecasts"] == 6 and set(got["baselines"]) >= {"naive", "naive2(12)"}
    assert json.loads((tmp_path / "bt" / "backtest.json").read_text()) == got


def test_backtest_retrain_every_refits_the_runs_recipe(run, tmp_path):
    """Origins 1-2 share a refit on the history before the test part: the run's own data, recipe and
    seed, so their forecasts are the run's; origin 3 gets a refit that has seen 3 more months."""
    metrics = json.loads((run / "metrics.json").read_text())
    start = metrics["test_start"][:7]
    got = backtest_run(run, start, 6, stride=3, output=tmp_path / "bt", retrain_every=2)
    assert (got["origins"], got["retrain_every"], got["refits"]) == (3, 2, 2)
    ours, runs = _rows(tmp_path / "bt" / "backtest.csv"), _rows(run / "forecasts.csv")
    assert len(ours) == len(runs) == 18
    origins = sorted({r["origin"] for r in runs})
    for a, b in zip(ours, runs):
        assert (a["origin"], a["time"], a["actual"], a["naive"]) == (b["origin"], b["time"], b["actual"], b["naive"])
        if a["origin"] != origins[2]:
            assert float(a["forecast"]) == pytest.approx(float(b["forecast"]), rel=1e-9, abs=1e-9)
    moved = [abs(float(a["forecast"]) - float(b["forecast"])) for a, b in zip(ours, runs) if a["origin"] == origins[2]]
    assert max(moved) > 1e-6  # the second refit is a different model
    assert got["baselines"] == metrics["baselines"]  # fitted on the history before the start, as without refits
    assert "refitted every 2 origin(s)" in (tmp_path / "bt" / "report.md").read_text()


@pytest.mark.parametrize("kwargs, message", [
    ({"start": "2007-01", "horizon": 7}, "longer than the run's trained horizon (6 steps)"),
    ({"start": "1990-01", "horizon": 6}, "is outside series"),
    ({"start": "2020-01", "horizon": 6}, "is outside series"),
    ({"start": "2007-09", "horizon": 6}, "fewer than --horizon 6"),
    ({"start": "2007-01", "horizon": 6, "retrain_every": 0}, "--retrain-every must be an int >= 1, got 0"),
])
def test_backtest_errors(run, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backtest_run(run, output=tmp_path / "bt", **kwargs)
    assert not (tmp_path / "bt").exists()


def test_backtest_refuses_an_existing_directory_and_other_tasks(run, tmp_path):
    (tmp_path / "bt").mkdir()
    (tmp_path / "bt" / "x").write_text("x")
    with pytest.raises(ValueError, match="exists and is not empty"):
        backtest_run(run, "2007-01", 6, output=tmp_path / "bt")
    other = tmp_path / "classify-run"
    other.mkdir()
    (other / "config.yaml").write_text("task: classify\n")
    with pytest.raises(ValueError, match="'classify' model; `lstmkit backtest` needs a forecasting run"):
        backtest_run(other, "2007-01", 6)

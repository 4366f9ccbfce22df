"""Forecasting: the forking-sequence model, streaming = batch, the run directory, global models,
covariates, the CLI and the error cases of issue 4."""

import csv
import json

import numpy as np
import pytest
import safetensors.torch
import torch
import yaml

from lstmkit.checkpoint import save_checkpoint
from lstmkit.cli import main
from lstmkit.data.series import Series
from lstmkit.models.forecaster import ForecasterConfig, LSTMForecaster, _windows
from lstmkit.tasks.config import build
from lstmkit.tasks.forecast import (ForecastConfig, load_forecaster, read_forecast_input, train_forecaster)

FAST = {"epochs": 6, "lr": 0.01, "batch_size": 4, "progress": "off", "early_stopping": None}


def _monthly(n=96, seed=0, series_id=None):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    promo = (rng.random(n) < 0.2).astype(float)  # known ahead (planned)
    temp = np.sin(2 * np.pi * t / 12 + 0.5) + 0.1 * rng.standard_normal(n)  # observed only
    y = 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / 12) + 5 * promo + rng.standard_normal(n)
    times = np.arange(np.datetime64("2000-01"), np.datetime64("2000-01") + n).astype("datetime64[D]")
    return times, y, temp, promo


def _write_csv(path, rows, header):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _config(path, model=None, **over):
    data = {"task": "forecast",
            "data": {"path": str(path), "time_column": "date", "targets": ["sales"], "past_covariates": ["temp"],
                     "future_covariates": ["promo"], "test_size": 12},
            "transform": {"log": False, "seasonal_period": 12, "difference": False},
            "model": model or {"head": "direct", "hidden_size": 8, "likelihood": "gaussian"},
            "train": FAST, "val_size": 12,
            "evaluate": {"horizon": 6, "stride": 3, "season": 12, "samples": 50,
                         "baselines": ["naive", {"name": "seasonal_naive", "m": 12}, "drift",
                                       {"name": "holt_winters", "trend": "add", "seasonal": "add",
                                        "seasonal_periods": 12},
                                       {"name": "sarima", "order": [1, 0, 0], "seasonal_order": [0, 1, 0, 12]}]}}
    data.update(over)
    return build(ForecastConfig, data)


@pytest.fixture(scope="module")
def sales_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    times, y, temp, promo = _monthly()
    return _write_csv(root / "sales.csv", [[str(t)[:7], f"{a:.4f}", f"{b:.4f}", int(c)] for t, a, b, c in
                                           zip(times, y, temp, promo)], ["date", "sales", "temp", "promo"])


@pytest.fixture(scope="module")
def run(sales_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    metrics = train_forecaster(_config(sales_csv), out)
    return out, metrics


# ---------------------------------------------------------------------------- the model


def test_windows_shift_targets_by_one_to_n():
    seq = torch.arange(5.0).reshape(1, 5, 1)
    w = _windows(seq, 3)[0, :, :, 0]
    assert w.tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 0], [4, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("head", ["direct", "recursive", "seq2seq"])
@pytest.mark.parametrize("likelihood", ["mse", "gaussian", "quantile"])
def test_loss_is_finite_and_masks_steps_past_each_length(head, likelihood):
    torch.manual_seed(0)
    m = LSTMForecaster(ForecasterConfig(2, 4, 0, 1, hidden_size=8, head=head, likelihood=likelihood))
    x = torch.randn(3, 20, 3)
    lengths = torch.tensor([20, 12, 7])
    loss = m.loss(x, lengths)
    assert torch.isfinite(loss)
    x2 = x.clone()
    x2[1, 12:] = 99.0  # past series 1's length: must not matter
    x2[2, 7:] = -99.0
    assert torch.allclose(m.loss(x2, lengths), loss)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_origin_range_restricts_the_loss():
    torch.manual_seed(0)
    m = LSTMForecaster(ForecasterConfig(1, 2, hidden_size=4))
    x = torch.randn(1, 10, 1)
    full = m.loss(x, torch.tensor([10]))
    assert m.loss(x, torch.tensor([10]), torch.tensor([[0, 10]])) == full
    assert m.loss(x, torch.tensor([10]), (5, 10)) != full
    with pytest.raises(ValueError, match="no \\(origin, target\\) pair"):
        m.loss(x, torch.tensor([10]), (9, 10))


def test_config_errors():
    with pytest.raises(ValueError, match="past-only covariates are unknown after the origin"):
        ForecasterConfig(1, 3, past_covariates=1, head="recursive")
    with pytest.raises(ValueError, match="include 0.5"):
        ForecasterConfig(1, 3, likelihood="quantile", quantiles=(0.1, 0.9))
    with pytest.raises(ValueError, match="head must be"):
        ForecasterConfig(1, 3, head="transformer")


def test_quantile_inverse_cdf_interpolates_the_predicted_quantiles():
    m = LSTMForecaster(ForecasterConfig(1, 1, likelihood="quantile", quantiles=(0.1, 0.5, 0.9), hidden_size=2))
    params = torch.tensor([[[1.0, 2.0, 4.0]]])  # (1, C=1, K=3)
    u = torch.tensor([[0.05], [0.1], [0.3], [0.5], [0.7], [0.95]]).reshape(6, 1, 1)
    out = m.quantile(params.expand(6, 1, 3), u[:, 0])
    assert out[:, 0].tolist() == pytest.approx([1.0, 1.0, 1.5, 2.0, 3.0, 4.0])


# ---------------------------------------------------------------------------- the run


def test_run_directory_contract(run):
    out, metrics = run
    for name in ("config.yaml", "model.safetensors", "model.json", "metrics.json", "history.json", "report.md",
                 "forecast.png", "forecasts.csv"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "metrics.json").read_text())
    assert {"mae", "rmse", "mape", "smape", "mase", "owa", "coverage", "width"} <= set(saved["test"])
    assert set(saved["baselines"]) == {"naive", "seasonal_naive(12)", "drift", "holt_winters(add,add,12)",
                                       "sarima(1,0,0)(0,1,0,12)", "naive2(12)"}
    assert saved["baselines"]["naive2(12)"]["owa"] == pytest.approx(1.0)
    assert saved["test"]["n_forecasts"] == 3  # origins at test steps 0, 3, 6 (6 + 6 <= 12)
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18 and rows[0]["origin"] == "2007-01" and rows[-1]["time"] == "2007-12"
    assert 0 <= saved["test"]["coverage"] <= 1 and saved["test"]["width"] > 0
    assert (out / "report.md").read_text().count("| sarima(1,0,0)(0,1,0,12) |") == 1


def test_metrics_include_mse_beside_rmse(run):
    out, metrics = run
    saved = json.loads((out / "metrics.json").read_text())
    for scores in [saved["test"], saved["val"], *saved["baselines"].values(), *saved["val_baselines"].values()]:
        assert scores["mse"] == pytest.approx(scores["rmse"] ** 2, rel=1e-12)
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    error = np.array([float(r["actual"]) - float(r["forecast"]) for r in rows])
    assert saved["test"]["mse"] == pytest.approx(np.mean(error ** 2))
    assert "| method | MAE | MSE | RMSE |" in (out / "report.md").read_text()


def test_validation_scores_come_from_the_training_part_only(run, sales_csv, tmp_path):
    """metrics["val"]: the selection runs (fitted without the validation end) scored on that end
    like the test; changing the test part must not move them, while it moves the test scores."""
    out, metrics = run
    val = metrics["val"]
    assert {"loss", "mae", "mape", "smape", "mase", "owa", "coverage"} <= set(val)
    assert val["n_forecasts"] == 3  # val_size 12, horizon 6, stride 3
    assert "naive2(12)" in metrics["val_baselines"] and metrics["val_baselines"]["naive2(12)"]["owa"] == pytest.approx(1)
    with open(sales_csv) as f:
        rows = list(csv.reader(f))
    for r in rows[-12:]:  # the test part (test_size 12)
        r[1] = f"{float(r[1]) * 1.5:.4f}"
    changed = _write_csv(tmp_path / "sales.csv", rows[1:], rows[0])
    other = train_forecaster(_config(changed), tmp_path / "out")
    assert other["val"] == val and other["val_baselines"] == metrics["val_baselines"]
    assert other["test"]["mae"] != metrics["test"]["mae"]


def test_no_validation_scores_when_the_validation_end_is_shorter_than_the_horizon(sales_csv, tmp_path):
    metrics = train_forecaster(_config(sales_csv, val_size=4, train={**FAST, "epochs": 1}), tmp_path / "out")
    assert set(metrics["val"]) == {"loss"} and metrics["val_baselines"] == {}


def test_metrics_recomputed_from_the_forecasts_file(run):
    out, metrics = run
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    a = np.array([float(r["actual"]) for r in rows])
    f_ = np.array([float(r["forecast"]) for r in rows])
    assert metrics["test"]["mae"] == pytest.approx(np.abs(a - f_).mean())
    lo, hi = np.array([float(r["lower"]) for r in rows]), np.array([float(r["upper"]) for r in rows])
    assert metrics["test"]["coverage"] == pytest.approx(((a >= lo) & (a <= hi)).mean())
    naive = np.array([float(r["naive"]) for r in rows])
    assert metrics["baselines"]["naive"]["mae"] == pytest.approx(np.abs(a - naive).mean())


def _history(csv_path, n):
    times, y, temp, promo = _monthly()
    return Series(np.stack([y, temp, promo], 1)[:n], times[:n], ("sales", "temp", "promo"), "sales.csv"), promo


def test_streaming_equals_the_batch_path_after_loading_the_run(run, sales_csv):
    out, _ = run
    fc = load_forecaster(out)
    hist, promo = _history(sales_csv, 70)
    stream = fc.stream()
    for i in range(len(hist)):
        stream.update(hist.values[i], hist.times[i] if i == 0 else None)
        if i >= 40 and i % 10 == 0:
            batch = fc.predict(Series(hist.values[: i + 1], hist.times[: i + 1], hist.names, hist.name), 6,
                               promo[i + 1 : i + 7, None])
            live = stream.forecast(6, promo[i + 1 : i + 7, None])
            assert np.abs(batch.point - live.point).max() <= 1e-6
            assert np.abs(batch.lower - live.lower).max() <= 1e-6 and np.abs(batch.upper - live.upper).max() <= 1e-6
            assert (batch.times == live.times).all()


@pytest.mark.parametrize("head", ["recursive", "seq2seq"])
def test_streaming_equals_batch_for_rollout_heads(sales_csv, tmp_path, head):
    cfg = _config(sales_csv, {"head": head, "hidden_size": 6, "likelihood": "quantile"},
                  data={"path": str(sales_csv), "time_column": "date", "targets": ["sales"],
                        "future_covariates": ["promo"], "test_size": 12},
                  transform={"power": 0.5, "seasonal_period": 12})  # Box-Cox survives the run directory
    cfg.evaluate.baselines = ["naive"]
    train_forecaster(cfg, tmp_path / "r")
    fc = load_forecaster(tmp_path / "r")
    assert next(iter(fc.transforms.values())).power == 0.5
    times, y, _, promo = _monthly()
    values = np.stack([y, promo], 1)
    stream = fc.stream()
    for i in range(60):
        stream.update(values[i], times[0] if i == 0 else None)
    batch = fc.predict(Series(values[:60], times[:60], ("sales", "promo"), "x"), 6, promo[60:66, None])
    live = stream.forecast(6, promo[60:66, None])
    assert np.abs(batch.point - live.point).max() <= 1e-6
    assert np.abs(batch.upper - live.upper).max() <= 1e-6


def test_global_model_on_a_long_csv(tmp_path):
    rows = []
    for sid in ("a", "b", "c"):
        times, y, _, promo = _monthly(60, seed=ord(sid))
        rows += [[sid, str(t)[:7], f"{v * (1 + ord(sid) - 97):.3f}", int(p)] for t, v, p in zip(times, y, promo)]
    path = _write_csv(tmp_path / "long.csv", rows, ["id", "date", "sales", "promo"])
    cfg = _config(path, data={"path": str(path), "time_column": "date", "id_column": "id", "targets": ["sales"],
                              "future_covariates": ["promo"], "test_size": 12})
    cfg.evaluate.baselines = ["naive"]
    metrics = train_forecaster(cfg, tmp_path / "r")
    assert metrics["n_series"] == 3 and metrics["test"]["n_forecasts"] == 9
    fc = load_forecaster(tmp_path / "r")
    assert set(fc.transforms) == {"a", "b", "c"}
    assert fc.transforms["c"].mean_ != fc.transforms["a"].mean_  # per-series scaling


# ---------------------------------------------------------------------------- errors


def test_tensorboard_logger_shows_each_member_history_and_its_refit(sales_csv, tmp_path):
    pytest.importorskip("tensorboard")
    from .helpers import as_logged, tensorboard_rows

    cfg = _config(sales_csv, train={**FAST, "epochs": 3, "logger": "tensorboard"}, ensemble=2,
                  evaluate={"horizon": 6, "stride": 3, "season": 12, "samples": 10, "baselines": ["naive"]})
    metrics = train_forecaster(cfg, tmp_path / "r")
    histories = json.loads((tmp_path / "r" / "history.json").read_text())
    for i, history in enumerate(histories):
        log_dir = tmp_path / "r" / "tensorboard" / f"member-{i + 1}"
        assert tensorboard_rows(log_dir) == as_logged(history) and len(history) == 3
        refit = tensorboard_rows(log_dir / "refit")  # the chosen epochs' learning rates, replayed
        assert [row["lr"] for row in refit] == [row["lr"] for row in as_logged(history)[: metrics["best_epoch"][i]]]


def test_horizon_longer_than_the_test_part(sales_csv, tmp_path):
    cfg = _config(sales_csv)
    cfg.evaluate.horizon = 13
    with pytest.raises(ValueError, match="horizon=13 is longer than its test part \\(12 steps\\)"):
        train_forecaster(cfg, tmp_path / "r")


def test_horizon_longer_than_the_test_part_is_refused_before_training(sales_csv, tmp_path, monkeypatch):
    from lstmkit.tasks import forecast

    def no_training(*args, **kwargs):
        raise AssertionError("trained before the horizon was checked")

    monkeypatch.setattr(forecast, "fit_forecaster", no_training)
    cfg = _config(sales_csv, data={"path": str(sales_csv), "time_column": "date", "targets": ["sales"],
                                   "test_start": "2007-03", "test_end": "2007-06"})
    with pytest.raises(ValueError, match=r"series 'sales.csv': evaluate.horizon=6 is longer than its test part "
                                         r"\(4 steps\) from 2007-03 to 2007-06; shorten evaluate.horizon"):
        train_forecaster(cfg, tmp_path / "r")


def test_series_shorter_than_the_window(sales_csv, tmp_path):
    cfg = _config(sales_csv)
    cfg.val_size = 80
    with pytest.raises(ValueError, match="leaves fewer than 2 to train on"):
        train_forecaster(cfg, tmp_path / "r")


def test_forecast_horizon_beyond_training_and_missing_future_covariates(run, sales_csv):
    fc = load_forecaster(run[0])
    hist, promo = _history(sales_csv, 50)
    with pytest.raises(ValueError, match="horizon must be an int in \\[1, 6\\]"):
        fc.predict(hist, 7, promo[50:57, None])
    with pytest.raises(ValueError, match="give their values for all 6 forecast steps"):
        fc.predict(hist, 6, None)
    gap = promo[50:56, None].copy()
    gap[3] = np.nan
    with pytest.raises(ValueError, match="missing \\(NaN\\) in the forecast window"):
        fc.predict(hist, 6, gap)


def test_forecast_input_csv(run, tmp_path):
    fc = load_forecaster(run[0])
    times, y, temp, promo = _monthly()
    rows = [[str(t)[:7], f"{a:.4f}", f"{b:.4f}", int(c)] for t, a, b, c in zip(times[:50], y, temp, promo)]
    window = [[str(t)[:7], "", "", int(c)] for t, c in zip(times[50:56], promo[50:56])]
    short = _write_csv(tmp_path / "short.csv", rows + window[:3], ["date", "sales", "temp", "promo"])
    with pytest.raises(ValueError, match="3 rows after the last target value .* give 6 rows"):
        read_forecast_input(short, fc, "date")  # the model reads the whole trained window (6), whatever is asked
    rows += window
    path = _write_csv(tmp_path / "in.csv", rows, ["date", "sales", "temp", "promo"])
    hist, future = read_forecast_input(path, fc, "date")
    assert len(hist) == 50 and future.shape == (6, 1)
    assert fc.predict(hist, 3, future).point.shape == (3, 1)
    with pytest.raises(ValueError, match="give their values for all 6"):
        fc.predict(hist, 6, future[:3])
    with pytest.raises(ValueError, match="give their values for all 6"):
        fc.predict(hist, 3, future[:3])
    bad = rows[:10] + [rows[11], rows[10]] + rows[12:]
    with pytest.raises(ValueError, match="out of order"):
        read_forecast_input(_write_csv(tmp_path / "bad.csv", bad, ["date", "sales", "temp", "promo"]), fc, "date")
    dup = rows[:10] + [rows[9]] + rows[10:]
    with pytest.raises(ValueError, match="duplicate"):
        read_forecast_input(_write_csv(tmp_path / "dup.csv", dup, ["date", "sales", "temp", "promo"]), fc, "date")
    holes = [list(r) for r in rows]
    holes[20][1] = ""
    with pytest.raises(ValueError, match="missing values"):
        read_forecast_input(_write_csv(tmp_path / "nan.csv", holes, ["date", "sales", "temp", "promo"]), fc, "date")
    assert len(read_forecast_input(tmp_path / "nan.csv", fc, "date", gaps="interpolate")[0]) == 50


def test_irregular_times_in_the_training_file(tmp_path):
    times, y, temp, promo = _monthly()
    rows = [[str(t)[:10], f"{a:.4f}", f"{b:.4f}", int(c)] for t, a, b, c in zip(times, y, temp, promo)]
    rows[30][0] = "2002-07-15"
    path = _write_csv(tmp_path / "irr.csv", rows, ["date", "sales", "temp", "promo"])
    with pytest.raises(ValueError, match="irregular spacing|spacing"):
        train_forecaster(_config(path), tmp_path / "r")


def test_config_errors_name_the_field(sales_csv):
    with pytest.raises(ValueError, match="exactly one of 'test_start'"):
        _config(sales_csv, data={"path": str(sales_csv), "targets": ["sales"]})
    with pytest.raises(ValueError, match="model.horizon is set from the data"):
        _config(sales_csv, {"head": "direct", "horizon": 3})
    with pytest.raises(ValueError, match="baseline"):
        cfg = _config(sales_csv)
        build(type(cfg.evaluate), {"baselines": ["sarimax"]})


def test_tampered_description_is_refused(run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(run[0], out)
    meta = json.loads((out / "model.json").read_text())
    meta["meta"]["members"] = 2
    (out / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="model.json was edited: its contents do not match the SHA-256"):
        load_forecaster(out)
    # written again with a matching hash (as a faulty writer would), the description itself is checked
    save_checkpoint(out, safetensors.torch.load_file(out / "model.safetensors"), meta["meta"])
    with pytest.raises(ValueError, match="weights of member 1"):
        load_forecaster(out)


# ---------------------------------------------------------------------------- CLI


def test_cli_train_and_forecast(sales_csv, tmp_path, capsys):
    cfg = {"task": "forecast", "data": {"path": str(sales_csv), "time_column": "date", "targets": ["sales"],
                                        "test_size": 12},
           "transform": {"seasonal_period": 12}, "model": {"hidden_size": 4, "likelihood": "gaussian"},
           "train": {"epochs": 2, "progress": "off"}, "val_size": 12,
           "evaluate": {"horizon": 4, "season": 12, "samples": 20, "baselines": ["naive"]}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["-q", "train", str(path), "--out", str(tmp_path / "r")]) == 0
    assert "mape" in json.loads(capsys.readouterr().out)["test"]
    assert main(["-q", "forecast", str(tmp_path / "r"), "--horizon", "4", "--output", str(tmp_path / "f.csv")]) == 0
    with open(tmp_path / "f.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["time"] for r in rows] == ["2008-01-01", "2008-02-01", "2008-03-01", "2008-04-01"]
    assert all(float(r["lower"]) <= float(r["forecast"]) <= float(r["upper"]) for r in rows)
    assert main(["-q", "forecast", str(tmp_path / "r"), "--horizon", "9"]) == 2
    assert "horizon must be an int in [1, 4]" in capsys.readouterr().err


@pytest.mark.parametrize("select, intervals", [("loss", "model"), ("level", "auto")])
def test_a_killed_forecasting_run_resumes_to_the_uninterrupted_result(sales_csv, tmp_path, monkeypatch, select,
                                                                       intervals):
    """An ensemble of two members, killed in the second member's selection run: `lstmkit train
    --resume` takes the first member from its checkpoints (no retraining) and continues the second
    from its last epoch, to the metrics, forecasts and weights of a run never interrupted (also with
    the epoch picked by the level error and the intervals chosen on validation)."""
    from lstmkit.checkpoint.train_state import load_train_state
    from lstmkit.cli import main
    from lstmkit.tasks import lifecycle

    cfg = _config(sales_csv, ensemble=2, train={**FAST, "deterministic": True}, select=select,
                  evaluate={"horizon": 6, "stride": 3, "season": 12, "samples": 30, "baselines": ["naive"],
                            "intervals": intervals})
    reference = train_forecaster(cfg, tmp_path / "reference")
    run, real_fit, calls = tmp_path / "run", lifecycle.fit, []

    def killed_in_epoch_3(epoch, row):  # after its evaluation, before its checkpoint
        if epoch == 3:
            raise KeyboardInterrupt

    def crashing_fit(*args, **kwargs):
        calls.append(kwargs.get("checkpoint_dir"))
        if calls[-1] is not None and calls[-1].name == "member-2":
            kwargs["callbacks"] = [killed_in_epoch_3]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "fit", crashing_fit)
    with pytest.raises(KeyboardInterrupt):
        train_forecaster(cfg, run)
    monkeypatch.setattr(lifecycle, "fit", real_fit)
    assert load_train_state(run / "checkpoint" / "member-2").epoch == 2 and not (run / "metrics.json").exists()
    assert (run / "checkpoint" / "member-1" / "refit" / "model.json").is_file()  # member 1 finished, refit kept
    calls.clear()
    monkeypatch.setattr(lifecycle, "fit", lambda *a, **k: calls.append(k) or real_fit(*a, **k))
    assert main(["-q", "train", "--resume", str(run)]) == 0
    assert [c.get("resume") for c in calls] == [True, True, None]  # member 1 back from its checkpoint, 2 resumed
    drop = lambda m: {k: v for k, v in m.items() if k != "train_seconds"}  # noqa: E731
    assert drop(json.loads((run / "metrics.json").read_text())) == drop(json.loads(json.dumps(reference)))
    for name in ("forecasts.csv", "model.safetensors"):
        assert (run / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert json.loads((run / "history.json").read_text()) == json.loads((tmp_path / "reference" / "history.json")
                                                                        .read_text())
    assert not (run / "checkpoint").exists()


def test_a_run_starts_with_one_summary_line(sales_csv, tmp_path, caplog):
    """Series, step, train / validation / test steps, targets and inputs, horizon, parameters."""
    cfg = _config(sales_csv, train={**FAST, "epochs": 1}, evaluate={"horizon": 6, "samples": 10, "baselines": []})
    with caplog.at_level("INFO", logger="lstmkit"):
        metrics = train_forecaster(cfg, tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data ")]
    assert lines == [f"data {sales_csv}: 1 series, step 1M, 72 train / 12 validation / 12 test steps, 1 target(s) + "
                     f"4 input feature(s), horizon 6; lstm_forecaster, {metrics['parameters']:,} parameters per "
                     "member x 1"], lines


def test_the_co2_preset_reads_monthly_means_and_forecasts_ten_years_from_1992():
    from lstmkit.cli import resolve_config
    from lstmkit.tasks.forecast import load_forecast_series, split_points

    config, _ = resolve_config("forecast/co2", [])
    (s,) = load_forecast_series(config.data)
    n_train, n_end = split_points(s, config.data, config.evaluate.horizon)
    assert (s.name, s.step, str(s.times[n_train])[:7], n_end - n_train) == ("co2-monthly", "1M", "1992-01", 120)
    assert config.evaluate.horizon == 12 and config.val_size == 60 and config.evaluate.intervals == "auto"
